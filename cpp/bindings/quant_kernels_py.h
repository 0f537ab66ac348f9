// Test bindings for the quantised-row kernels (vecdex/simd/quant_kernels.h): every table usable on
// this machine, reachable by name, so tests can compare each one with the scalar reference.
// Included by module.cpp, which calls vecdex::register_quant_kernels(m) inside PYBIND11_MODULE.
//
// Arrays are taken as they are, never converted or copied: each must be a 1-D C-contiguous numpy
// array of exactly the stated dtype (else TypeError) and length (else ValueError), so a test can
// hand in memory that ends at an unreadable page and catch any read past the end of a row.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "vecdex/simd/quant_kernels.h"

namespace vecdex {
namespace qpy_detail {

namespace py = pybind11;

inline const QuantKernels& table_named(const std::string& name) {
  const QuantKernels* t = quant_kernels_named(name);
  if (!t) throw py::value_error("quantised-kernel table '" + name + "' is unknown or not usable on this machine");
  return *t;
}

template <class T>
const char* dtype_name() {
  if (std::is_same<T, float>::value) return "float32";
  if (std::is_same<T, std::uint16_t>::value) return "uint16";
  if (std::is_same<T, std::uint8_t>::value) return "uint8";
  return "int8";
}

template <class T>
std::size_t checked_len(const py::array& a, const char* what) {
  if (!py::isinstance<py::array_t<T>>(a))
    throw py::type_error(std::string(what) + " must be a numpy array of dtype " + dtype_name<T>());
  if (a.ndim() != 1) throw py::value_error(std::string(what) + " must be 1-D");
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(what) + " must be C-contiguous");
  return static_cast<std::size_t>(a.shape(0));
}

template <class T>
const T* in_ptr(const py::array& a, const char* what, std::size_t n) {
  if (checked_len<T>(a, what) != n)
    throw py::value_error(std::string(what) + " must have " + std::to_string(n) + " elements");
  return static_cast<const T*>(a.data());
}

// Output of a conversion: the given array (checked, writeable) or a new one.
template <class T>
py::array out_array(const py::object& out, std::size_t n) {
  if (out.is_none()) return py::array_t<T>(static_cast<py::ssize_t>(n));
  if (!py::isinstance<py::array>(out)) throw py::type_error("out must be a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(out);
  if (checked_len<T>(a, "out") != n) throw py::value_error("out must have " + std::to_string(n) + " elements");
  if (!a.writeable()) throw py::value_error("out must be writeable");
  return a;
}

template <class In, class Out>
py::array convert(void (*fn)(const In*, Out*, std::size_t), const py::array& in, const py::object& out) {
  const std::size_t n = checked_len<In>(in, "input");
  py::array o = out_array<Out>(out, n);
  fn(static_cast<const In*>(in.data()), static_cast<Out*>(o.mutable_data()), n);
  return o;
}

}  // namespace qpy_detail

inline void register_quant_kernels(pybind11::module_& m) {
  namespace py = pybind11;
  using namespace qpy_detail;
  using U16 = std::uint16_t;
  using U8 = std::uint8_t;
  using I8 = std::int8_t;

  m.def("qkernel_tables", [] {
    std::vector<std::string> out;
    for (const QuantKernels* t : usable_quant_kernel_tables()) out.push_back(t->name);
    return out;
  }, "Names of the quantised-kernel tables usable here, lowest first (scalar first).");
  m.def("qkernel_table_for", [](const std::string& level) -> py::object {
    SimdLevel l;
    if (!simd_level_from_name(level, &l)) throw py::value_error("unknown SIMD level '" + level + "'");
    const QuantKernels* t = quant_kernels_for(l);
    if (!t) return py::none();
    return py::str(t->name);
  }, "Name of the table quant_kernels_for(level) picks, or None when the level is not usable.");
  m.def("qkernel_active", [] { return std::string(quant_kernels().name); });
  m.def("cpu_has_avx512_vnni", [] { return cpu_has_avx512_vnni(); });

  // fp16 / bf16 rows: (q float32[d], x uint16[d], table) -> float
  m.def("qkernel_dot_f16", [](const py::array& q, const py::array& x, const std::string& table) {
    const std::size_t d = checked_len<float>(q, "q");
    return table_named(table).dot_f16(static_cast<const float*>(q.data()), in_ptr<U16>(x, "x", d), d);
  });
  m.def("qkernel_l2sq_f16", [](const py::array& q, const py::array& x, const std::string& table) {
    const std::size_t d = checked_len<float>(q, "q");
    return table_named(table).l2sq_f16(static_cast<const float*>(q.data()), in_ptr<U16>(x, "x", d), d);
  });
  m.def("qkernel_dot_bf16", [](const py::array& q, const py::array& x, const std::string& table) {
    const std::size_t d = checked_len<float>(q, "q");
    return table_named(table).dot_bf16(static_cast<const float*>(q.data()), in_ptr<U16>(x, "x", d), d);
  });
  m.def("qkernel_l2sq_bf16", [](const py::array& q, const py::array& x, const std::string& table) {
    const std::size_t d = checked_len<float>(q, "q");
    return table_named(table).l2sq_bf16(static_cast<const float*>(q.data()), in_ptr<U16>(x, "x", d), d);
  });

  // conversions: (input, table, out=None) -> output array (out itself when given)
  m.def("qkernel_f32_to_f16", [](const py::array& in, const std::string& table, const py::object& out) {
    return convert<float, U16>(table_named(table).f32_to_f16, in, out);
  }, py::arg("values"), py::arg("table"), py::arg("out") = py::none());
  m.def("qkernel_f16_to_f32", [](const py::array& in, const std::string& table, const py::object& out) {
    return convert<U16, float>(table_named(table).f16_to_f32, in, out);
  }, py::arg("bits"), py::arg("table"), py::arg("out") = py::none());
  m.def("qkernel_f32_to_bf16", [](const py::array& in, const std::string& table, const py::object& out) {
    return convert<float, U16>(table_named(table).f32_to_bf16, in, out);
  }, py::arg("values"), py::arg("table"), py::arg("out") = py::none());
  m.def("qkernel_bf16_to_f32", [](const py::array& in, const std::string& table, const py::object& out) {
    return convert<U16, float>(table_named(table).bf16_to_f32, in, out);
  }, py::arg("bits"), py::arg("table"), py::arg("out") = py::none());

  // SQ8
  m.def("qkernel_dot_u8_f32", [](const py::array& w, const py::array& code, const std::string& table) {
    const std::size_t d = checked_len<float>(w, "w");
    return table_named(table).dot_u8_f32(static_cast<const float*>(w.data()), in_ptr<U8>(code, "code", d), d);
  });
  m.def("qkernel_l2sq_u8_f32",
        [](const py::array& b, const py::array& scale, const py::array& code, const std::string& table) {
          const std::size_t d = checked_len<float>(b, "b");
          return table_named(table).l2sq_u8_f32(static_cast<const float*>(b.data()), in_ptr<float>(scale, "scale", d),
                                                in_ptr<U8>(code, "code", d), d);
        });
  m.def("qkernel_dot_u8_i8", [](const py::array& code, const py::array& q, const std::string& table) {
    const std::size_t d = checked_len<I8>(q, "q");
    return table_named(table).dot_u8_i8(in_ptr<U8>(code, "code", d), static_cast<const I8*>(q.data()), d);
  });
  m.def("qkernel_l2sq_u8_u8", [](const py::array& code, const py::array& q, const std::string& table) {
    const std::size_t d = checked_len<U8>(q, "q");
    return table_named(table).l2sq_u8_u8(in_ptr<U8>(code, "code", d), static_cast<const U8*>(q.data()), d);
  });

  // SQ4: packed rows of (d+1)//2 bytes, d taken from the query / weights
  m.def("qkernel_dot_u4_i8", [](const py::array& packed, const py::array& q, const std::string& table) {
    const std::size_t d = checked_len<I8>(q, "q");
    return table_named(table).dot_u4_i8(in_ptr<U8>(packed, "packed", (d + 1) / 2), static_cast<const I8*>(q.data()), d);
  });
  m.def("qkernel_dot_u4_f32", [](const py::array& w, const py::array& packed, const std::string& table) {
    const std::size_t d = checked_len<float>(w, "w");
    return table_named(table).dot_u4_f32(static_cast<const float*>(w.data()), in_ptr<U8>(packed, "packed", (d + 1) / 2),
                                         d);
  });
  m.def("qkernel_l2sq_u4_f32",
        [](const py::array& b, const py::array& scale, const py::array& packed, const std::string& table) {
          const std::size_t d = checked_len<float>(b, "b");
          return table_named(table).l2sq_u4_f32(static_cast<const float*>(b.data()), in_ptr<float>(scale, "scale", d),
                                                in_ptr<U8>(packed, "packed", (d + 1) / 2), d);
        });
}

}  // namespace vecdex
