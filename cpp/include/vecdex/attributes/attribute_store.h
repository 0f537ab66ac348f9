// Attribute columns beside the vectors: one value (or, for `keywords`, a list) per row and field,
// with the indexes filters are answered from (posting lists per value, a sorted order per numeric
// column, bitsets for booleans and for which rows have a value). Rows are the index's rows: the
// store grows with every add() and is saved, loaded and memory-mapped with the index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vecdex/attributes/bitset.h"
#include "vecdex/common.h"
#include "vecdex/io/file_format.h"

namespace vecdex {

enum class FieldType : std::uint8_t { Keyword = 0, Keywords = 1, Int = 2, Float = 3, Bool = 4 };

const char* field_type_name(FieldType t);
// InvalidArgument naming the field for an unknown type name.
FieldType field_type_from_name(const std::string& type_name, const std::string& field);

// Fields in declaration order.
using Schema = std::vector<std::pair<std::string, FieldType>>;

// One field's values for n rows: the input of add() and update_attributes(), and what get()
// returns. Only the vector matching `type` is used.
struct AttributeColumn {
  std::string name;
  FieldType type = FieldType::Keyword;
  std::vector<std::uint8_t> missing;   // n entries: 1 where the row has no value (None)
  std::vector<std::string> strings;    // keyword: n (ignored where missing); keywords: every value, row after row
  std::vector<std::uint64_t> offsets;  // keywords: n + 1; row i holds strings[offsets[i], offsets[i + 1])
  std::vector<std::int64_t> ints;      // int: n
  std::vector<double> floats;          // float: n (never NaN where present)
  std::vector<std::uint8_t> bools;     // bool: n, 0 or 1

  std::size_t rows() const { return missing.size(); }
};

// Columns for a batch of rows; a field not in the batch is missing for those rows.
struct AttributeBatch {
  std::vector<AttributeColumn> columns;
};

// A value in a filter: a string, an integer, a float or a boolean.
struct AttributeValue {
  enum class Kind : std::uint8_t { String, Int, Float, Bool };
  Kind kind = Kind::Int;
  std::string s;
  std::int64_t i = 0;
  double f = 0.0;
  bool b = false;

  static AttributeValue of_string(std::string v) {
    AttributeValue a;
    a.kind = Kind::String;
    a.s = std::move(v);
    return a;
  }
  static AttributeValue of_int(std::int64_t v) {
    AttributeValue a;
    a.kind = Kind::Int;
    a.i = v;
    return a;
  }
  static AttributeValue of_float(double v) {
    AttributeValue a;
    a.kind = Kind::Float;
    a.f = v;
    return a;
  }
  static AttributeValue of_bool(bool v) {
    AttributeValue a;
    a.kind = Kind::Bool;
    a.b = v;
    return a;
  }
};
const char* value_kind_name(AttributeValue::Kind k);

// What filter evaluation may ask a column. Each call ORs rows into `out` (sized to the rows).
class AttributeColumnIndex {
 public:
  virtual ~AttributeColumnIndex() = default;
  virtual FieldType type() const = 0;
  // Rows holding v (for keywords: among their values). v's kind is already checked against the
  // type: String for keyword(s), Int or Float for int/float (compared mathematically), Bool.
  virtual void rows_equal(const AttributeValue& v, Bitset& out) const = 0;
  // int/float only: rows whose value lies between the bounds; nullptr means unbounded.
  virtual void rows_in_range(const AttributeValue* lo, bool lo_inclusive, const AttributeValue* hi,
                             bool hi_inclusive, Bitset& out) const;
  // Rows with a value (for keywords: at least one).
  virtual void rows_present(Bitset& out) const = 0;
  // int/float only: the rows holding a value, by (value, row), and their values (into `ints`
  // for an int column, `floats` for a float one).
  virtual void sorted_values(std::vector<node_t>& rows, std::vector<std::int64_t>& ints,
                             std::vector<double>& floats) const;
};

// Sign of a - b, compared mathematically (an int against a float bound, and the reverse).
int compare_attribute(std::int64_t a, const AttributeValue& b);
int compare_attribute(double a, const AttributeValue& b);

class AttributeColumnStore;  // one field's data and indexes (attribute_store.cpp)

class AttributeStore {
 public:
  AttributeStore();
  ~AttributeStore();
  AttributeStore(AttributeStore&&) noexcept;
  AttributeStore& operator=(AttributeStore&&) noexcept;

  std::size_t rows() const { return rows_; }
  Schema schema() const;
  bool empty_schema() const { return columns_.empty(); }
  // nullptr when the field is not declared.
  const AttributeColumnIndex* column(const std::string& name) const;
  // A view-backed store (memory-mapped load) refuses every change.
  bool is_view() const { return view_; }

  // Throws InvalidArgument when declaring `fields` would fail (empty name, another type than
  // the declared one); changes nothing.
  void check_declare(const Schema& fields) const;
  // Declares new fields (missing on every existing row); a field already declared with the
  // same type is left as it is. Call check_declare first: this assumes the fields are valid.
  void declare(const Schema& fields);

  // Validates a batch for n rows without changing anything: names, no field twice, column
  // lengths, types against the schema, no NaN, keywords offsets. InvalidArgument naming the field.
  void check(const AttributeBatch& batch, std::size_t n) const;
  // Appends n rows (batch may be nullptr: all missing); fields new in the batch are declared
  // with the batch's type. Assumes check() passed.
  void append(const AttributeBatch* batch, std::size_t n);
  // Replaces the batch's fields for the given rows (distinct, < rows()); the other fields keep
  // their values. Assumes check(batch, n) passed.
  void assign(const node_t* rows, std::size_t n, const AttributeBatch& batch);
  // Values of `fields` (all, in declaration order, when empty) for the given rows;
  // InvalidArgument "unknown field 'x'".
  AttributeBatch get(const node_t* rows, std::size_t n, const std::vector<std::string>& fields) const;

  std::size_t memory_bytes() const;

  // Sections ATTS (directory) and ATTD (data); nothing when no field is declared.
  void write(IndexFileWriter& w) const;
  // Files without the sections load with an empty schema. FormatError on anything inconsistent.
  void read(const IndexFileReader& r, std::size_t rows, bool view);

 private:
  AttributeColumnStore* find(const std::string& name) const;
  AttributeColumnStore& add_column(const std::string& name, FieldType type);

  std::size_t rows_ = 0;
  bool view_ = false;
  std::vector<std::unique_ptr<AttributeColumnStore>> columns_;  // declaration order
  std::unordered_map<std::string, std::size_t> by_name_;
};

}  // namespace vecdex
