#include "vecdex/attributes/filter.h"

#include <cmath>

namespace vecdex {
namespace {

using Kind = AttributeValue::Kind;

const AttributeColumnIndex& column_of(const AttributeStore& store, const std::string& field) {
  const AttributeColumnIndex* c = store.column(field);
  if (!c) throw InvalidArgument("unknown field '" + field + "'");
  return *c;
}

void check_value(FieldType type, const std::string& field, const AttributeValue& v) {
  bool ok = false;
  switch (type) {
    case FieldType::Keyword:
    case FieldType::Keywords: ok = v.kind == Kind::String; break;
    case FieldType::Int:
    case FieldType::Float: ok = v.kind == Kind::Int || v.kind == Kind::Float; break;
    case FieldType::Bool: ok = v.kind == Kind::Bool; break;
  }
  if (!ok)
    throw InvalidArgument("field '" + field + "' has type " + field_type_name(type) + ", cannot compare it with a " +
                          value_kind_name(v.kind) + " value");
  if (v.kind == Kind::Float && std::isnan(v.f))
    throw InvalidArgument("field '" + field + "': NaN cannot be compared");
}

void validate(const AttributeStore& store, const FilterNode& n, int depth) {
  if (depth > 10000) throw InvalidArgument("filter is nested too deeply");
  switch (n.op) {
    case FilterNode::Op::All:
    case FilterNode::Op::None: return;
    case FilterNode::Op::And:
    case FilterNode::Op::Or:
      for (const FilterNode& c : n.children) validate(store, c, depth + 1);
      return;
    case FilterNode::Op::Not:
      if (n.children.size() != 1) throw InvalidArgument("a 'not' filter node takes exactly one child");
      validate(store, n.children[0], depth + 1);
      return;
    case FilterNode::Op::Eq:
    case FilterNode::Op::In:
    case FilterNode::Op::AllOf: {
      const FieldType t = column_of(store, n.field).type();
      if (n.op == FilterNode::Op::Eq && n.values.size() != 1)
        throw InvalidArgument("an 'eq' filter on field '" + n.field + "' takes exactly one value");
      for (const AttributeValue& v : n.values) check_value(t, n.field, v);
      return;
    }
    case FilterNode::Op::Range: {
      const FieldType t = column_of(store, n.field).type();
      if (t != FieldType::Int && t != FieldType::Float)
        throw InvalidArgument("range filter on field '" + n.field + "' of type " + field_type_name(t) +
                              ": ranges need an int or float field");
      if (n.has_lo) check_value(t, n.field, n.lo);
      if (n.has_hi) check_value(t, n.field, n.hi);
      return;
    }
    case FilterNode::Op::Exists: column_of(store, n.field); return;
  }
  throw InvalidArgument("unknown filter node");
}

Bitset eval(const AttributeStore& store, const FilterNode& n, std::size_t rows) {
  switch (n.op) {
    case FilterNode::Op::All: return Bitset(rows, true);
    case FilterNode::Op::None: return Bitset(rows);
    case FilterNode::Op::And: {
      if (n.children.empty()) return Bitset(rows, true);
      Bitset acc = eval(store, n.children[0], rows);
      for (std::size_t i = 1; i < n.children.size() && acc.any(); ++i) acc.and_with(eval(store, n.children[i], rows));
      return acc;
    }
    case FilterNode::Op::Or: {
      Bitset acc(rows);
      for (const FilterNode& c : n.children) acc.or_with(eval(store, c, rows));
      return acc;
    }
    case FilterNode::Op::Not: return eval(store, n.children[0], rows).flip_all();
    case FilterNode::Op::Eq:
    case FilterNode::Op::In: {
      Bitset acc(rows);
      const AttributeColumnIndex& c = column_of(store, n.field);
      for (const AttributeValue& v : n.values) c.rows_equal(v, acc);
      return acc;
    }
    case FilterNode::Op::AllOf: {
      if (n.values.empty()) return Bitset(rows);
      const AttributeColumnIndex& c = column_of(store, n.field);
      Bitset acc(rows);
      c.rows_equal(n.values[0], acc);
      for (std::size_t i = 1; i < n.values.size() && acc.any(); ++i) {
        Bitset one(rows);
        c.rows_equal(n.values[i], one);
        acc.and_with(one);
      }
      return acc;
    }
    case FilterNode::Op::Range: {
      Bitset acc(rows);
      column_of(store, n.field)
          .rows_in_range(n.has_lo ? &n.lo : nullptr, n.lo_inclusive, n.has_hi ? &n.hi : nullptr, n.hi_inclusive, acc);
      return acc;
    }
    case FilterNode::Op::Exists: {
      Bitset acc(rows);
      column_of(store, n.field).rows_present(acc);
      return acc;
    }
  }
  throw InvalidArgument("unknown filter node");
}

}  // namespace

void validate_filter(const AttributeStore& store, const FilterNode& node) { validate(store, node, 0); }

Bitset evaluate(const AttributeStore& store, const FilterNode& node, std::size_t rows) {
  validate(store, node, 0);
  return eval(store, node, rows);
}

}  // namespace vecdex
