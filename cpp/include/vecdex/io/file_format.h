// The vecdex file: a fixed header, sections of raw little-endian arrays each with a length and a
// CRC-32, and a section table at the end. Unknown sections are skipped, so newer writers can add
// sections that older readers ignore. Layout documented in docs/format.md.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vecdex/common.h"
#include "vecdex/io/mapped_file.h"
#include "vecdex/storage/aligned_array.h"

namespace vecdex {

constexpr char kFileMagic[8] = {'V', 'E', 'C', 'D', 'E', 'X', '\r', '\n'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::uint32_t kHeaderBytes = 64;
constexpr std::uint32_t kSectionEntryBytes = 32;
constexpr std::uint64_t kSectionAlignment = 64;

enum class IndexKind : std::uint32_t { Flat = 1, Hnsw = 2, Cur = 3 };
const char* index_kind_name(IndexKind k);

constexpr std::uint32_t fourcc(char a, char b, char c, char d) {
  return std::uint32_t(std::uint8_t(a)) | std::uint32_t(std::uint8_t(b)) << 8 | std::uint32_t(std::uint8_t(c)) << 16 |
         std::uint32_t(std::uint8_t(d)) << 24;
}

namespace section {
constexpr std::uint32_t kParams = fourcc('P', 'A', 'R', 'M');        // text: key=value lines
constexpr std::uint32_t kLabels = fourcc('L', 'A', 'B', 'L');        // u64 per row
constexpr std::uint32_t kVectorsF32 = fourcc('V', 'F', '3', '2');    // f32 rows
constexpr std::uint32_t kGraphLevels = fourcc('G', 'L', 'V', 'L');   // u8 level per row
constexpr std::uint32_t kGraphLevel0 = fourcc('G', 'L', '0', 'L');   // u32 [count, links...] per row
constexpr std::uint32_t kGraphUpperOffsets = fourcc('G', 'U', 'O', 'F');  // u32 per row
constexpr std::uint32_t kGraphUpper = fourcc('G', 'U', 'P', 'L');    // u32 link blocks
constexpr std::uint32_t kCodesF16 = fourcc('Q', 'F', '1', '6');      // u16 fp16 rows
constexpr std::uint32_t kCodesBF16 = fourcc('Q', 'B', '1', '6');     // u16 bf16 rows
constexpr std::uint32_t kCodesSQ = fourcc('Q', 'S', 'Q', 'C');       // u8 scalar-quantised rows
constexpr std::uint32_t kSQRanges = fourcc('Q', 'S', 'Q', 'R');      // f32 offsets then scales
constexpr std::uint32_t kSQRowTerms = fourcc('Q', 'S', 'Q', 'T');    // f32 per-row squared norm
constexpr std::uint32_t kAttrDirectory = fourcc('A', 'T', 'T', 'S');  // attribute fields and where their arrays lie
constexpr std::uint32_t kAttrData = fourcc('A', 'T', 'T', 'D');       // attribute arrays, each 64-byte aligned
constexpr std::uint32_t kDeleted = fourcc('D', 'E', 'L', 'R');        // u64 words: bit r set when row r is deleted
}  // namespace section

struct FileInfo {
  IndexKind kind = IndexKind::Flat;
  Metric metric = Metric::L2;
  std::uint64_t dim = 0;
  std::uint64_t count = 0;
};

// Index parameters as text, so a new parameter never needs a format change.
class Params {
 public:
  void set(const std::string& key, std::uint64_t v) { values_[key] = std::to_string(v); }
  void set(const std::string& key, double v);
  std::uint64_t get_u64(const std::string& key) const;
  double get_f64(const std::string& key) const;
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::string serialize() const;
  static Params parse(const unsigned char* data, std::size_t bytes);

 private:
  std::map<std::string, std::string> values_;
};

// Writes to a temporary file beside the target and renames it over the target on commit(), so a
// failed save never harms the previous file.
class IndexFileWriter {
 public:
  IndexFileWriter(const std::string& path, const FileInfo& info);
  ~IndexFileWriter();
  IndexFileWriter(const IndexFileWriter&) = delete;
  IndexFileWriter& operator=(const IndexFileWriter&) = delete;

  void add_section(std::uint32_t id, const void* data, std::size_t bytes);
  template <class T>
  void add_array(std::uint32_t id, const AlignedArray<T>& a) {
    add_section(id, a.data(), a.size() * sizeof(T));
  }
  void commit();

 private:
  struct Entry {
    std::uint32_t id;
    std::uint64_t offset, length;
    std::uint32_t crc;
  };
  void write_bytes(const void* data, std::size_t bytes);
  void pad_to(std::uint64_t alignment);

  std::string path_, tmp_path_;
  FileInfo info_;
  std::FILE* file_ = nullptr;
  std::uint64_t pos_ = 0;
  std::vector<Entry> entries_;
  bool committed_ = false;
};

// Maps a file and checks it whole before anything is read from it: magic, version, header and
// table checksums, every section inside the file, every section's checksum.
class IndexFileReader {
 public:
  explicit IndexFileReader(const std::string& path);

  const FileInfo& info() const { return info_; }
  bool has(std::uint32_t id) const { return sections_.count(id) != 0; }
  // Bytes of a required section; FormatError when absent.
  std::pair<const unsigned char*, std::size_t> bytes(std::uint32_t id) const;
  Params params() const;

  // A section as an array of exactly `count` values: a view of the mapping, or a copy.
  template <class T>
  AlignedArray<T> array(std::uint32_t id, std::uint64_t count, bool view) const {
    auto b = bytes(id);
    if (count > b.second / sizeof(T) || b.second != count * sizeof(T)) {
      throw FormatError("corrupt index file: section " + section_name(id) + " has " + std::to_string(b.second) +
                        " bytes, expected " + std::to_string(count) + " values of " + std::to_string(sizeof(T)) +
                        " bytes");
    }
    const T* data = reinterpret_cast<const T*>(b.first);
    if (view) return AlignedArray<T>::view(data, count, file_);
    AlignedArray<T> out;
    out.append(data, count);
    return out;
  }

  static std::string section_name(std::uint32_t id);
  // Keeps the mapping alive: views of parts of a section (AlignedArray::view) hold it.
  std::shared_ptr<const void> owner() const { return file_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  FileInfo info_;
  std::map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> sections_;
};

// Reads only the header, to learn which kind of index a file holds.
FileInfo peek_index_file(const std::string& path);

}  // namespace vecdex
