// Test bindings for the RaBitQ kernels (vecdex/simd/rabitq_kernels.h): every table usable on this
// machine, by name, so tests can compare each with the scalar reference. Included by module.cpp,
// which calls vecdex::register_rabitq_kernels(m) inside PYBIND11_MODULE.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vecdex/simd/rabitq_kernels.h"

namespace vecdex {

inline void register_rabitq_kernels(pybind11::module_& m) {
  namespace py = pybind11;
  using U64 = py::array_t<std::uint64_t, py::array::c_style>;
  using F32 = py::array_t<float, py::array::c_style>;
  auto table = [](const std::string& name) -> const RaBitQKernels& {
    for (const RaBitQKernels* t : usable_rabitq_kernel_tables())
      if (name == t->name) return *t;
    throw py::value_error("rabitq kernel table '" + name + "' is unknown or not usable on this machine");
  };
  m.def("rabitq_kernel_tables", [] {
    std::vector<std::string> names;
    for (const RaBitQKernels* t : usable_rabitq_kernel_tables()) names.push_back(t->name);
    return names;
  });
  m.def("rabitq_kernel_active", [] { return std::string(rabitq_kernels().name); });
  // (sum_j 2^j popcount(code & planes[j]), popcount(code)); planes has 4 * len(code) words.
  m.def("rabitq_ip_bin_u4", [table](U64 code, U64 planes, const std::string& name) {
    if (code.ndim() != 1 || planes.ndim() != 1 || planes.size() != 4 * code.size())
      throw py::value_error("rabitq_ip_bin_u4: planes must hold 4 * len(code) words");
    std::uint32_t ip = 0, pc = 0;
    table(name).ip_bin_u4(code.data(), planes.data(), static_cast<std::size_t>(code.size()), &ip, &pc);
    return py::make_tuple(ip, pc);
  });
  // The unnormalised Walsh-Hadamard transform of x (length a power of two), as a new array.
  m.def("rabitq_fwht", [table](F32 x, const std::string& name) {
    const std::size_t n = static_cast<std::size_t>(x.size());
    if (x.ndim() != 1 || n == 0 || (n & (n - 1)) != 0) throw py::value_error("rabitq_fwht: length must be a power of two");
    F32 out(static_cast<py::ssize_t>(n));
    std::copy(x.data(), x.data() + n, out.mutable_data());
    table(name).fwht(out.mutable_data(), n);
    return out;
  });
}

}  // namespace vecdex
