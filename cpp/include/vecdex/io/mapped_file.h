// A whole file mapped read-only. Shared ownership: arrays viewing the mapping keep it alive.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace vecdex {

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  MappedFile() = default;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace vecdex
