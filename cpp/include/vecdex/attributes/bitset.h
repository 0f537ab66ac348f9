// A set of rows as 64-bit words: what a compiled filter evaluates to, and the predicate the
// search loops ask per candidate. Bits at or beyond size() are always zero, so count() and
// word-wise operations never see garbage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vecdex/common.h"
#include "vecdex/search/predicate.h"

namespace vecdex {

class Bitset final : public RowPredicate {
 public:
  Bitset() = default;
  explicit Bitset(std::size_t rows, bool value = false) : rows_(rows), words_((rows + 63) / 64, value ? ~0ull : 0ull) {
    clear_tail();
  }

  std::size_t size() const { return rows_; }
  // Grows to `rows` (new rows unset); never shrinks.
  void grow(std::size_t rows) {
    if (rows <= rows_) return;
    rows_ = rows;
    words_.resize((rows + 63) / 64, 0ull);
  }
  std::size_t word_count() const { return words_.size(); }
  const std::uint64_t* words() const { return words_.data(); }
  std::uint64_t* mutable_words() { return words_.data(); }

  // One word load: the search loops call this per candidate, and rows are always < size()
  // there (the set is built for the index's row count under the same lock).
  bool accepts(node_t row) const override { return (words_[row >> 6] >> (row & 63)) & 1; }
  bool test(std::size_t row) const { return (words_[row >> 6] >> (row & 63)) & 1; }
  void set(std::size_t row) { words_[row >> 6] |= std::uint64_t(1) << (row & 63); }
  void reset(std::size_t row) { words_[row >> 6] &= ~(std::uint64_t(1) << (row & 63)); }
  // Sets each of n rows (any order).
  void set_rows(const node_t* rows, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) set(rows[i]);
  }

  std::size_t count() const {
    std::size_t c = 0;
    for (std::uint64_t w : words_) c += static_cast<std::size_t>(__builtin_popcountll(w));
    return c;
  }
  bool any() const {
    for (std::uint64_t w : words_)
      if (w) return true;
    return false;
  }

  // Calls fn(row) for each set row, ascending.
  template <class Fn>
  void for_each_set(Fn&& fn) const {
    for (std::size_t i = 0; i < words_.size(); ++i) {
      std::uint64_t w = words_[i];
      while (w) {
        fn(static_cast<node_t>(i * 64 + static_cast<std::size_t>(__builtin_ctzll(w))));
        w &= w - 1;
      }
    }
  }

  // Word-wise set algebra; the other set must have the same size (InvalidArgument otherwise).
  Bitset& and_with(const Bitset& o) {
    same_size(o);
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] &= o.words_[i];
    return *this;
  }
  Bitset& or_with(const Bitset& o) {
    same_size(o);
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] |= o.words_[i];
    return *this;
  }
  Bitset& and_not(const Bitset& o) {
    same_size(o);
    for (std::size_t i = 0; i < words_.size(); ++i) words_[i] &= ~o.words_[i];
    return *this;
  }
  Bitset& flip_all() {
    for (std::uint64_t& w : words_) w = ~w;
    clear_tail();
    return *this;
  }
  Bitset& set_all() {
    for (std::uint64_t& w : words_) w = ~0ull;
    clear_tail();
    return *this;
  }
  void clear_all() {
    for (std::uint64_t& w : words_) w = 0;
  }
  bool operator==(const Bitset& o) const { return rows_ == o.rows_ && words_ == o.words_; }

  std::size_t memory_bytes() const { return words_.capacity() * sizeof(std::uint64_t); }

 private:
  void clear_tail() {
    if (rows_ % 64 && !words_.empty()) words_.back() &= (std::uint64_t(1) << (rows_ % 64)) - 1;
  }
  void same_size(const Bitset& o) const {
    if (o.rows_ != rows_) throw InvalidArgument("bitsets of different sizes");
  }

  std::size_t rows_ = 0;
  std::vector<std::uint64_t> words_;
};

}  // namespace vecdex
