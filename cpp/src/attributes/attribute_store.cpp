#include "vecdex/attributes/attribute_store.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace vecdex {

const char* field_type_name(FieldType t) {
  switch (t) {
    case FieldType::Keyword: return "keyword";
    case FieldType::Keywords: return "keywords";
    case FieldType::Int: return "int";
    case FieldType::Float: return "float";
    case FieldType::Bool: return "bool";
  }
  return "unknown";
}

FieldType field_type_from_name(const std::string& type_name, const std::string& field) {
  if (type_name == "keyword") return FieldType::Keyword;
  if (type_name == "keywords") return FieldType::Keywords;
  if (type_name == "int") return FieldType::Int;
  if (type_name == "float") return FieldType::Float;
  if (type_name == "bool") return FieldType::Bool;
  throw InvalidArgument("unknown type '" + type_name + "' for field '" + field +
                        "': expected 'keyword', 'keywords', 'int', 'float' or 'bool'");
}

const char* value_kind_name(AttributeValue::Kind k) {
  switch (k) {
    case AttributeValue::Kind::String: return "str";
    case AttributeValue::Kind::Int: return "int";
    case AttributeValue::Kind::Float: return "float";
    case AttributeValue::Kind::Bool: return "bool";
  }
  return "unknown";
}

void AttributeColumnIndex::sorted_values(std::vector<node_t>&, std::vector<std::int64_t>&,
                                         std::vector<double>&) const {
  throw InvalidArgument("only int and float fields have an order");
}

void AttributeColumnIndex::rows_in_range(const AttributeValue*, bool, const AttributeValue*, bool, Bitset&) const {
  throw InvalidArgument(std::string("range comparisons need an int or float field, not ") + field_type_name(type()));
}

namespace {

constexpr std::uint32_t kNoCode = 0xFFFFFFFFu;
constexpr std::uint32_t kDirectoryVersion = 1;
constexpr std::size_t kArrayAlignment = 64;

// ---- bit arrays: one bit per row, bits beyond the rows always zero ----------------------------

std::size_t words_for(std::size_t rows) { return (rows + 63) / 64; }
bool bit(const AlignedArray<std::uint64_t>& a, std::size_t r) { return (a[r >> 6] >> (r & 63)) & 1; }
void set_bit(AlignedArray<std::uint64_t>& a, std::size_t r, bool v) {
  const std::uint64_t m = std::uint64_t(1) << (r & 63);
  if (v)
    a[r >> 6] |= m;
  else
    a[r >> 6] &= ~m;
}
std::size_t popcount(const AlignedArray<std::uint64_t>& a) {
  std::size_t c = 0;
  for (std::size_t i = 0; i < a.size(); ++i) c += static_cast<std::size_t>(__builtin_popcountll(a[i]));
  return c;
}
void or_words(Bitset& out, const AlignedArray<std::uint64_t>& a) {
  std::uint64_t* w = out.mutable_words();
  const std::size_t m = std::min(out.word_count(), a.size());
  for (std::size_t i = 0; i < m; ++i) w[i] |= a[i];
}
void set_rows(Bitset& out, const node_t* rows, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (rows[i] < out.size()) out.set(rows[i]);
}

// ---- exact comparisons between stored numbers and filter values ----------------------------

// Sign of d - i, mathematically (d is never NaN here).
int cmp_double_int(double d, std::int64_t i) {
  if (d < -9223372036854775808.0) return -1;
  if (d >= 9223372036854775808.0) return 1;
  const double t = std::trunc(d);
  const std::int64_t ti = static_cast<std::int64_t>(t);
  if (ti != i) return ti < i ? -1 : 1;
  return d < t ? -1 : (d > t ? 1 : 0);
}
int cmp_value(std::int64_t a, const AttributeValue& b) {
  if (b.kind == AttributeValue::Kind::Int) return a < b.i ? -1 : (a > b.i ? 1 : 0);
  return -cmp_double_int(b.f, a);
}
int cmp_value(double a, const AttributeValue& b) {
  if (b.kind == AttributeValue::Kind::Float) return a < b.f ? -1 : (a > b.f ? 1 : 0);
  return cmp_double_int(a, b.i);
}

// ---- the ATTD data section: arrays at 64-byte aligned offsets --------------------------------

using ArrayRefs = std::vector<std::pair<std::uint64_t, std::uint64_t>>;  // (offset, bytes) in ATTD

class ArrayOut {
 public:
  std::vector<unsigned char> data;
  ArrayRefs* refs = nullptr;

  template <class T>
  void array(const T* p, std::size_t count) {
    data.resize((data.size() + kArrayAlignment - 1) / kArrayAlignment * kArrayAlignment, 0);
    refs->push_back({data.size(), count * sizeof(T)});
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    data.insert(data.end(), b, b + count * sizeof(T));
  }
  template <class T>
  void array(const AlignedArray<T>& a) {
    array(a.data(), a.size());
  }
  template <class T>
  void array(const std::vector<T>& a) {
    array(a.data(), a.size());
  }
};

class ArrayIn {
 public:
  ArrayIn(const unsigned char* base, std::size_t bytes, std::shared_ptr<const void> owner, const ArrayRefs& refs,
          const std::string& field)
      : base_(base), bytes_(bytes), owner_(std::move(owner)), refs_(refs), field_(field) {}

  // The next array, which must hold exactly `count` values.
  template <class T>
  AlignedArray<T> take(std::uint64_t count, bool view) {
    const auto ref = next();
    if (count > ref.second / sizeof(T) || ref.second != count * sizeof(T))
      fail("an array has " + std::to_string(ref.second) + " bytes, expected " + std::to_string(count) + " values");
    return make<T>(ref, count, view);
  }
  // The next array, of any length that is a whole number of values.
  template <class T>
  AlignedArray<T> take_any(bool view) {
    const auto ref = next();
    if (ref.second % sizeof(T) != 0) fail("an array's length is not a whole number of values");
    return make<T>(ref, ref.second / sizeof(T), view);
  }
  void finish() const {
    if (next_ != refs_.size()) fail("unexpected extra arrays");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError("corrupt index file: attribute '" + field_ + "': " + what);
  }

 private:
  std::pair<std::uint64_t, std::uint64_t> next() {
    if (next_ >= refs_.size()) fail("missing arrays");
    const auto ref = refs_[next_++];
    if (ref.first % kArrayAlignment != 0 || ref.first > bytes_ || ref.second > bytes_ - ref.first)
      fail("an array lies outside the data section");
    return ref;
  }
  template <class T>
  AlignedArray<T> make(std::pair<std::uint64_t, std::uint64_t> ref, std::size_t count, bool view) {
    const T* p = reinterpret_cast<const T*>(base_ + ref.first);
    if (view) return AlignedArray<T>::view(p, count, owner_);
    AlignedArray<T> out;
    out.append(p, count);
    return out;
  }

  const unsigned char* base_;
  std::size_t bytes_;
  std::shared_ptr<const void> owner_;
  const ArrayRefs& refs_;
  std::string field_;
  std::size_t next_ = 0;
};

// Little-endian scalars for the ATTS directory, bounds-checked on the way in.
class ByteOut {
 public:
  std::vector<unsigned char> b;
  template <class T>
  void put(T v) {
    unsigned char tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
  }
  void put_bytes(const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }
};

class ByteIn {
 public:
  ByteIn(const unsigned char* p, std::size_t n) : p_(p), n_(n) {}
  template <class T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string(std::size_t len) {
    need(len);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  std::size_t left() const { return n_ - pos_; }

 private:
  void need(std::size_t k) const {
    if (k > n_ - pos_) throw FormatError("corrupt index file: attribute directory is truncated");
  }
  const unsigned char* p_;
  std::size_t n_, pos_ = 0;
};

// ---- dictionary: distinct strings of a keyword column, code = position -----------------------

class Dictionary {
 public:
  std::size_t size() const { return values_.size(); }
  bool find(const std::string& s, std::uint32_t* code) const {
    auto it = codes_.find(s);
    if (it == codes_.end()) return false;
    *code = it->second;
    return true;
  }
  std::uint32_t intern(const std::string& s, bool* added) {
    auto it = codes_.find(s);
    *added = it == codes_.end();
    if (!*added) return it->second;
    if (values_.size() >= kNoCode - 1) throw InvalidArgument("too many distinct values in one attribute");
    const auto code = static_cast<std::uint32_t>(values_.size());
    values_.push_back(s);
    codes_.emplace(s, code);
    return code;
  }
  const std::string& value(std::uint32_t code) const { return values_[code]; }
  std::size_t memory_bytes() const {
    std::size_t b = values_.capacity() * sizeof(std::string);
    // each string twice (vector and map key) plus the map's node and bucket overhead
    for (const auto& s : values_) b += 2 * (s.capacity() > 15 ? s.capacity() + 1 : 0) + sizeof(std::string) + 32;
    return b + codes_.bucket_count() * sizeof(void*);
  }
  void write(ArrayOut& out) const {
    std::vector<std::uint64_t> offsets(values_.size() + 1, 0);
    std::string chars;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      chars += values_[i];
      offsets[i + 1] = chars.size();
    }
    out.array(offsets);
    out.array(chars.data(), chars.size());
  }
  void read(ArrayIn& in, std::size_t size) {
    const auto offsets = in.take<std::uint64_t>(std::uint64_t(size) + 1, false);
    const auto chars = in.take_any<char>(false);
    if (offsets[0] != 0 || offsets[size] != chars.size()) in.fail("dictionary offsets do not match its text");
    values_.clear();
    codes_.clear();
    values_.reserve(size);
    for (std::size_t i = 0; i < size; ++i) {
      if (offsets[i + 1] < offsets[i] || offsets[i + 1] > chars.size()) in.fail("dictionary offsets are not sorted");
      values_.emplace_back(chars.data() + offsets[i], offsets[i + 1] - offsets[i]);
      if (!codes_.emplace(values_.back(), static_cast<std::uint32_t>(i)).second) in.fail("duplicate dictionary value");
    }
  }

 private:
  std::vector<std::string> values_;
  std::unordered_map<std::string, std::uint32_t> codes_;
};

// ---- posting lists: the sorted rows holding each value ----------------------------------------

// Owned as one vector per value, so appends (rows always larger than any listed) are a
// push_back; memory-mapped as CSR straight from the file. Per value this costs one vector
// header (24 bytes) beside the rows, which stays small even for thousands of distinct values.
class PostingLists {
 public:
  std::size_t lists() const { return view_ ? offsets_.size() - 1 : owned_.size(); }
  std::pair<const node_t*, std::size_t> list(std::size_t v) const {
    if (view_) return {rows_.data() + offsets_[v], static_cast<std::size_t>(offsets_[v + 1] - offsets_[v])};
    return {owned_[v].data(), owned_[v].size()};
  }
  void add_list() {
    require_owned();
    owned_.emplace_back();
  }
  void push(std::uint32_t v, node_t row) { owned_[v].push_back(row); }

  // Removes and adds (value, row) pairs: every removed pair is listed, no added one is.
  void update(std::vector<std::pair<std::uint32_t, node_t>> rm, std::vector<std::pair<std::uint32_t, node_t>> add) {
    require_owned();
    std::sort(rm.begin(), rm.end());
    std::sort(add.begin(), add.end());
    std::size_t i = 0, j = 0;
    std::vector<node_t> kept, merged, rm_rows, add_rows;
    while (i < rm.size() || j < add.size()) {
      const std::uint32_t v = j >= add.size() || (i < rm.size() && rm[i].first < add[j].first) ? rm[i].first
                                                                                                 : add[j].first;
      rm_rows.clear();
      add_rows.clear();
      for (; i < rm.size() && rm[i].first == v; ++i) rm_rows.push_back(rm[i].second);
      for (; j < add.size() && add[j].first == v; ++j) add_rows.push_back(add[j].second);
      std::vector<node_t>& l = owned_[v];
      kept.clear();
      std::set_difference(l.begin(), l.end(), rm_rows.begin(), rm_rows.end(), std::back_inserter(kept));
      merged.clear();
      std::merge(kept.begin(), kept.end(), add_rows.begin(), add_rows.end(), std::back_inserter(merged));
      l.assign(merged.begin(), merged.end());
    }
  }

  std::size_t memory_bytes() const {
    if (view_) return offsets_.bytes() + rows_.bytes();
    std::size_t b = owned_.capacity() * sizeof(std::vector<node_t>);
    for (const auto& l : owned_) b += l.capacity() * sizeof(node_t);
    return b;
  }
  void write(ArrayOut& out) const {
    std::vector<std::uint64_t> offsets(lists() + 1, 0);
    std::vector<node_t> rows;
    for (std::size_t v = 0; v < lists(); ++v) {
      const auto l = list(v);
      rows.insert(rows.end(), l.first, l.first + l.second);
      offsets[v + 1] = rows.size();
    }
    out.array(offsets);
    out.array(rows);
  }
  // Checks every list is strictly increasing and below `rows`.
  void read(ArrayIn& in, std::size_t lists, std::size_t rows, bool view) {
    auto offsets = in.take<std::uint64_t>(std::uint64_t(lists) + 1, view);
    auto all = in.take_any<node_t>(view);
    if (offsets[0] != 0 || offsets[lists] != all.size()) in.fail("posting offsets do not match the postings");
    for (std::size_t v = 0; v < lists; ++v) {
      if (offsets[v + 1] < offsets[v] || offsets[v + 1] > all.size()) in.fail("posting offsets are not sorted");
      for (std::uint64_t k = offsets[v]; k < offsets[v + 1]; ++k) {
        if (all[k] >= rows) in.fail("a posting names a row beyond the index");
        if (k > offsets[v] && all[k] <= all[k - 1]) in.fail("a posting list is not sorted");
      }
    }
    view_ = view;
    owned_.clear();
    if (view) {
      offsets_ = std::move(offsets);
      rows_ = std::move(all);
    } else {
      owned_.resize(lists);
      for (std::size_t v = 0; v < lists; ++v) owned_[v].assign(all.data() + offsets[v], all.data() + offsets[v + 1]);
    }
  }

 private:
  void require_owned() const {
    if (view_) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  }
  bool view_ = false;
  std::vector<std::vector<node_t>> owned_;
  AlignedArray<std::uint64_t> offsets_;  // view: lists + 1
  AlignedArray<node_t> rows_;            // view: all postings, list after list
};

}  // namespace

// ---- columns ----------------------------------------------------------------------------------

class AttributeColumnStore : public AttributeColumnIndex {
 public:
  explicit AttributeColumnStore(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }
  std::size_t rows() const { return rows_; }

  // Checks the values themselves (lengths and names are the store's); InvalidArgument.
  virtual void check_values(const AttributeColumn&) const {}
  // Appends n rows from `c`, or n missing rows when c is nullptr.
  virtual void append(const AttributeColumn* c, std::size_t n) = 0;
  virtual void assign(const node_t* rows, std::size_t n, const AttributeColumn& c) = 0;
  virtual void get(const node_t* rows, std::size_t n, AttributeColumn& out) const = 0;
  virtual std::size_t memory_bytes() const { return present_.bytes(); }
  virtual void write(ArrayOut& out) const = 0;
  virtual std::uint64_t aux() const { return 0; }  // dictionary size, for keyword columns
  virtual void read(ArrayIn& in, std::size_t rows, std::uint64_t aux, bool view) = 0;

  void rows_present(Bitset& out) const override { or_words(out, present_); }

 protected:
  // Grows the present bits to rows_ + n (new rows missing) and returns the first new row.
  std::size_t grow(std::size_t n) {
    const std::size_t first = rows_;
    rows_ += n;
    present_.resize(words_for(rows_), 0);
    return first;
  }
  void read_present(ArrayIn& in, std::size_t rows, bool view) {
    present_ = in.take<std::uint64_t>(words_for(rows), view);
    if (rows % 64 && !present_.empty() && (present_[present_.size() - 1] >> (rows % 64)) != 0)
      in.fail("bits set beyond the last row");
    rows_ = rows;
  }
  void fill_missing(const node_t* rows, std::size_t n, AttributeColumn& out) const {
    out.name = name_;
    out.type = type();
    out.missing.resize(n);
    for (std::size_t i = 0; i < n; ++i) out.missing[i] = !bit(present_, rows[i]);
  }

  std::string name_;
  std::size_t rows_ = 0;
  AlignedArray<std::uint64_t> present_;  // bit per row: the row has a value
};

namespace {

class KeywordColumn final : public AttributeColumnStore {
 public:
  using AttributeColumnStore::AttributeColumnStore;
  FieldType type() const override { return FieldType::Keyword; }

  void append(const AttributeColumn* c, std::size_t n) override {
    const std::size_t first = grow(n);
    codes_.resize(rows_, kNoCode);
    if (!c) return;
    for (std::size_t i = 0; i < n; ++i) {
      if (c->missing[i]) continue;
      const std::uint32_t code = intern(c->strings[i]);
      codes_[first + i] = code;
      set_bit(present_, first + i, true);
      postings_.push(code, static_cast<node_t>(first + i));
    }
  }
  void assign(const node_t* rows, std::size_t n, const AttributeColumn& c) override {
    std::vector<std::pair<std::uint32_t, node_t>> rm, add;
    for (std::size_t i = 0; i < n; ++i) {
      const node_t r = rows[i];
      const std::uint32_t old = codes_[r];
      const std::uint32_t code = c.missing[i] ? kNoCode : intern(c.strings[i]);
      if (old == code) continue;
      if (old != kNoCode) rm.push_back({old, r});
      if (code != kNoCode) add.push_back({code, r});
      codes_[r] = code;
      set_bit(present_, r, code != kNoCode);
    }
    postings_.update(std::move(rm), std::move(add));
  }
  void get(const node_t* rows, std::size_t n, AttributeColumn& out) const override {
    fill_missing(rows, n, out);
    out.strings.resize(n);
    for (std::size_t i = 0; i < n; ++i)
      if (codes_[rows[i]] != kNoCode) out.strings[i] = dict_.value(codes_[rows[i]]);
  }
  void rows_equal(const AttributeValue& v, Bitset& out) const override {
    std::uint32_t code;
    if (!dict_.find(v.s, &code)) return;  // never seen: matches nothing
    const auto l = postings_.list(code);
    set_rows(out, l.first, l.second);
  }
  std::size_t memory_bytes() const override {
    return AttributeColumnStore::memory_bytes() + codes_.bytes() + dict_.memory_bytes() + postings_.memory_bytes();
  }
  std::uint64_t aux() const override { return dict_.size(); }
  void write(ArrayOut& out) const override {
    out.array(present_);
    out.array(codes_);
    dict_.write(out);
    postings_.write(out);
  }
  void read(ArrayIn& in, std::size_t rows, std::uint64_t aux, bool view) override {
    if (aux >= kNoCode) in.fail("dictionary too large");
    read_present(in, rows, view);
    codes_ = in.take<std::uint32_t>(rows, view);
    dict_.read(in, aux);
    postings_.read(in, aux, rows, view);
    in.finish();
    std::size_t present = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const bool has = bit(present_, r);
      present += has;
      if (has ? codes_[r] >= aux : codes_[r] != kNoCode) in.fail("a row's value code is out of range");
    }
    // Sorted lists whose every entry agrees with the row's code, as many entries as rows with
    // a value: exactly the postings the codes imply.
    std::size_t total = 0;
    for (std::size_t v = 0; v < aux; ++v) {
      const auto l = postings_.list(v);
      total += l.second;
      for (std::size_t k = 0; k < l.second; ++k)
        if (codes_[l.first[k]] != v) in.fail("postings disagree with the values");
    }
    if (total != present) in.fail("postings disagree with the values");
  }

 private:
  std::uint32_t intern(const std::string& s) {
    bool added;
    const std::uint32_t code = dict_.intern(s, &added);
    if (added) postings_.add_list();
    return code;
  }

  AlignedArray<std::uint32_t> codes_;  // per row; kNoCode where missing
  Dictionary dict_;
  PostingLists postings_;
};

class KeywordsColumn final : public AttributeColumnStore {
 public:
  explicit KeywordsColumn(std::string name) : AttributeColumnStore(std::move(name)) {
    const std::uint64_t zero = 0;
    row_offsets_.append(&zero, 1);
  }
  FieldType type() const override { return FieldType::Keywords; }

  void append(const AttributeColumn* c, std::size_t n) override {
    const std::size_t first = grow(n);
    std::vector<std::uint32_t> distinct;
    for (std::size_t i = 0; i < n; ++i) {
      if (c && !c->missing[i]) {
        set_bit(present_, first + i, true);
        distinct.clear();
        for (std::uint64_t k = c->offsets[i]; k < c->offsets[i + 1]; ++k) {
          const std::uint32_t code = intern(c->strings[k]);
          codes_.append(&code, 1);
          distinct.push_back(code);
        }
        sort_unique(distinct);
        for (std::uint32_t code : distinct) postings_.push(code, static_cast<node_t>(first + i));
      }
      const std::uint64_t end = codes_.size();
      row_offsets_.append(&end, 1);
    }
  }
  void assign(const node_t* rows, std::size_t n, const AttributeColumn& c) override {
    std::vector<std::uint32_t> batch_row(rows_, kNoCode);  // row -> position in the batch
    for (std::size_t i = 0; i < n; ++i) batch_row[rows[i]] = static_cast<std::uint32_t>(i);
    std::vector<std::pair<std::uint32_t, node_t>> rm, add;
    AlignedArray<std::uint64_t> offsets;
    AlignedArray<std::uint32_t> codes;
    offsets.reserve(rows_ + 1);
    codes.reserve(codes_.size());
    const std::uint64_t zero = 0;
    offsets.append(&zero, 1);
    std::vector<std::uint32_t> old_set, new_set, diff;
    for (std::size_t r = 0; r < rows_; ++r) {
      const std::uint32_t* old_begin = codes_.data() + row_offsets_[r];
      const std::uint32_t* old_end = codes_.data() + row_offsets_[r + 1];
      const std::uint32_t i = batch_row[r];
      if (i == kNoCode) {
        codes.append(old_begin, static_cast<std::size_t>(old_end - old_begin));
      } else {
        old_set.assign(old_begin, old_end);
        new_set.clear();
        set_bit(present_, r, !c.missing[i]);
        if (!c.missing[i]) {
          for (std::uint64_t k = c.offsets[i]; k < c.offsets[i + 1]; ++k) {
            const std::uint32_t code = intern(c.strings[k]);
            codes.append(&code, 1);
            new_set.push_back(code);
          }
        }
        sort_unique(old_set);
        sort_unique(new_set);
        diff.clear();
        std::set_difference(old_set.begin(), old_set.end(), new_set.begin(), new_set.end(), std::back_inserter(diff));
        for (std::uint32_t v : diff) rm.push_back({v, static_cast<node_t>(r)});
        diff.clear();
        std::set_difference(new_set.begin(), new_set.end(), old_set.begin(), old_set.end(), std::back_inserter(diff));
        for (std::uint32_t v : diff) add.push_back({v, static_cast<node_t>(r)});
      }
      const std::uint64_t end = codes.size();
      offsets.append(&end, 1);
    }
    row_offsets_ = std::move(offsets);
    codes_ = std::move(codes);
    postings_.update(std::move(rm), std::move(add));
  }
  void get(const node_t* rows, std::size_t n, AttributeColumn& out) const override {
    fill_missing(rows, n, out);
    out.offsets.assign(1, 0);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::uint64_t k = row_offsets_[rows[i]]; k < row_offsets_[rows[i] + 1]; ++k)
        out.strings.push_back(dict_.value(codes_[k]));
      out.offsets.push_back(out.strings.size());
    }
  }
  void rows_equal(const AttributeValue& v, Bitset& out) const override {
    std::uint32_t code;
    if (!dict_.find(v.s, &code)) return;
    const auto l = postings_.list(code);
    set_rows(out, l.first, l.second);
  }
  void rows_present(Bitset& out) const override {
    const std::size_t m = std::min(rows_, out.size());
    for (std::size_t r = 0; r < m; ++r)
      if (row_offsets_[r + 1] > row_offsets_[r]) out.set(r);
  }
  std::size_t memory_bytes() const override {
    return AttributeColumnStore::memory_bytes() + row_offsets_.bytes() + codes_.bytes() + dict_.memory_bytes() +
           postings_.memory_bytes();
  }
  std::uint64_t aux() const override { return dict_.size(); }
  void write(ArrayOut& out) const override {
    out.array(present_);
    out.array(row_offsets_);
    out.array(codes_);
    dict_.write(out);
    postings_.write(out);
  }
  void read(ArrayIn& in, std::size_t rows, std::uint64_t aux, bool view) override {
    if (aux >= kNoCode) in.fail("dictionary too large");
    read_present(in, rows, view);
    row_offsets_ = in.take<std::uint64_t>(std::uint64_t(rows) + 1, view);
    codes_ = in.take_any<std::uint32_t>(view);
    dict_.read(in, aux);
    postings_.read(in, aux, rows, view);
    in.finish();
    if (row_offsets_[0] != 0 || row_offsets_[rows] != codes_.size()) in.fail("row offsets do not match the values");
    std::size_t pairs = 0;
    std::vector<std::uint32_t> distinct;
    for (std::size_t r = 0; r < rows; ++r) {
      if (row_offsets_[r + 1] < row_offsets_[r] || row_offsets_[r + 1] > codes_.size())
        in.fail("row offsets are not sorted");
      if (!bit(present_, r) && row_offsets_[r + 1] != row_offsets_[r]) in.fail("a missing row holds values");
      distinct.assign(codes_.data() + row_offsets_[r], codes_.data() + row_offsets_[r + 1]);
      for (std::uint32_t c : distinct)
        if (c >= aux) in.fail("a value code is out of range");
      sort_unique(distinct);
      pairs += distinct.size();
    }
    std::size_t total = 0;
    for (std::size_t v = 0; v < aux; ++v) {
      const auto l = postings_.list(v);
      total += l.second;
      for (std::size_t k = 0; k < l.second; ++k) {
        const node_t r = l.first[k];
        const std::uint32_t* b = codes_.data() + row_offsets_[r];
        const std::uint32_t* e = codes_.data() + row_offsets_[r + 1];
        if (std::find(b, e, static_cast<std::uint32_t>(v)) == e) in.fail("postings disagree with the values");
      }
    }
    if (total != pairs) in.fail("postings disagree with the values");
  }

 private:
  static void sort_unique(std::vector<std::uint32_t>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  std::uint32_t intern(const std::string& s) {
    bool added;
    const std::uint32_t code = dict_.intern(s, &added);
    if (added) postings_.add_list();
    return code;
  }

  AlignedArray<std::uint64_t> row_offsets_;  // rows + 1: row r holds codes_[off[r], off[r + 1])
  AlignedArray<std::uint32_t> codes_;        // values as given, row after row
  Dictionary dict_;
  PostingLists postings_;
};

template <class T>
class NumericColumn final : public AttributeColumnStore {
  static constexpr bool kIsInt = std::is_same<T, std::int64_t>::value;

 public:
  using AttributeColumnStore::AttributeColumnStore;
  FieldType type() const override { return kIsInt ? FieldType::Int : FieldType::Float; }

  void check_values(const AttributeColumn& c) const override {
    if (kIsInt) return;
    for (std::size_t i = 0; i < c.rows(); ++i)
      if (!c.missing[i] && std::isnan(c.floats[i]))
        throw InvalidArgument("attribute '" + name_ + "' row " + std::to_string(i) +
                              ": NaN is not allowed (use None for a missing value)");
  }
  void append(const AttributeColumn* c, std::size_t n) override {
    const std::size_t first = grow(n);
    values_.resize(rows_, T());
    if (!c) return;
    std::vector<node_t> added;
    for (std::size_t i = 0; i < n; ++i) {
      if (c->missing[i]) continue;
      values_[first + i] = value_of(*c, i);
      set_bit(present_, first + i, true);
      added.push_back(static_cast<node_t>(first + i));
    }
    merge_into_order(std::move(added), nullptr);
  }
  void assign(const node_t* rows, std::size_t n, const AttributeColumn& c) override {
    Bitset changed(rows_);
    std::vector<node_t> added;
    for (std::size_t i = 0; i < n; ++i) {
      const node_t r = rows[i];
      changed.set(r);
      set_bit(present_, r, !c.missing[i]);
      values_[r] = c.missing[i] ? T() : value_of(c, i);
      if (!c.missing[i]) added.push_back(r);
    }
    merge_into_order(std::move(added), &changed);
  }
  void get(const node_t* rows, std::size_t n, AttributeColumn& out) const override {
    fill_missing(rows, n, out);
    auto& dst = target(out);
    dst.resize(n);
    for (std::size_t i = 0; i < n; ++i) dst[i] = values_[rows[i]];
  }
  void rows_equal(const AttributeValue& v, Bitset& out) const override { rows_in_range(&v, true, &v, true, out); }
  void rows_in_range(const AttributeValue* lo, bool lo_inclusive, const AttributeValue* hi, bool hi_inclusive,
                     Bitset& out) const override {
    const node_t* b = order_.data();
    const node_t* e = b + order_.size();
    const node_t* from = b;
    const node_t* to = e;
    if (lo)
      from = std::partition_point(b, e, [&](node_t r) {
        const int c = cmp_value(values_[r], *lo);
        return lo_inclusive ? c < 0 : c <= 0;
      });
    if (hi)
      to = std::partition_point(b, e, [&](node_t r) {
        const int c = cmp_value(values_[r], *hi);
        return hi_inclusive ? c <= 0 : c < 0;
      });
    for (const node_t* p = from; p < to; ++p)
      if (*p < out.size()) out.set(*p);
  }
  void sorted_values(std::vector<node_t>& rows, std::vector<std::int64_t>& ints,
                     std::vector<double>& floats) const override {
    rows.assign(order_.data(), order_.data() + order_.size());
    auto& dst = [&]() -> std::vector<T>& {
      if constexpr (kIsInt)
        return ints;
      else
        return floats;
    }();
    dst.resize(rows.size());
    for (std::size_t k = 0; k < rows.size(); ++k) dst[k] = values_[rows[k]];
  }
  std::size_t memory_bytes() const override {
    return AttributeColumnStore::memory_bytes() + values_.bytes() + order_.bytes();
  }
  void write(ArrayOut& out) const override {
    out.array(present_);
    out.array(values_);
    out.array(order_);
  }
  void read(ArrayIn& in, std::size_t rows, std::uint64_t, bool view) override {
    read_present(in, rows, view);
    values_ = in.take<T>(rows, view);
    order_ = in.take<node_t>(popcount(present_), view);
    in.finish();
    for (std::size_t r = 0; r < rows; ++r)
      if (!kIsInt && bit(present_, r) && std::isnan(static_cast<double>(values_[r]))) in.fail("NaN value");
    // Strictly increasing by (value, row) over as many present rows as there are: exactly the
    // present rows, each once, in order.
    for (std::size_t k = 0; k < order_.size(); ++k) {
      const node_t r = order_[k];
      if (r >= rows || !bit(present_, r)) in.fail("the sorted order names a row without a value");
      if (k > 0 && !less(order_[k - 1], r)) in.fail("the sorted order is not sorted");
    }
  }

 private:
  static T value_of(const AttributeColumn& c, std::size_t i) {
    if constexpr (kIsInt)
      return c.ints[i];
    else
      return c.floats[i];
  }
  static std::vector<T>& target(AttributeColumn& c) {
    if constexpr (kIsInt)
      return c.ints;
    else
      return c.floats;
  }
  bool less(node_t a, node_t b) const {
    return values_[a] < values_[b] || (!(values_[b] < values_[a]) && a < b);
  }
  // Sorts `added` by (value, row) and merges it into the order, first dropping `changed` rows.
  void merge_into_order(std::vector<node_t> added, const Bitset* changed) {
    if (added.empty() && !changed) return;
    auto by_value = [this](node_t a, node_t b) { return less(a, b); };
    std::sort(added.begin(), added.end(), by_value);
    std::vector<node_t> kept;
    kept.reserve(order_.size());
    for (std::size_t k = 0; k < order_.size(); ++k)
      if (!changed || !changed->test(order_[k])) kept.push_back(order_[k]);
    AlignedArray<node_t> merged;
    merged.resize(kept.size() + added.size());
    std::merge(kept.begin(), kept.end(), added.begin(), added.end(), merged.mutable_data(), by_value);
    order_ = std::move(merged);
  }

  AlignedArray<T> values_;     // per row; 0 where missing
  AlignedArray<node_t> order_;  // rows with a value, by (value, row)
};

class BoolColumn final : public AttributeColumnStore {
 public:
  using AttributeColumnStore::AttributeColumnStore;
  FieldType type() const override { return FieldType::Bool; }

  void append(const AttributeColumn* c, std::size_t n) override {
    const std::size_t first = grow(n);
    true_.resize(words_for(rows_), 0);
    if (!c) return;
    for (std::size_t i = 0; i < n; ++i) {
      if (c->missing[i]) continue;
      set_bit(present_, first + i, true);
      set_bit(true_, first + i, c->bools[i] != 0);
    }
  }
  void assign(const node_t* rows, std::size_t n, const AttributeColumn& c) override {
    for (std::size_t i = 0; i < n; ++i) {
      set_bit(present_, rows[i], !c.missing[i]);
      set_bit(true_, rows[i], !c.missing[i] && c.bools[i] != 0);
    }
  }
  void get(const node_t* rows, std::size_t n, AttributeColumn& out) const override {
    fill_missing(rows, n, out);
    out.bools.resize(n);
    for (std::size_t i = 0; i < n; ++i) out.bools[i] = bit(true_, rows[i]);
  }
  // Two bitsets instead of two posting lists: about half the rows match either value, and a
  // bit per row is 32 times smaller than a row number.
  void rows_equal(const AttributeValue& v, Bitset& out) const override {
    std::uint64_t* w = out.mutable_words();
    const std::size_t m = std::min(out.word_count(), true_.size());
    for (std::size_t i = 0; i < m; ++i) w[i] |= v.b ? true_[i] : (present_[i] & ~true_[i]);
  }
  std::size_t memory_bytes() const override { return AttributeColumnStore::memory_bytes() + true_.bytes(); }
  void write(ArrayOut& out) const override {
    out.array(present_);
    out.array(true_);
  }
  void read(ArrayIn& in, std::size_t rows, std::uint64_t, bool view) override {
    read_present(in, rows, view);
    true_ = in.take<std::uint64_t>(words_for(rows), view);
    in.finish();
    for (std::size_t i = 0; i < true_.size(); ++i)
      if (true_[i] & ~present_[i]) in.fail("a missing row is marked true");
  }

 private:
  AlignedArray<std::uint64_t> true_;  // bit per row: the value is true
};

std::unique_ptr<AttributeColumnStore> make_column(const std::string& name, FieldType type) {
  switch (type) {
    case FieldType::Keyword: return std::make_unique<KeywordColumn>(name);
    case FieldType::Keywords: return std::make_unique<KeywordsColumn>(name);
    case FieldType::Int: return std::make_unique<NumericColumn<std::int64_t>>(name);
    case FieldType::Float: return std::make_unique<NumericColumn<double>>(name);
    case FieldType::Bool: return std::make_unique<BoolColumn>(name);
  }
  throw InvalidArgument("unknown field type");
}

std::string quoted(const std::string& name) { return "'" + name + "'"; }

}  // namespace

// ---- the store --------------------------------------------------------------------------------

AttributeStore::AttributeStore() = default;
AttributeStore::~AttributeStore() = default;
AttributeStore::AttributeStore(AttributeStore&&) noexcept = default;
AttributeStore& AttributeStore::operator=(AttributeStore&&) noexcept = default;

Schema AttributeStore::schema() const {
  Schema s;
  for (const auto& c : columns_) s.emplace_back(c->name(), c->type());
  return s;
}

AttributeColumnStore* AttributeStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : columns_[it->second].get();
}

const AttributeColumnIndex* AttributeStore::column(const std::string& name) const { return find(name); }

AttributeColumnStore& AttributeStore::add_column(const std::string& name, FieldType type) {
  auto c = make_column(name, type);
  c->append(nullptr, rows_);
  by_name_.emplace(name, columns_.size());
  columns_.push_back(std::move(c));
  return *columns_.back();
}

void AttributeStore::check_declare(const Schema& fields) const {
  std::unordered_map<std::string, FieldType> seen;
  for (const auto& f : fields) {
    if (f.first.empty()) throw InvalidArgument("attribute names must be non-empty strings");
    const AttributeColumnStore* c = find(f.first);
    if (c && c->type() != f.second)
      throw InvalidArgument("field " + quoted(f.first) + " is already declared as " + field_type_name(c->type()) +
                            ", cannot redeclare it as " + field_type_name(f.second));
    auto ins = seen.emplace(f.first, f.second);
    if (!ins.second && ins.first->second != f.second)
      throw InvalidArgument("field " + quoted(f.first) + " is declared twice with different types");
  }
}

void AttributeStore::declare(const Schema& fields) {
  if (view_) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  for (const auto& f : fields)
    if (!find(f.first)) add_column(f.first, f.second);
}

void AttributeStore::check(const AttributeBatch& batch, std::size_t n) const {
  std::unordered_set<std::string> seen;
  for (const AttributeColumn& c : batch.columns) {
    const std::string f = quoted(c.name);
    if (c.name.empty()) throw InvalidArgument("attribute names must be non-empty strings");
    if (!seen.insert(c.name).second) throw InvalidArgument("attribute " + f + " is given twice");
    if (c.missing.size() != n)
      throw InvalidArgument("attribute " + f + " has " + std::to_string(c.missing.size()) + " values for " +
                            std::to_string(n) + " rows");
    const AttributeColumnStore* existing = find(c.name);
    if (existing && existing->type() != c.type)
      throw InvalidArgument("attribute " + f + " has type " + field_type_name(existing->type()) + ", got " +
                            field_type_name(c.type) + " values");
    bool sizes_ok = true;
    switch (c.type) {
      case FieldType::Keyword: sizes_ok = c.strings.size() == n; break;
      case FieldType::Keywords:
        sizes_ok = c.offsets.size() == n + 1 && c.offsets[0] == 0 && c.offsets[n] == c.strings.size();
        for (std::size_t i = 0; sizes_ok && i < n; ++i)
          sizes_ok = c.offsets[i + 1] >= c.offsets[i] && (!c.missing[i] || c.offsets[i + 1] == c.offsets[i]);
        break;
      case FieldType::Int: sizes_ok = c.ints.size() == n; break;
      case FieldType::Float: sizes_ok = c.floats.size() == n; break;
      case FieldType::Bool: sizes_ok = c.bools.size() == n; break;
    }
    if (!sizes_ok) throw InvalidArgument("attribute " + f + ": inconsistent column");
    if (c.type == FieldType::Float) {
      for (std::size_t i = 0; i < n; ++i)
        if (!c.missing[i] && std::isnan(c.floats[i]))
          throw InvalidArgument("attribute " + f + " row " + std::to_string(i) +
                                ": NaN is not allowed (use None for a missing value)");
    }
    if (existing) existing->check_values(c);
  }
}

void AttributeStore::append(const AttributeBatch* batch, std::size_t n) {
  if (view_) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  std::unordered_map<std::string, const AttributeColumn*> given;
  if (batch) {
    for (const AttributeColumn& c : batch->columns) {
      if (!find(c.name)) add_column(c.name, c.type);
      given.emplace(c.name, &c);
    }
  }
  for (auto& col : columns_) {
    auto it = given.find(col->name());
    col->append(it == given.end() ? nullptr : it->second, n);
  }
  rows_ += n;
}

void AttributeStore::assign(const node_t* rows, std::size_t n, const AttributeBatch& batch) {
  if (view_) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  for (const AttributeColumn& c : batch.columns) {
    AttributeColumnStore* col = find(c.name);
    if (!col) col = &add_column(c.name, c.type);
    col->assign(rows, n, c);
  }
}

AttributeBatch AttributeStore::get(const node_t* rows, std::size_t n, const std::vector<std::string>& fields) const {
  AttributeBatch out;
  if (fields.empty()) {
    for (const auto& c : columns_) {
      out.columns.emplace_back();
      c->get(rows, n, out.columns.back());
    }
    return out;
  }
  for (const std::string& f : fields) {
    const AttributeColumnStore* c = find(f);
    if (!c) throw InvalidArgument("unknown field " + quoted(f));
    out.columns.emplace_back();
    c->get(rows, n, out.columns.back());
  }
  return out;
}

std::size_t AttributeStore::memory_bytes() const {
  std::size_t b = 0;
  for (const auto& c : columns_) b += c->memory_bytes() + c->name().capacity();
  return b;
}

// ATTS: u32 version, u32 field count, u64 rows, then per field: u32 name length, name bytes,
// u8 type, 3 zero bytes, u64 aux (dictionary size), u32 array count, (u64 offset, u64 bytes)
// per array, offsets into ATTD. See docs/format.md.
void AttributeStore::write(IndexFileWriter& w) const {
  if (columns_.empty()) return;
  ByteOut dir;
  ArrayOut data;
  dir.put<std::uint32_t>(kDirectoryVersion);
  dir.put<std::uint32_t>(static_cast<std::uint32_t>(columns_.size()));
  dir.put<std::uint64_t>(rows_);
  for (const auto& c : columns_) {
    ArrayRefs refs;
    data.refs = &refs;
    c->write(data);
    dir.put<std::uint32_t>(static_cast<std::uint32_t>(c->name().size()));
    dir.put_bytes(c->name());
    dir.put<std::uint8_t>(static_cast<std::uint8_t>(c->type()));
    for (int i = 0; i < 3; ++i) dir.put<std::uint8_t>(0);
    dir.put<std::uint64_t>(c->aux());
    dir.put<std::uint32_t>(static_cast<std::uint32_t>(refs.size()));
    for (const auto& r : refs) {
      dir.put<std::uint64_t>(r.first);
      dir.put<std::uint64_t>(r.second);
    }
  }
  w.add_section(section::kAttrDirectory, dir.b.data(), dir.b.size());
  w.add_section(section::kAttrData, data.data.data(), data.data.size());
}

void AttributeStore::read(const IndexFileReader& r, std::size_t rows, bool view) {
  AttributeStore fresh;
  fresh.rows_ = rows;
  fresh.view_ = view;  // a memory-mapped index stays read-only, attributes included
  if (!r.has(section::kAttrDirectory)) {
    if (r.has(section::kAttrData)) throw FormatError("corrupt index file: attribute data without a directory");
    *this = std::move(fresh);
    return;
  }
  const auto dir_bytes = r.bytes(section::kAttrDirectory);
  const auto data = r.bytes(section::kAttrData);
  ByteIn dir(dir_bytes.first, dir_bytes.second);
  if (dir.get<std::uint32_t>() != kDirectoryVersion)
    throw FormatError("corrupt index file: unknown attribute directory version");
  const std::uint32_t fields = dir.get<std::uint32_t>();
  if (dir.get<std::uint64_t>() != rows) throw FormatError("corrupt index file: attribute row count mismatch");
  if (fields > dir.left() / 20) throw FormatError("corrupt index file: attribute directory is truncated");
  for (std::uint32_t i = 0; i < fields; ++i) {
    const std::uint32_t name_len = dir.get<std::uint32_t>();
    const std::string name = dir.get_string(name_len);
    const std::uint8_t type = dir.get<std::uint8_t>();
    for (int k = 0; k < 3; ++k) dir.get<std::uint8_t>();
    const std::uint64_t aux = dir.get<std::uint64_t>();
    const std::uint32_t arrays = dir.get<std::uint32_t>();
    if (name.empty() || fresh.find(name)) throw FormatError("corrupt index file: bad or repeated attribute name");
    if (type > static_cast<std::uint8_t>(FieldType::Bool))
      throw FormatError("corrupt index file: attribute " + quoted(name) + " has an unknown type");
    if (arrays > dir.left() / 16) throw FormatError("corrupt index file: attribute directory is truncated");
    ArrayRefs refs(arrays);
    for (auto& ref : refs) {
      ref.first = dir.get<std::uint64_t>();
      ref.second = dir.get<std::uint64_t>();
    }
    auto col = make_column(name, static_cast<FieldType>(type));
    ArrayIn in(data.first, data.second, r.owner(), refs, name);
    col->read(in, rows, aux, view);
    fresh.by_name_.emplace(name, fresh.columns_.size());
    fresh.columns_.push_back(std::move(col));
  }
  if (dir.left() != 0) throw FormatError("corrupt index file: trailing bytes in the attribute directory");
  *this = std::move(fresh);
}

int compare_attribute(std::int64_t a, const AttributeValue& b) { return cmp_value(a, b); }
int compare_attribute(double a, const AttributeValue& b) { return cmp_value(a, b); }

}  // namespace vecdex
