// Readers for the files ANN benchmarks come in: numpy .npy and the TEXMEX .fvecs/.ivecs/.bvecs
// formats. Every size is checked against the file's real length before anything is allocated or
// read, so a damaged or mismatched file ends in a message naming the file, never in a crash or a
// multi-gigabyte allocation.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace vecdex_bench {

// A problem with an input file: reported as "error: ..." and a non-zero exit.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
struct Matrix {
  std::size_t rows = 0, cols = 0;
  std::size_t file_rows = 0;  // rows the file holds; more than `rows` when a --max-* option cut it
  std::string format;         // how it was read, for the report: "npy <f4", "fvecs", ...
  std::vector<T> data;
  const T* row(std::size_t i) const { return data.data() + i * cols; }
};

// Both on-disk formats are little-endian; a big-endian host would need byte swaps nobody has asked for.
inline bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// "" when the name has none.
inline std::string lower_extension(const std::string& path) {
  const std::size_t slash = path.find_last_of("/\\");
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// Text taken from a damaged file, made safe to print: bytes outside printable ASCII become \xNN
// and anything past 40 characters is cut, so an error message cannot garble the terminal.
inline std::string printable(const std::string& raw) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < raw.size() && i < 40; ++i) {
    const unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return raw.size() > 40 ? out + "..." : out;
}

// a * b, or false when it would not fit in 64 bits (a header can claim any shape).
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  *out = a * b;
  return true;
}

class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    std::error_code ec;
    const std::filesystem::file_status st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st)) fail("no such file");
    if (!std::filesystem::is_regular_file(st)) fail("not a regular file");
    size_ = std::filesystem::file_size(path, ec);
    if (ec) fail("cannot determine its size: " + ec.message());
    in_.open(path, std::ios::binary);
    if (!in_) fail("cannot open it for reading");
  }

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }

  void seek(std::uint64_t offset) {
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(offset));
    if (!in_) fail("seek failed");
  }
  // Reads exactly `bytes`; `what` names the part of the file for the message.
  void read(void* out, std::size_t bytes, const char* what) {
    if (bytes != 0 && !in_.read(static_cast<char*>(out), static_cast<std::streamsize>(bytes))) {
      fail(std::string("unexpected end of file or read error while reading ") + what);
    }
  }
  [[noreturn]] void fail(const std::string& why) const { throw InputError("'" + path_ + "': " + why); }

 private:
  std::string path_;
  std::ifstream in_;
  std::uint64_t size_ = 0;
};

// ---------------------------------------------------------------------------------------------
// .npy
// ---------------------------------------------------------------------------------------------

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
  std::uint64_t data_offset = 0;
};

// The header is a Python dict literal. Only the literals numpy writes are accepted (strings,
// True/False, tuples of integers); anything else, e.g. a structured dtype's list, is refused
// rather than half-understood.
class NpyDictParser {
 public:
  NpyDictParser(const std::string& text, const InputFile& file) : s_(text), file_(file) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (peek() != '}') {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"') bad("'descr' is not a simple dtype string (structured arrays are not supported)");
        h.descr = string_literal();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        h.shape = int_tuple();
        have_shape = true;
      } else {
        bad("unexpected key '" + printable(key) + "'");
      }
      if (peek() == ',') ++pos_;
    }
    if (!have_descr || !have_order || !have_shape) bad("'descr', 'fortran_order' or 'shape' is missing");
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& why) const { file_.fail("npy header not understood: " + why); }

  char peek() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ >= s_.size()) bad("it ends early");
    return s_[pos_];
  }
  void expect(char c) {
    if (peek() != c) bad(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
    ++pos_;
  }
  std::string string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') bad("expected a quoted string at offset " + std::to_string(pos_));
    const std::size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) bad("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    peek();
    for (const bool value : {true, false}) {
      const std::string word = value ? "True" : "False";
      if (s_.compare(pos_, word.size(), word) == 0) {
        pos_ += word.size();
        return value;
      }
    }
    bad("'fortran_order' is not True or False");
  }
  std::vector<std::uint64_t> int_tuple() {
    std::vector<std::uint64_t> out;
    expect('(');
    while (peek() != ')') {
      if (!std::isdigit(static_cast<unsigned char>(s_[pos_]))) bad("'shape' holds something other than integers");
      std::uint64_t v = 0;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        const std::uint64_t digit = static_cast<std::uint64_t>(s_[pos_++] - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) bad("'shape' value out of range");
        v = v * 10 + digit;
      }
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 wrote long integers with a suffix
      out.push_back(v);
      if (peek() == ',') ++pos_;
    }
    ++pos_;
    return out;
  }

  const std::string& s_;
  const InputFile& file_;
  std::size_t pos_ = 0;
};

inline NpyHeader read_npy_header(InputFile& f) {
  unsigned char pre[10];
  if (f.size() < 10) f.fail("too short to be an .npy file (" + std::to_string(f.size()) + " bytes)");
  f.read(pre, 8, "the npy magic");
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0) f.fail("not an .npy file (bad magic bytes)");
  const int major = pre[6];
  std::uint64_t header_len = 0, offset = 0;
  if (major == 1) {
    f.read(pre + 8, 2, "the npy header length");
    header_len = pre[8] | (std::uint64_t(pre[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    unsigned char len[4];
    f.read(len, 4, "the npy header length");
    header_len = len[0] | (std::uint64_t(len[1]) << 8) | (std::uint64_t(len[2]) << 16) | (std::uint64_t(len[3]) << 24);
    offset = 12;
  } else {
    f.fail("unsupported .npy format version " + std::to_string(major));
  }
  if (header_len > f.size() - offset) f.fail("truncated: the npy header runs past the end of the file");
  std::string text(static_cast<std::size_t>(header_len), '\0');
  f.read(&text[0], text.size(), "the npy header");
  NpyHeader h = NpyDictParser(text, f).parse();
  h.data_offset = offset + header_len;
  return h;
}

inline std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Opens an .npy file holding a 2-D C-order array whose dtype is one of `accepted` (descr ->
// item size) and checks that the data is exactly as long as the header says.
inline NpyHeader open_npy_2d(InputFile& f, const std::map<std::string, std::size_t>& accepted, const char* purpose,
                             const char* hint) {
  NpyHeader h = read_npy_header(f);
  if (!accepted.count(h.descr)) {
    std::string list;
    for (const auto& a : accepted) list += (list.empty() ? "'" : ", '") + a.first + "'";
    f.fail("dtype '" + printable(h.descr) + "' is not supported for " + purpose + " (expected " + list + ")" + hint);
  }
  if (h.fortran_order) f.fail("array is in Fortran order; save a C-ordered array (numpy.ascontiguousarray)");
  if (h.shape.size() != 2) f.fail("expected a 2-D array, got shape " + shape_string(h.shape));
  std::uint64_t items = 0, bytes = 0;
  if (!checked_mul(h.shape[0], h.shape[1], &items) || !checked_mul(items, accepted.at(h.descr), &bytes) ||
      bytes > std::numeric_limits<std::uint64_t>::max() - h.data_offset) {
    f.fail("shape " + shape_string(h.shape) + " is impossibly large");
  }
  const std::uint64_t expected = h.data_offset + bytes;
  if (f.size() < expected) {
    f.fail("truncated: header says shape " + shape_string(h.shape) + " of '" + h.descr + "' (" +
           std::to_string(expected) + " bytes with the header), but the file has " + std::to_string(f.size()) +
           " bytes");
  }
  if (f.size() > expected) {
    f.fail(std::to_string(f.size() - expected) + " unexpected bytes after the data of shape " +
           shape_string(h.shape));
  }
  return h;
}

// Converts `count` little-endian values of the file's type to T, a block at a time so the raw
// bytes never need a second full-size buffer.
template <class Raw, class T, class Convert>
void read_converted(InputFile& f, T* out, std::uint64_t count, Convert convert) {
  constexpr std::size_t kBlock = 1 << 16;
  std::vector<Raw> buf(static_cast<std::size_t>(std::min<std::uint64_t>(count, kBlock)));
  for (std::uint64_t done = 0; done < count;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(count - done, kBlock));
    f.read(buf.data(), n * sizeof(Raw), "the array data");
    for (std::size_t i = 0; i < n; ++i) out[done + i] = convert(buf[i], done + i);
    done += n;
  }
}

// ---------------------------------------------------------------------------------------------
// .fvecs / .ivecs / .bvecs: each record is an int32 dimension followed by that many values.
// ---------------------------------------------------------------------------------------------

struct VecsLayout {
  std::size_t dim = 0;
  std::uint64_t records = 0;
};

template <class Raw>
VecsLayout vecs_layout(InputFile& f, const char* ext) {
  if (f.size() == 0) f.fail("file is empty");
  if (f.size() < 4) f.fail("too short to hold a ." + std::string(ext) + " record");
  std::int32_t dim = 0;
  f.read(&dim, 4, "the first record's dimension");
  // The dimension cap is vecdex's own; it also rejects files that are not vecs at all.
  if (dim <= 0 || dim > (1 << 20)) {
    f.fail("first record has dimension " + std::to_string(dim) + "; not a ." + ext + " file?");
  }
  const std::uint64_t record = 4 + std::uint64_t(dim) * sizeof(Raw);
  if (f.size() % record != 0) {
    f.fail("size " + std::to_string(f.size()) + " is not a multiple of the record size " + std::to_string(record) +
           " (4 + " + std::to_string(dim) + " x " + std::to_string(sizeof(Raw)) + " bytes): truncated, or not a ." +
           ext + " file of dimension " + std::to_string(dim));
  }
  f.seek(0);
  return {static_cast<std::size_t>(dim), f.size() / record};
}

// Reads the first `rows` records, checking each one's dimension against the first record's.
template <class Raw, class T>
void read_vecs_records(InputFile& f, const VecsLayout& L, std::size_t rows, T* out) {
  std::vector<Raw> values(L.dim);
  for (std::size_t r = 0; r < rows; ++r) {
    std::int32_t dim = 0;
    f.read(&dim, 4, "a record's dimension");
    if (dim != static_cast<std::int32_t>(L.dim)) {
      f.fail("record " + std::to_string(r) + " has dimension " + std::to_string(dim) + ", but the first has " +
             std::to_string(L.dim));
    }
    f.read(values.data(), values.size() * sizeof(Raw), "a record's values");
    for (std::size_t j = 0; j < L.dim; ++j) out[r * L.dim + j] = static_cast<T>(values[j]);
  }
}

template <class Raw, class T>
Matrix<T> load_vecs(InputFile& f, const char* ext, std::size_t max_rows) {
  const VecsLayout L = vecs_layout<Raw>(f, ext);
  Matrix<T> m;
  m.file_rows = static_cast<std::size_t>(L.records);
  m.rows = max_rows ? std::min(m.file_rows, max_rows) : m.file_rows;
  m.cols = L.dim;
  m.format = ext;
  m.data.resize(m.rows * m.cols);
  read_vecs_records<Raw>(f, L, m.rows, m.data.data());
  return m;
}

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

inline std::string unknown_extension(const std::string& ext) {
  return ext.empty() ? std::string("no file extension to tell the format") : "unknown extension '." + ext + "'";
}

// vecdex refuses non-finite rows too, but only here is the file known, so the message can name it.
inline void check_finite(const InputFile& f, const Matrix<float>& m) {
  for (std::size_t i = 0; i < m.rows; ++i) {
    for (std::size_t j = 0; j < m.cols; ++j) {
      if (!std::isfinite(m.row(i)[j])) f.fail("row " + std::to_string(i) + " holds NaN or infinity");
    }
  }
}

// float32 vectors from .npy ('<f4'), .fvecs or .bvecs (bytes widened to float). max_rows 0 = all.
inline Matrix<float> load_vectors(const std::string& path, std::size_t max_rows) {
  const std::string ext = lower_extension(path);
  InputFile f(path);
  Matrix<float> m;
  if (ext == "npy") {
    const NpyHeader h = open_npy_2d(f, {{"<f4", 4}}, "vectors", "; convert with .astype(numpy.float32)");
    m.file_rows = static_cast<std::size_t>(h.shape[0]);
    m.cols = static_cast<std::size_t>(h.shape[1]);
    m.rows = max_rows ? std::min(m.file_rows, max_rows) : m.file_rows;
    m.format = "npy <f4";
    m.data.resize(m.rows * m.cols);
    f.seek(h.data_offset);
    f.read(m.data.data(), m.data.size() * sizeof(float), "the array data");
  } else if (ext == "fvecs") {
    m = load_vecs<float, float>(f, "fvecs", max_rows);
  } else if (ext == "bvecs") {
    m = load_vecs<std::uint8_t, float>(f, "bvecs", max_rows);
  } else if (ext == "ivecs") {
    f.fail("an .ivecs file holds integers; vectors must be .npy (float32), .fvecs or .bvecs");
  } else {
    f.fail(unknown_extension(ext) + ": vectors must be .npy (float32), .fvecs or .bvecs");
  }
  if (m.file_rows == 0) f.fail("holds no vectors");
  if (m.cols == 0) f.fail("vectors have dimension 0");
  check_finite(f, m);
  return m;
}

// Neighbour ids from .npy ('<i4', '<i8' or '<u8') or .ivecs, one row per query.
inline Matrix<std::int64_t> load_ground_truth(const std::string& path) {
  const std::string ext = lower_extension(path);
  InputFile f(path);
  Matrix<std::int64_t> m;
  if (ext == "npy") {
    const NpyHeader h = open_npy_2d(f, {{"<i4", 4}, {"<i8", 8}, {"<u8", 8}}, "ground truth ids", "");
    m.rows = m.file_rows = static_cast<std::size_t>(h.shape[0]);
    m.cols = static_cast<std::size_t>(h.shape[1]);
    m.format = "npy " + h.descr;
    m.data.resize(m.rows * m.cols);
    f.seek(h.data_offset);
    const std::uint64_t count = m.data.size();
    if (h.descr == "<i4") {
      read_converted<std::int32_t>(f, m.data.data(), count, [](std::int32_t v, std::uint64_t) { return std::int64_t(v); });
    } else if (h.descr == "<i8") {
      f.read(m.data.data(), count * 8, "the array data");
    } else {
      const std::size_t cols = m.cols;
      read_converted<std::uint64_t>(f, m.data.data(), count, [&](std::uint64_t v, std::uint64_t at) {
        if (v > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
          f.fail("id " + std::to_string(v) + " at row " + std::to_string(at / cols) + " is out of range");
        }
        return std::int64_t(v);
      });
    }
  } else if (ext == "ivecs") {
    m = load_vecs<std::int32_t, std::int64_t>(f, "ivecs", 0);
  } else {
    f.fail(unknown_extension(ext) + ": ground truth must be .npy (int32/int64/uint64) or .ivecs");
  }
  if (m.rows == 0 || m.cols == 0) f.fail("ground truth is empty (shape " + std::to_string(m.rows) + " x " +
                                         std::to_string(m.cols) + ")");
  return m;
}

}  // namespace vecdex_bench
