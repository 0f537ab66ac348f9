#include "vecdex/io/file_format.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "vecdex/io/crc32.h"

namespace vecdex {
namespace {

// Header layout (little-endian), 64 bytes:
//   0 magic[8] | 8 u32 version | 12 u32 header_bytes | 16 u32 kind | 20 u32 metric | 24 u64 dim
//  32 u64 count | 40 u32 section_count | 44 u32 table_crc | 48 u64 table_offset | 56 u32 flags
//  60 u32 header_crc (of bytes 0..59)
template <class T>
void put(unsigned char* buf, std::size_t off, T v) {
  std::memcpy(buf + off, &v, sizeof(T));
}
template <class T>
T get(const unsigned char* buf, std::size_t off) {
  T v;
  std::memcpy(&v, buf + off, sizeof(T));
  return v;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

const char* index_kind_name(IndexKind k) {
  switch (k) {
    case IndexKind::Flat: return "flat";
    case IndexKind::Hnsw: return "hnsw";
    case IndexKind::Cur: return "cur";
  }
  return "unknown";
}

void Params::set(const std::string& key, double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  values_[key] = s.str();
}

std::uint64_t Params::get_u64(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw FormatError("corrupt index file: parameter '" + key + "' is missing");
  const std::string& s = it->second;
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
    throw FormatError("corrupt index file: parameter '" + key + "' is not an unsigned integer");
  return std::stoull(s);
}

double Params::get_f64(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw FormatError("corrupt index file: parameter '" + key + "' is missing");
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0' || !std::isfinite(v))
    throw FormatError("corrupt index file: parameter '" + key + "' is not a number");
  return v;
}

std::string Params::serialize() const {
  std::string out;
  for (const auto& kv : values_) out += kv.first + "=" + kv.second + "\n";
  return out;
}

Params Params::parse(const unsigned char* data, std::size_t bytes) {
  Params p;
  std::string text(reinterpret_cast<const char*>(data), bytes);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) throw FormatError("corrupt index file: unterminated parameter line");
    const std::string line = text.substr(start, end - start);
    const std::size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) throw FormatError("corrupt index file: malformed parameter line");
    p.values_[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------

IndexFileWriter::IndexFileWriter(const std::string& path, const FileInfo& info) : path_(path), info_(info) {
  std::random_device rd;
  tmp_path_ = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!file_) throw IoError("cannot write '" + path + "': " + errno_text());
  unsigned char zeros[kHeaderBytes] = {};
  write_bytes(zeros, sizeof zeros);
}

IndexFileWriter::~IndexFileWriter() {
  if (file_) std::fclose(file_);
  if (!committed_) std::remove(tmp_path_.c_str());
}

void IndexFileWriter::write_bytes(const void* data, std::size_t bytes) {
  if (bytes && std::fwrite(data, 1, bytes, file_) != bytes)
    throw IoError("cannot write '" + path_ + "': " + errno_text());
  pos_ += bytes;
}

void IndexFileWriter::pad_to(std::uint64_t alignment) {
  static const unsigned char zeros[kSectionAlignment] = {};
  const std::uint64_t rem = pos_ % alignment;
  if (rem) write_bytes(zeros, alignment - rem);
}

void IndexFileWriter::add_section(std::uint32_t id, const void* data, std::size_t bytes) {
  pad_to(kSectionAlignment);  // so a memory-mapped section is aligned for SIMD loads
  entries_.push_back({id, pos_, bytes, crc32(data, bytes)});
  write_bytes(data, bytes);
}

void IndexFileWriter::commit() {
  pad_to(8);
  const std::uint64_t table_offset = pos_;
  std::vector<unsigned char> table(entries_.size() * kSectionEntryBytes, 0);
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    unsigned char* e = table.data() + i * kSectionEntryBytes;
    put<std::uint32_t>(e, 0, entries_[i].id);
    put<std::uint32_t>(e, 4, entries_[i].crc);
    put<std::uint64_t>(e, 8, entries_[i].offset);
    put<std::uint64_t>(e, 16, entries_[i].length);
  }
  write_bytes(table.data(), table.size());

  unsigned char h[kHeaderBytes] = {};
  std::memcpy(h, kFileMagic, 8);
  put<std::uint32_t>(h, 8, kFormatVersion);
  put<std::uint32_t>(h, 12, kHeaderBytes);
  put<std::uint32_t>(h, 16, static_cast<std::uint32_t>(info_.kind));
  put<std::uint32_t>(h, 20, static_cast<std::uint32_t>(info_.metric));
  put<std::uint64_t>(h, 24, info_.dim);
  put<std::uint64_t>(h, 32, info_.count);
  put<std::uint32_t>(h, 40, static_cast<std::uint32_t>(entries_.size()));
  put<std::uint32_t>(h, 44, crc32(table.data(), table.size()));
  put<std::uint64_t>(h, 48, table_offset);
  put<std::uint32_t>(h, 56, 0);
  put<std::uint32_t>(h, 60, crc32(h, 60));
  if (std::fseek(file_, 0, SEEK_SET) != 0 || std::fwrite(h, 1, sizeof h, file_) != sizeof h)
    throw IoError("cannot write '" + path_ + "': " + errno_text());
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
    throw IoError("cannot write '" + path_ + "': " + errno_text());
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) throw IoError("cannot write '" + path_ + "': " + errno_text());
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    throw IoError("cannot replace '" + path_ + "': " + errno_text());
  committed_ = true;
}

// ---------------------------------------------------------------------------------------------

namespace {

FileInfo parse_header(const unsigned char* h, std::size_t file_size, const std::string& path,
                      std::uint64_t* table_offset, std::uint32_t* section_count, std::uint32_t* table_crc) {
  if (file_size < kHeaderBytes) {
    if (file_size >= 8 && std::memcmp(h, kFileMagic, 8) != 0)
      throw FormatError("'" + path + "' is not a vecdex index file (bad magic)");
    throw FormatError("'" + path + "' is truncated: " + std::to_string(file_size) + " bytes, smaller than the header");
  }
  if (std::memcmp(h, kFileMagic, 8) != 0) throw FormatError("'" + path + "' is not a vecdex index file (bad magic)");
  const std::uint32_t version = get<std::uint32_t>(h, 8);
  if (version == 0 || version > kFormatVersion)
    throw FormatError("'" + path + "' has format version " + std::to_string(version) +
                      "; this vecdex reads versions up to " + std::to_string(kFormatVersion));
  if (get<std::uint32_t>(h, 60) != crc32(h, 60))
    throw FormatError("corrupt index file '" + path + "': header checksum mismatch");
  if (get<std::uint32_t>(h, 12) != kHeaderBytes) throw FormatError("corrupt index file '" + path + "': header size");
  FileInfo info;
  const std::uint32_t kind = get<std::uint32_t>(h, 16), metric = get<std::uint32_t>(h, 20);
  if (kind < 1 || kind > 3) throw FormatError("corrupt index file '" + path + "': unknown index kind");
  if (metric > 2) throw FormatError("corrupt index file '" + path + "': unknown metric");
  info.kind = static_cast<IndexKind>(kind);
  info.metric = static_cast<Metric>(metric);
  info.dim = get<std::uint64_t>(h, 24);
  info.count = get<std::uint64_t>(h, 32);
  if (info.dim == 0 || info.dim > (1u << 20)) throw FormatError("corrupt index file '" + path + "': bad dimension");
  if (info.count > kMaxNodes) throw FormatError("corrupt index file '" + path + "': bad row count");
  *section_count = get<std::uint32_t>(h, 40);
  *table_crc = get<std::uint32_t>(h, 44);
  *table_offset = get<std::uint64_t>(h, 48);
  return info;
}

}  // namespace

IndexFileReader::IndexFileReader(const std::string& path) : path_(path), file_(MappedFile::open(path)) {
  const std::size_t size = file_->size();
  const unsigned char* base = file_->data();
  if (size == 0) throw FormatError("'" + path + "' is empty, not a vecdex index file");
  std::uint64_t table_offset;
  std::uint32_t count, table_crc;
  info_ = parse_header(base, size, path, &table_offset, &count, &table_crc);
  const std::uint64_t table_bytes = std::uint64_t(count) * kSectionEntryBytes;
  if (count > 4096 || table_offset < kHeaderBytes || table_offset > size || table_bytes > size - table_offset)
    throw FormatError("'" + path + "' is truncated or corrupt: section table lies outside the file");
  const unsigned char* table = base + table_offset;
  if (crc32(table, table_bytes) != table_crc)
    throw FormatError("corrupt index file '" + path + "': section table checksum mismatch");
  for (std::uint32_t i = 0; i < count; ++i) {
    const unsigned char* e = table + std::size_t(i) * kSectionEntryBytes;
    const std::uint32_t id = get<std::uint32_t>(e, 0), crc = get<std::uint32_t>(e, 4);
    const std::uint64_t off = get<std::uint64_t>(e, 8), len = get<std::uint64_t>(e, 16);
    if (off < kHeaderBytes || off > table_offset || len > table_offset - off)
      throw FormatError("'" + path + "' is truncated or corrupt: section " + section_name(id) + " lies outside the file");
    if (off % kSectionAlignment != 0) throw FormatError("corrupt index file '" + path + "': misaligned section");
    if (crc32(base + off, len) != crc)
      throw FormatError("corrupt index file '" + path + "': checksum mismatch in section " + section_name(id));
    if (!sections_.emplace(id, std::make_pair(off, len)).second)
      throw FormatError("corrupt index file '" + path + "': duplicate section " + section_name(id));
  }
}

std::pair<const unsigned char*, std::size_t> IndexFileReader::bytes(std::uint32_t id) const {
  auto it = sections_.find(id);
  if (it == sections_.end())
    throw FormatError("corrupt index file '" + path_ + "': missing section " + section_name(id));
  return {file_->data() + it->second.first, static_cast<std::size_t>(it->second.second)};
}

Params IndexFileReader::params() const {
  if (!has(section::kParams)) return Params();  // a flat index written before it had parameters
  auto b = bytes(section::kParams);
  return Params::parse(b.first, b.second);
}

std::string IndexFileReader::section_name(std::uint32_t id) {
  std::string s(4, ' ');
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>((id >> (8 * i)) & 0xFF);
    s[i] = (c >= 32 && c < 127) ? c : '?';
  }
  return s;
}

FileInfo peek_index_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw IoError("cannot open '" + path + "': " + errno_text());
  unsigned char h[kHeaderBytes] = {};
  const std::size_t got = std::fread(h, 1, sizeof h, f);
  std::fclose(f);
  std::uint64_t table_offset;
  std::uint32_t count, table_crc;
  if (got == 0) throw FormatError("'" + path + "' is empty, not a vecdex index file");
  return parse_header(h, got, path, &table_offset, &count, &table_crc);
}

}  // namespace vecdex
