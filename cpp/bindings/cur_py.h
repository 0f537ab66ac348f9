// Bindings of the CUR index (vecdex/cur/cur_index.h) and of its small solvers, the latter for
// tests against numpy. Included by module.cpp, which calls register_cur(m).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "vecdex/cur/cur_index.h"
#include "vecdex/cur/least_squares.h"

namespace vecdex {

inline cur::SolveOptions cur_solve_options(const std::string& solver, double rcond, double ridge) {
  cur::SolveOptions o;
  if (solver == "pinv")
    o.solver = cur::Solver::PseudoInverse;
  else if (solver == "ridge")
    o.solver = cur::Solver::Ridge;
  else
    throw InvalidArgument("unknown solver '" + solver + "': expected 'pinv' or 'ridge'");
  o.rcond = rcond;
  o.ridge = ridge;
  return o;
}

inline void register_cur(pybind11::module_& m) {
  namespace py = pybind11;
  using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
  using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
  using U64 = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;
  using cur::CurIndex;
  using cur::QueryFit;

  auto matrix = [](const F32& a, std::size_t cols, const char* what) -> std::size_t {
    if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(1)) != cols)
      throw InvalidArgument(std::string(what) + " must have shape (n, " + std::to_string(cols) + ")");
    return static_cast<std::size_t>(a.shape(0));
  };
  auto ids_of = [](const U64& ids) -> std::size_t {
    if (ids.ndim() != 1) throw InvalidArgument("ids must be 1-D");
    return static_cast<std::size_t>(ids.shape(0));
  };
  // A (len(ids), width) array filled by one of CurIndex's per-id getters, without the GIL.
  auto rows_for = [ids_of](const CurIndex& index, const U64& ids, std::size_t width,
                           void (CurIndex::*get)(const label_t*, std::size_t, float*) const) {
    const std::size_t n = ids_of(ids);
    py::array_t<float> out({n, width});
    float* o = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      (index.*get)(ids.data(), n, o);
    }
    return out;
  };
  auto side_of = [](const CurIndex& index, const std::optional<F32>& q) -> const float* {
    if (!q) return nullptr;
    if (q->ndim() != 1 || static_cast<std::size_t>(q->shape(0)) != index.side_dim())
      throw InvalidArgument("the dual-encoder query vector must have shape (" + std::to_string(index.side_dim()) + ",)");
    return q->data();
  };

  py::class_<QueryFit>(m, "CurFit")
      .def_property_readonly("coefficients",
                             [](const QueryFit& f) { return py::array_t<float>(f.coefficients.size(), f.coefficients.data()); })
      .def_readonly("side_weight", &QueryFit::side_weight)
      .def_readonly("uses_side", &QueryFit::uses_side);

  py::class_<CurIndex>(m, "CurIndex")
      .def(py::init([](std::size_t anchor_count, const std::string& storage, std::size_t side_dim) {
             return std::make_unique<CurIndex>(anchor_count, cur::score_storage_from_name(storage), side_dim);
           }),
           py::arg("anchor_count"), py::arg("storage") = "float32", py::arg("side_dim") = 0)
      .def_property_readonly("anchor_count", &CurIndex::anchor_count)
      .def_property_readonly("storage", [](const CurIndex& i) { return std::string(cur::score_storage_name(i.storage())); })
      .def_property_readonly("side_dim", &CurIndex::side_dim)
      .def_property_readonly("next_default_id", &CurIndex::next_default_id)
      .def("__len__", &CurIndex::size)
      .def("__contains__", &CurIndex::contains)
      .def("ids", [](const CurIndex& i) {
        const std::vector<label_t> v = i.ids();
        return py::array_t<std::int64_t>(v.size(), reinterpret_cast<const std::int64_t*>(v.data()));
      })
      .def("memory_bytes", &CurIndex::memory_bytes)
      .def(
          "add",
          [matrix, ids_of](CurIndex& index, std::optional<U64> ids, const F32& scores, std::optional<F32> side) {
            const std::size_t n = matrix(scores, index.anchor_count(), "scores");
            if (ids && ids_of(*ids) != n) throw InvalidArgument("ids must hold one id per item");
            if (side) matrix(*side, index.side_dim(), "dual-encoder vectors");
            if (side && static_cast<std::size_t>(side->shape(0)) != n)
              throw InvalidArgument("dual-encoder vectors must hold one row per item");
            py::gil_scoped_release nogil;
            index.add(ids ? ids->data() : nullptr, n, scores.data(), side ? side->data() : nullptr);
          },
          py::arg("ids"), py::arg("scores"), py::arg("side") = py::none())
      .def("remove",
           [ids_of](CurIndex& index, const U64& ids) {
             const std::size_t n = ids_of(ids);
             py::gil_scoped_release nogil;
             index.remove(ids.data(), n);
           })
      .def("embeddings",
           [rows_for](const CurIndex& index, const U64& ids) {
             return rows_for(index, ids, index.anchor_count(), &CurIndex::embeddings);
           })
      .def("side_vectors",
           [rows_for](const CurIndex& index, const U64& ids) {
             return rows_for(index, ids, index.side_dim(), &CurIndex::side_vectors);
           })
      .def(
          "fit",
          [ids_of, side_of](const CurIndex& index, const U64& scored, const F32& scores, std::optional<F32> side_query,
                            const std::string& solver, double rcond, double ridge) {
            const std::size_t m = ids_of(scored);
            if (scores.ndim() != 1 || static_cast<std::size_t>(scores.shape(0)) != m)
              throw InvalidArgument("scores must hold one score per scored id");
            const cur::SolveOptions o = cur_solve_options(solver, rcond, ridge);
            const float* sq = side_of(index, side_query);
            py::gil_scoped_release nogil;
            return index.fit(scored.data(), scores.data(), m, sq, o);
          },
          py::arg("scored"), py::arg("scores"), py::arg("side_query") = py::none(), py::arg("solver") = "pinv",
          py::arg("rcond") = 1e-6, py::arg("ridge") = 1e-3)
      .def(
          "approximate",
          [ids_of, side_of](const CurIndex& index, const QueryFit& f, const U64& ids, std::optional<F32> side_query) {
            const std::size_t n = ids_of(ids);
            const float* sq = side_of(index, side_query);
            py::array_t<float> out(n);
            float* o = out.mutable_data();
            {
              py::gil_scoped_release nogil;
              index.approximate(f, sq, ids.data(), n, o);
            }
            return out;
          },
          py::arg("fit"), py::arg("ids"), py::arg("side_query") = py::none())
      .def(
          "best",
          [ids_of, side_of](const CurIndex& index, const QueryFit& f, const U64& exclude, std::size_t count,
                            std::optional<F32> side_query, int num_threads) {
            const std::size_t n = ids_of(exclude);
            const float* sq = side_of(index, side_query);
            std::vector<label_t> ids;
            std::vector<float> scores;
            {
              py::gil_scoped_release nogil;
              index.best(f, sq, exclude.data(), n, count, &ids, &scores, num_threads);
            }
            return py::make_tuple(py::array_t<std::int64_t>(ids.size(), reinterpret_cast<const std::int64_t*>(ids.data())),
                                  py::array_t<float>(scores.size(), scores.data()));
          },
          py::arg("fit"), py::arg("exclude"), py::arg("count"), py::arg("side_query") = py::none(),
          py::arg("num_threads") = 0)
      .def("save", &CurIndex::save, py::call_guard<py::gil_scoped_release>())
      .def_static("load", &CurIndex::load, py::call_guard<py::gil_scoped_release>());

  m.def(
      "cur_lstsq",
      [](const F32& a, const F32& b, const std::string& solver, double rcond, double ridge) {
        if (a.ndim() != 2 || b.ndim() != 1 || b.shape(0) != a.shape(0))
          throw InvalidArgument("expected A of shape (m, k) and b of shape (m,)");
        const std::vector<double> w = cur::solve_least_squares(a.data(), a.shape(0), a.shape(1), b.data(),
                                                               cur_solve_options(solver, rcond, ridge));
        return py::array_t<double>(w.size(), w.data());
      },
      py::arg("a"), py::arg("b"), py::arg("solver") = "pinv", py::arg("rcond") = 1e-6, py::arg("ridge") = 1e-3);
  m.def("cur_symmetric_eigen", [](const F64& a) {
    if (a.ndim() != 2 || a.shape(0) != a.shape(1)) throw InvalidArgument("expected a square matrix");
    const std::size_t n = a.shape(0);
    std::vector<double> work(a.data(), a.data() + n * n), values;
    cur::symmetric_eigen(work, n, values);
    return py::make_tuple(py::array_t<double>(n, values.data()), py::array_t<double>({n, n}, work.data()));
  });
}

}  // namespace vecdex
