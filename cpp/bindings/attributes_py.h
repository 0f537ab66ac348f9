// Python <-> native attributes: dicts of columns to AttributeBatch, the filter AST (nested
// tuples) to FilterNode, stored values back to Python lists. Values are checked here for their
// Python type (naming the field and row); the core checks everything again against the schema.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "vecdex/attributes/attribute_store.h"
#include "vecdex/attributes/filter.h"
#include "vecdex/index_base.h"

namespace vecdex_py {

namespace py = pybind11;
using vecdex::AttributeBatch;
using vecdex::AttributeColumn;
using vecdex::AttributeValue;
using vecdex::FieldType;
using vecdex::FilterNode;
using vecdex::InvalidArgument;
using vecdex::Schema;

// numpy's scalar types, looked up once per conversion.
struct NumpyTypes {
  py::object ndarray, bool_, integer, floating;
  NumpyTypes() {
    py::module_ np = py::module_::import("numpy");
    ndarray = np.attr("ndarray");
    bool_ = np.attr("bool_");
    integer = np.attr("integer");
    floating = np.attr("floating");
  }
  bool is_bool(py::handle o) const { return PyBool_Check(o.ptr()) || py::isinstance(o, bool_); }
  bool is_int(py::handle o) const { return (PyLong_Check(o.ptr()) && !PyBool_Check(o.ptr())) || py::isinstance(o, integer); }
  bool is_float(py::handle o) const { return PyFloat_Check(o.ptr()) || py::isinstance(o, floating); }
  static bool is_str(py::handle o) { return PyUnicode_Check(o.ptr()); }
  static bool is_list(py::handle o) { return PyList_Check(o.ptr()) || PyTuple_Check(o.ptr()); }
};

inline std::string py_type_name(py::handle o) { return Py_TYPE(o.ptr())->tp_name; }

inline std::string at_row(const std::string& field, std::size_t row) {
  return "attribute '" + field + "' row " + std::to_string(row);
}

inline std::string to_utf8(py::handle o, const std::string& where) {
  Py_ssize_t len = 0;
  const char* s = PyUnicode_AsUTF8AndSize(o.ptr(), &len);
  if (!s) {
    PyErr_Clear();
    throw InvalidArgument(where + ": string is not valid UTF-8");
  }
  return std::string(s, static_cast<std::size_t>(len));
}

inline std::int64_t to_int64(py::handle o, const std::string& where) {
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(o.ptr()));
  if (!i) {
    PyErr_Clear();
    throw InvalidArgument(where + ": expected an integer, got " + py_type_name(o));
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow || (v == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    throw InvalidArgument(where + ": integer does not fit in 64 bits");
  }
  return static_cast<std::int64_t>(v);
}

// The type a Python value suggests, for a field not declared yet; nullopt for None.
inline std::optional<FieldType> infer_type(const NumpyTypes& np, py::handle v, const std::string& where) {
  if (v.is_none()) return std::nullopt;
  if (NumpyTypes::is_str(v)) return FieldType::Keyword;
  if (NumpyTypes::is_list(v)) return FieldType::Keywords;
  if (np.is_bool(v)) return FieldType::Bool;
  if (np.is_int(v)) return FieldType::Int;
  if (np.is_float(v)) return FieldType::Float;
  throw InvalidArgument(where + ": unsupported value of type " + py_type_name(v) +
                        " (expected str, list of str, int, float, bool or None)");
}

[[noreturn]] inline void wrong_type(const std::string& where, FieldType t, py::handle v) {
  throw InvalidArgument(where + ": field has type " + vecdex::field_type_name(t) + ", got a value of type " +
                        py_type_name(v));
}

inline void resize_column(AttributeColumn& c, std::size_t n) {
  c.missing.assign(n, 0);
  switch (c.type) {
    case FieldType::Keyword: c.strings.resize(n); break;
    case FieldType::Keywords: c.offsets.assign(1, 0); break;
    case FieldType::Int: c.ints.assign(n, 0); break;
    case FieldType::Float: c.floats.assign(n, 0.0); break;
    case FieldType::Bool: c.bools.assign(n, 0); break;
  }
}

// A numeric or boolean numpy array, converted without a Python object per value.
inline bool column_from_numpy(const std::string& name, const py::array& arr, const FieldType* declared,
                              AttributeColumn& c) {
  const char kind = arr.dtype().kind();
  const std::size_t n = static_cast<std::size_t>(arr.shape(0));
  FieldType t;
  if (kind == 'b')
    t = FieldType::Bool;
  else if (kind == 'i' || kind == 'u')
    t = declared && *declared == FieldType::Float ? FieldType::Float : FieldType::Int;
  else if (kind == 'f')
    t = FieldType::Float;
  else
    return false;  // strings, objects: converted value by value
  if (declared && *declared != t)
    throw InvalidArgument("attribute '" + name + "' has type " + vecdex::field_type_name(*declared) +
                          ", got a numpy array of dtype " + py::str(arr.dtype()).cast<std::string>());
  c.type = t;
  resize_column(c, n);
  if (t == FieldType::Bool) {
    auto a = py::array_t<bool, py::array::forcecast>::ensure(arr);
    auto u = a.unchecked<1>();
    for (std::size_t i = 0; i < n; ++i) c.bools[i] = u(i);
  } else if (t == FieldType::Int) {
    if (kind == 'u' && n > 0) {
      auto a = py::array_t<std::uint64_t, py::array::forcecast>::ensure(arr);
      auto u = a.unchecked<1>();
      for (std::size_t i = 0; i < n; ++i)
        if (u(i) > static_cast<std::uint64_t>(INT64_MAX)) throw InvalidArgument(at_row(name, i) + ": integer does not fit in int64");
    }
    auto a = py::array_t<std::int64_t, py::array::forcecast>::ensure(arr);
    auto u = a.unchecked<1>();
    for (std::size_t i = 0; i < n; ++i) c.ints[i] = u(i);
  } else {
    auto a = py::array_t<double, py::array::forcecast>::ensure(arr);
    auto u = a.unchecked<1>();
    for (std::size_t i = 0; i < n; ++i) {
      c.floats[i] = u(i);
      if (std::isnan(c.floats[i]))
        throw InvalidArgument(at_row(name, i) + ": NaN is not allowed (use None for a missing value)");
    }
  }
  return true;
}

// One column; nullopt when the field is not declared and every value is None (no type to
// give it, and the rows would be missing anyway).
inline std::optional<AttributeColumn> column_from_python(const NumpyTypes& np, const std::string& name,
                                                         py::handle values, std::size_t n, const FieldType* declared) {
  AttributeColumn c;
  c.name = name;
  if (NumpyTypes::is_str(values) || PyBytes_Check(values.ptr()) || PyDict_Check(values.ptr()))
    throw py::type_error("attribute '" + name + "' must be a list or 1-D array with one value per vector, got " +
                         py_type_name(values));
  if (py::isinstance(values, np.ndarray)) {
    py::array arr = py::reinterpret_borrow<py::array>(values);
    if (arr.ndim() != 1)
      throw InvalidArgument("attribute '" + name + "' must be 1-D, got an array of " + std::to_string(arr.ndim()) +
                            " dimensions");
    if (static_cast<std::size_t>(arr.shape(0)) != n)
      throw InvalidArgument("attribute '" + name + "' has " + std::to_string(arr.shape(0)) + " values for " +
                            std::to_string(n) + " vectors");
    if (column_from_numpy(name, arr, declared, c)) return c;
    py::object list = arr.attr("tolist")();  // strings or objects: value by value
    return column_from_python(np, name, list, n, declared);
  }
  if (!PySequence_Check(values.ptr()))
    throw py::type_error("attribute '" + name + "' must be a list or 1-D array with one value per vector, got " +
                         py_type_name(values));
  py::object seq = py::reinterpret_steal<py::object>(PySequence_Fast(values.ptr(), "attribute values"));
  if (!seq) throw py::error_already_set();
  const std::size_t len = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(seq.ptr()));
  if (len != n)
    throw InvalidArgument("attribute '" + name + "' has " + std::to_string(len) + " values for " + std::to_string(n) +
                          " vectors");
  PyObject** items = PySequence_Fast_ITEMS(seq.ptr());

  std::optional<FieldType> type;
  if (declared) {
    type = *declared;
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      auto t = infer_type(np, items[i], at_row(name, i));
      if (!t) continue;
      if (!type) {
        type = t;
      } else if (*type != *t) {
        // ints and floats together make a float column; anything else is a mistake
        const bool numeric = (*type == FieldType::Int || *type == FieldType::Float) &&
                             (*t == FieldType::Int || *t == FieldType::Float);
        if (!numeric) wrong_type(at_row(name, i), *type, items[i]);
        type = FieldType::Float;
      }
    }
    if (!type) return std::nullopt;
  }
  c.type = *type;
  resize_column(c, n);
  for (std::size_t i = 0; i < n; ++i) {
    py::handle v = items[i];
    if (v.is_none()) {
      c.missing[i] = 1;
      if (c.type == FieldType::Keywords) c.offsets.push_back(c.strings.size());
      continue;
    }
    switch (c.type) {
      case FieldType::Keyword:
        if (!NumpyTypes::is_str(v)) wrong_type(at_row(name, i), c.type, v);
        c.strings[i] = to_utf8(v, at_row(name, i));
        break;
      case FieldType::Keywords: {
        if (!NumpyTypes::is_list(v)) wrong_type(at_row(name, i), c.type, v);
        py::sequence list = py::reinterpret_borrow<py::sequence>(v);
        for (py::handle s : list) {
          if (!NumpyTypes::is_str(s))
            throw InvalidArgument(at_row(name, i) + ": keywords must be lists of str, got a " + py_type_name(s) +
                                  " in the list");
          c.strings.push_back(to_utf8(s, at_row(name, i)));
        }
        c.offsets.push_back(c.strings.size());
        break;
      }
      case FieldType::Int:
        if (!np.is_int(v)) wrong_type(at_row(name, i), c.type, v);
        c.ints[i] = to_int64(v, at_row(name, i));
        break;
      case FieldType::Float:
        if (!np.is_float(v) && !np.is_int(v)) wrong_type(at_row(name, i), c.type, v);
        c.floats[i] = py::cast<double>(v);
        if (std::isnan(c.floats[i]))
          throw InvalidArgument(at_row(name, i) + ": NaN is not allowed (use None for a missing value)");
        break;
      case FieldType::Bool:
        if (!np.is_bool(v)) wrong_type(at_row(name, i), c.type, v);
        c.bools[i] = py::cast<bool>(v) ? 1 : 0;
        break;
    }
  }
  return c;
}

inline AttributeBatch batch_from_python(py::handle attributes, std::size_t n, const Schema& schema) {
  if (!PyDict_Check(attributes.ptr()))
    throw py::type_error("attributes must be a dict of field name -> values, got " + py_type_name(attributes));
  NumpyTypes np;
  AttributeBatch batch;
  for (auto item : py::reinterpret_borrow<py::dict>(attributes)) {
    if (!NumpyTypes::is_str(item.first))
      throw py::type_error("attribute names must be str, got " + py_type_name(item.first));
    const std::string name = to_utf8(item.first, "attribute name");
    if (name.empty()) throw InvalidArgument("attribute names must be non-empty strings");
    const FieldType* declared = nullptr;
    for (const auto& f : schema)
      if (f.first == name) declared = &f.second;
    auto c = column_from_python(np, name, item.second, n, declared);
    if (c) batch.columns.push_back(std::move(*c));
  }
  return batch;
}

inline Schema schema_from_python(py::handle fields) {
  if (!PyDict_Check(fields.ptr()))
    throw py::type_error("schema must be a dict of field name -> type name, got " + py_type_name(fields));
  Schema s;
  for (auto item : py::reinterpret_borrow<py::dict>(fields)) {
    if (!NumpyTypes::is_str(item.first))
      throw py::type_error("schema field names must be str, got " + py_type_name(item.first));
    const std::string name = to_utf8(item.first, "schema field name");
    if (name.empty()) throw InvalidArgument("attribute names must be non-empty strings");
    if (!NumpyTypes::is_str(item.second))
      throw InvalidArgument("unknown type " + py::repr(item.second).cast<std::string>() + " for field '" + name +
                            "': expected 'keyword', 'keywords', 'int', 'float' or 'bool'");
    s.emplace_back(name, vecdex::field_type_from_name(item.second.cast<std::string>(), name));
  }
  return s;
}

inline py::dict schema_to_python(const Schema& s) {
  py::dict d;
  for (const auto& f : s) d[py::str(f.first)] = py::str(vecdex::field_type_name(f.second));
  return d;
}

inline py::dict batch_to_python(const AttributeBatch& b) {
  py::dict d;
  for (const AttributeColumn& c : b.columns) {
    const std::size_t n = c.rows();
    py::list out(n);
    for (std::size_t i = 0; i < n; ++i) {
      py::object v = py::none();
      if (!c.missing[i]) {
        switch (c.type) {
          case FieldType::Keyword: v = py::str(c.strings[i]); break;
          case FieldType::Keywords: {
            py::list l;
            for (std::uint64_t k = c.offsets[i]; k < c.offsets[i + 1]; ++k) l.append(py::str(c.strings[k]));
            v = l;
            break;
          }
          case FieldType::Int: v = py::int_(c.ints[i]); break;
          case FieldType::Float: v = py::float_(c.floats[i]); break;
          case FieldType::Bool: v = py::bool_(c.bools[i] != 0); break;
        }
      }
      out[i] = v;
    }
    d[py::str(c.name)] = out;
  }
  return d;
}

// ---- the filter AST ---------------------------------------------------------------------------

inline AttributeValue filter_value(const NumpyTypes& np, py::handle v, const std::string& field) {
  if (NumpyTypes::is_str(v)) return AttributeValue::of_string(to_utf8(v, "filter on field '" + field + "'"));
  if (np.is_bool(v)) return AttributeValue::of_bool(py::cast<bool>(v));
  if (np.is_int(v)) {
    py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
    // Beyond int64 no stored int can equal it, and as a double it still compares correctly.
    if (overflow) return AttributeValue::of_float(PyLong_AsDouble(i.ptr()));
    return AttributeValue::of_int(x);
  }
  if (np.is_float(v)) return AttributeValue::of_float(py::cast<double>(v));
  throw InvalidArgument("filter on field '" + field + "': unsupported value of type " + py_type_name(v));
}

inline std::string field_of(py::handle v) {
  if (!NumpyTypes::is_str(v)) throw InvalidArgument("malformed filter: field names must be str, got " + py_type_name(v));
  return to_utf8(v, "filter field name");
}

inline std::vector<py::handle> as_items(py::handle v, const char* what) {
  if (!NumpyTypes::is_list(v)) throw InvalidArgument(std::string("malformed filter: ") + what + " must be a list");
  std::vector<py::handle> out;
  for (py::handle h : py::reinterpret_borrow<py::sequence>(v)) out.push_back(h);
  return out;
}

inline FilterNode filter_from_python(const NumpyTypes& np, py::handle ast, int depth = 0) {
  if (depth > 500) throw InvalidArgument("filter is nested too deeply");
  if (!PyTuple_Check(ast.ptr()) || PyTuple_GET_SIZE(ast.ptr()) == 0 || !NumpyTypes::is_str(PyTuple_GET_ITEM(ast.ptr(), 0)))
    throw InvalidArgument("malformed filter node: expected a tuple starting with an operator name, got " +
                          py::repr(ast).cast<std::string>());
  py::tuple t = py::reinterpret_borrow<py::tuple>(ast);
  const std::string op = t[0].cast<std::string>();
  const std::size_t len = t.size();
  auto arity = [&](std::size_t want) {
    if (len != want)
      throw InvalidArgument("malformed filter node ('" + op + "', ...): expected " + std::to_string(want - 1) +
                            " arguments, got " + std::to_string(len - 1));
  };
  FilterNode n;
  if (op == "all" || op == "none") {
    arity(1);
    n.op = op == "all" ? FilterNode::Op::All : FilterNode::Op::None;
  } else if (op == "and" || op == "or") {
    arity(2);
    n.op = op == "and" ? FilterNode::Op::And : FilterNode::Op::Or;
    for (py::handle c : as_items(t[1], "the children of 'and'/'or'")) n.children.push_back(filter_from_python(np, c, depth + 1));
  } else if (op == "not") {
    arity(2);
    n.op = FilterNode::Op::Not;
    n.children.push_back(filter_from_python(np, t[1], depth + 1));
  } else if (op == "eq") {
    arity(3);
    n.op = FilterNode::Op::Eq;
    n.field = field_of(t[1]);
    n.values.push_back(filter_value(np, t[2], n.field));
  } else if (op == "in" || op == "all_of") {
    arity(3);
    n.op = op == "in" ? FilterNode::Op::In : FilterNode::Op::AllOf;
    n.field = field_of(t[1]);
    for (py::handle v : as_items(t[2], "the values of 'in'/'all_of'")) n.values.push_back(filter_value(np, v, n.field));
  } else if (op == "range") {
    arity(6);
    n.op = FilterNode::Op::Range;
    n.field = field_of(t[1]);
    if (!t[2].is_none()) {
      n.has_lo = true;
      n.lo = filter_value(np, t[2], n.field);
    }
    if (!t[3].is_none()) {
      n.has_hi = true;
      n.hi = filter_value(np, t[3], n.field);
    }
    if (!np.is_bool(t[4]) || !np.is_bool(t[5]))
      throw InvalidArgument("malformed filter node ('range', ...): inclusive flags must be bools");
    n.lo_inclusive = t[4].cast<bool>();
    n.hi_inclusive = t[5].cast<bool>();
  } else if (op == "exists") {
    arity(2);
    n.op = FilterNode::Op::Exists;
    n.field = field_of(t[1]);
  } else {
    throw InvalidArgument("malformed filter: unknown operator '" + op + "'");
  }
  return n;
}

inline FilterNode filter_from_python(py::handle ast) {
  NumpyTypes np;
  return filter_from_python(np, ast, 0);
}

using LabelArrayPy = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;

inline void register_attribute_methods(py::class_<vecdex::IndexBase>& cls) {
  using vecdex::IndexBase;
  cls.def("declare_schema",
          [](IndexBase& i, py::handle fields) {
            const Schema s = schema_from_python(fields);
            i.declare_schema(s);
          })
      .def("schema", [](const IndexBase& i) { return schema_to_python(i.schema()); })
      .def("update_attributes",
           [](IndexBase& i, const LabelArrayPy& ids, py::handle attributes) {
             if (ids.ndim() != 1) throw InvalidArgument("ids must be 1-D");
             const std::size_t n = static_cast<std::size_t>(ids.shape(0));
             const AttributeBatch batch = batch_from_python(attributes, n, i.schema());
             py::gil_scoped_release nogil;
             i.update_attributes(ids.data(), n, batch);
           })
      .def(
          "get_attributes",
          [](const IndexBase& i, const LabelArrayPy& ids, std::optional<std::vector<std::string>> fields) {
            if (ids.ndim() != 1) throw InvalidArgument("ids must be 1-D");
            AttributeBatch b;
            {
              py::gil_scoped_release nogil;
              b = i.get_attributes(ids.data(), static_cast<std::size_t>(ids.shape(0)),
                                   fields ? *fields : std::vector<std::string>());
            }
            return batch_to_python(b);
          },
          py::arg("ids"), py::arg("fields") = py::none())
      .def("filter_count",
           [](const IndexBase& i, py::handle ast) {
             const FilterNode f = filter_from_python(ast);
             py::gil_scoped_release nogil;
             return i.filter_count(f);
           })
      .def("filter_ids", [](const IndexBase& i, py::handle ast) {
        const FilterNode f = filter_from_python(ast);
        std::vector<vecdex::label_t> ids;
        {
          py::gil_scoped_release nogil;
          ids = i.filter_ids(f);
        }
        py::array_t<std::int64_t> out(ids.size());
        for (std::size_t j = 0; j < ids.size(); ++j) out.mutable_data()[j] = static_cast<std::int64_t>(ids[j]);
        return out;
      });
}

}  // namespace vecdex_py
