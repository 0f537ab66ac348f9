// A filter over attributes, as handed over by the Python layer (the canonical AST of the filter
// spec), and its evaluation to the set of matching rows. Evaluation answers comparisons from
// the store's indexes (posting lists, sorted orders, bitsets), never by interpreting each row.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "vecdex/attributes/attribute_store.h"
#include "vecdex/attributes/bitset.h"

namespace vecdex {

struct FilterNode {
  enum class Op : std::uint8_t { All, None, And, Or, Not, Eq, In, AllOf, Range, Exists };

  Op op = Op::All;
  std::vector<FilterNode> children;    // and/or: any number (empty: all / none); not: exactly one
  std::string field;                   // eq, in, all_of, range, exists
  std::vector<AttributeValue> values;  // eq: one value; in, all_of: the list
  // range: a missing bound is unbounded; bounds are Int or Float.
  bool has_lo = false, has_hi = false;
  AttributeValue lo, hi;
  bool lo_inclusive = true, hi_inclusive = true;
};

// Rows (of `rows`) matching `node`. Semantics: a missing value matches no comparison; `not` is
// the complement; `in` with no values and `all_of` with no values match nothing; `all_of` on a
// single-valued field matches rows whose one value equals every listed value. The whole tree
// is checked before anything is evaluated: InvalidArgument naming the field for an unknown
// field or a value of the wrong type (a string for an int field, NaN, a range on a keyword).
Bitset evaluate(const AttributeStore& store, const FilterNode& node, std::size_t rows);

// The same checks alone.
void validate_filter(const AttributeStore& store, const FilterNode& node);

}  // namespace vecdex
