// A growable array of trivially copyable values on 64-byte aligned memory, or a read-only view
// into a memory-mapped file. Indexes keep all their bulk data (vectors, links, ids) in these, so
// saving writes them as-is and a memory-mapped load uses the file's pages without a copy.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "vecdex/common.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace vecdex {

template <class T>
class AlignedArray {
  static_assert(std::is_trivially_copyable<T>::value, "AlignedArray holds plain values only");

 public:
  static constexpr std::size_t kAlignment = 64;
  // Arrays this large go on 2 MiB-aligned memory marked for transparent huge pages: a graph walk
  // touches rows all over the array, and with 4 KiB pages nearly every row is a TLB miss.
  static constexpr std::size_t kHugePage = std::size_t(2) << 20;
  static constexpr std::size_t kHugeThreshold = std::size_t(4) << 20;

  AlignedArray() = default;
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  AlignedArray(AlignedArray&& o) noexcept { swap(o); }
  AlignedArray& operator=(AlignedArray&& o) noexcept {
    AlignedArray tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~AlignedArray() { release(); }

  // A read-only view of `size` values at `data`, kept alive by `owner` (the mapping).
  static AlignedArray view(const T* data, std::size_t size, std::shared_ptr<const void> owner) {
    AlignedArray a;
    a.data_ = const_cast<T*>(data);
    a.size_ = a.capacity_ = size;
    a.owner_ = std::move(owner);
    return a;
  }

  bool is_view() const { return owner_ != nullptr; }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  const T* data() const { return data_; }
  T* mutable_data() {
    require_owned();
    return data_;
  }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T& operator[](std::size_t i) { return data_[i]; }
  std::size_t bytes() const { return capacity_ * sizeof(T); }

  void reserve(std::size_t n) {
    require_owned();
    if (n <= capacity_) return;
    const bool huge = n * sizeof(T) >= kHugeThreshold;
    const std::size_t align = huge ? kHugePage : kAlignment;
    const std::size_t bytes_needed = round_up(n * sizeof(T), align);
    T* p = static_cast<T*>(std::aligned_alloc(align, bytes_needed));
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (huge) ::madvise(p, bytes_needed, MADV_HUGEPAGE);  // advisory: failure only costs speed
#endif
    if (size_) std::memcpy(p, data_, size_ * sizeof(T));
    std::free(data_);
    data_ = p;
    capacity_ = n;
  }

  // Grows geometrically so repeated small adds stay amortised O(1) per value.
  void resize(std::size_t n, T fill = T()) {
    require_owned();
    if (n > capacity_) reserve(n > 2 * capacity_ ? n : 2 * capacity_);
    for (std::size_t i = size_; i < n; ++i) data_[i] = fill;
    size_ = n;
  }

  void append(const T* src, std::size_t n) {
    const std::size_t old = size_;
    resize(old + n);
    if (n) std::memcpy(data_ + old, src, n * sizeof(T));
  }

  void swap(AlignedArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
    std::swap(owner_, o.owner_);
  }

 private:
  static std::size_t round_up(std::size_t bytes, std::size_t align) {
    const std::size_t r = (bytes + align - 1) / align * align;
    return r ? r : align;
  }
  void require_owned() const {
    if (owner_) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  }
  void release() {
    if (!owner_) std::free(data_);
    data_ = nullptr;
    size_ = capacity_ = 0;
    owner_.reset();
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::shared_ptr<const void> owner_;
};

}  // namespace vecdex
