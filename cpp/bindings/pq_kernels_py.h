// Test bindings for the PQ kernels (vecdex/simd/pq_kernels.h): every table usable on this machine,
// by name, so tests can check each SIMD table against the scalar reference bit for bit.
// To wire: #include "pq_kernels_py.h" in module.cpp and call vecdex::register_pq_kernels(m)
// inside PYBIND11_MODULE. Adds:
//   _core.pq_kernel_tables() -> list[str]
//   _core.pq_fastscan4(table, codes: uint8[nblocks*16*m], m, lut: uint8[16*m]) -> uint16[nblocks*32]
//   _core.pq_nearest(table, x: float32[n, dsub], ct: float32[dsub, ksub], cnorm: float32[ksub]) -> uint32[n]
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vecdex/simd/pq_kernels.h"

namespace vecdex {

inline void register_pq_kernels(pybind11::module_& m) {
  namespace py = pybind11;
  using U8 = py::array_t<std::uint8_t, py::array::c_style>;
  using F32 = py::array_t<float, py::array::c_style>;
  auto table = [](const std::string& name) -> const PqKernels& {
    const PqKernels* t = pq_kernels_named(name);
    if (!t) throw py::value_error("pq kernel table '" + name + "' is unknown or not usable on this machine");
    return *t;
  };
  m.def("pq_kernel_tables", [] {
    std::vector<std::string> out;
    for (const PqKernels* t : usable_pq_kernel_tables()) out.push_back(t->name);
    return out;
  });
  m.def("pq_fastscan4", [table](const std::string& name, const U8& codes, std::size_t msub, const U8& lut) {
    const PqKernels& t = table(name);
    if (msub == 0) throw py::value_error("m must be positive");
    if (codes.ndim() != 1 || lut.ndim() != 1) throw py::value_error("codes and lut must be 1-D");
    const std::size_t block = 16 * msub;
    if (static_cast<std::size_t>(codes.shape(0)) % block != 0)
      throw py::value_error("codes must hold whole blocks of 16 * m bytes");
    if (static_cast<std::size_t>(lut.shape(0)) != 16 * msub) throw py::value_error("lut must have 16 * m entries");
    const std::size_t nblocks = static_cast<std::size_t>(codes.shape(0)) / block;
    py::array_t<std::uint16_t> out(static_cast<py::ssize_t>(nblocks * kPQBlockRows));
    t.fastscan4(codes.data(), nblocks, msub, lut.data(), out.mutable_data());
    return out;
  });
  m.def("pq_nearest", [table](const std::string& name, const F32& x, const F32& ct, const F32& cnorm) {
    const PqKernels& t = table(name);
    if (x.ndim() != 2 || ct.ndim() != 2 || cnorm.ndim() != 1) throw py::value_error("x, ct must be 2-D, cnorm 1-D");
    const std::size_t n = x.shape(0), d = x.shape(1), k = cnorm.shape(0);
    if (static_cast<std::size_t>(ct.shape(0)) != d || static_cast<std::size_t>(ct.shape(1)) != k)
      throw py::value_error("ct must be (dsub, ksub)");
    if (k == 0 || k % 8 != 0 || k > 256) throw py::value_error("ksub must be a multiple of 8, at most 256");
    py::array_t<std::uint32_t> out(static_cast<py::ssize_t>(n));
    t.nearest(x.data(), n, d, d, ct.data(), cnorm.data(), k, out.mutable_data());
    return out;
  });
}

}  // namespace vecdex
