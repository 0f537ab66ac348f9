// Python bindings: translate types and errors, release the GIL, nothing else. Argument checking
// that needs numpy lives in python/vecdex; checks that need the data (finiteness, ids) in the core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "vecdex/flat/flat_index.h"
#include "vecdex/hnsw/hnsw_index.h"
#include "attributes_py.h"
#include "quant_kernels_py.h"
#include "pq_kernels_py.h"
#include "rabitq_kernels_py.h"
#include "cur_py.h"
#include "vecdex/simd/dispatch.h"

namespace py = pybind11;
using namespace vecdex;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using LabelArray = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>;

const DistanceKernels& kernels_named(const std::string& name) {
  SimdLevel level;
  if (!simd_level_from_name(name, &level)) throw InvalidArgument("unknown SIMD level '" + name + "'");
  const DistanceKernels* k = kernels_for(level);
  if (!k) throw InvalidArgument("SIMD level '" + name + "' is not available on this machine");
  return *k;
}

std::size_t checked_rows(const FloatArray& a, std::size_t dim, const char* what) {
  if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(1)) != dim)
    throw InvalidArgument(std::string(what) + " must have shape (n, " + std::to_string(dim) + ")");
  return static_cast<std::size_t>(a.shape(0));
}

void add(IndexBase& index, const FloatArray& rows, std::optional<LabelArray> ids, int num_threads,
         py::handle attributes) {
  const std::size_t n = checked_rows(rows, index.dim(), "vectors");
  const label_t* id_ptr = nullptr;
  if (ids) {
    if (ids->ndim() != 1 || static_cast<std::size_t>(ids->shape(0)) != n)
      throw InvalidArgument("ids must be a 1-D array with one id per vector");
    id_ptr = ids->data();
  }
  std::optional<AttributeBatch> batch;
  if (!attributes.is_none()) batch = vecdex_py::batch_from_python(attributes, n, index.schema());
  py::gil_scoped_release nogil;
  index.add(rows.data(), n, id_ptr, num_threads, batch ? &*batch : nullptr);
}

// filters: None, or a list of distinct filter trees (tuple ASTs); filter_of_query: None (every
// query uses filters[0]) or one index into `filters` per query. explain: a third result, one dict
// per query describing its plan.
py::tuple search(const IndexBase& index, const FloatArray& queries, std::size_t k, std::size_t ef, int num_threads,
                 std::size_t rerank, bool with_stats, py::object filters, py::object filter_of_query, bool explain,
                 const std::string& plan, std::size_t filter_budget) {
  const std::size_t nq = checked_rows(queries, index.dim(), "queries");
  std::vector<FilterNode> nodes;
  std::vector<std::uint32_t> of_query;
  FilterSpec spec;
  if (!filters.is_none()) {
    for (py::handle f : filters) nodes.push_back(vecdex_py::filter_from_python(f));
    if (nodes.empty()) throw InvalidArgument("filters must hold at least one filter");
    spec.nodes = nodes.data();
    spec.count = nodes.size();
    if (!filter_of_query.is_none()) {
      auto a = py::array_t<std::uint32_t, py::array::c_style | py::array::forcecast>::ensure(filter_of_query);
      if (!a || a.ndim() != 1 || static_cast<std::size_t>(a.shape(0)) != nq)
        throw InvalidArgument("filter_of_query must hold one filter index per query");
      of_query.assign(a.data(), a.data() + nq);
      spec.of_query = of_query.data();
    }
  }
  py::array_t<std::int64_t> ids({nq, k});
  py::array_t<float> dists({nq, k});
  SearchParams p;
  p.ef = ef;
  p.num_threads = num_threads;
  p.rerank = rerank;
  if (filter_budget) p.filter_budget_bytes = filter_budget;
  if (plan == "auto") p.forced_plan = PlanKind::Graph;
  else if (plan == "exact_scan") p.forced_plan = PlanKind::ExactScan;
  else if (plan == "filtered_graph") p.forced_plan = PlanKind::FilteredGraph;
  else if (plan == "post_filter") p.forced_plan = PlanKind::PostFilter;
  else if (plan == "range_graph") p.forced_plan = PlanKind::RangeGraph;
  else throw InvalidArgument("unknown plan '" + plan +
                             "': expected 'auto', 'exact_scan', 'filtered_graph', 'post_filter' or 'range_graph'");
  SearchStats stats;
  if (with_stats) p.stats = &stats;
  std::vector<QueryPlan> plans;
  if (explain) {
    plans.resize(nq);
    p.plans = plans.data();
  }
  {
    std::int64_t* ip = ids.mutable_data();
    float* dp = dists.mutable_data();
    py::gil_scoped_release nogil;
    index.search(queries.data(), nq, k, p, ip, dp, nodes.empty() ? nullptr : &spec);
  }
  py::list out_plans;
  for (const QueryPlan& q : plans) {
    py::dict d;
    d["plan"] = plan_name(q.kind);
    d["matches"] = q.matches;
    d["selectivity"] = index.size() ? double(q.matches) / double(index.size()) : 0.0;
    d["ef"] = q.ef;
    d["fallback"] = q.fallback;
    d["distances"] = q.distances;
    d["expansions"] = q.expansions;
    d["filter_checks"] = q.filter_checks;
    out_plans.append(d);
  }
  py::dict s;
  if (with_stats) {
    s["distances"] = stats.distances;
    s["expansions"] = stats.expansions;
  }
  if (with_stats && explain) return py::make_tuple(ids, dists, s, out_plans);
  if (with_stats) return py::make_tuple(ids, dists, s);
  if (explain) return py::make_tuple(ids, dists, out_plans);
  return py::make_tuple(ids, dists);
}

// Test binding of the four-query kernels: queries (4, d), rows (n, d) -> (n, 4).
py::array_t<float> batch4_kernel(const FloatArray& queries, const FloatArray& rows, const std::string& level, bool l2) {
  const DistanceKernels& k = kernels_named(level);
  if (queries.ndim() != 2 || queries.shape(0) != 4) throw InvalidArgument("queries must have shape (4, d)");
  const std::size_t d = static_cast<std::size_t>(queries.shape(1));
  const std::size_t n = checked_rows(rows, d, "rows");
  const float* qs[4];
  for (std::size_t j = 0; j < 4; ++j) qs[j] = queries.data() + j * d;
  std::vector<const float*> ptrs(n);
  for (std::size_t i = 0; i < n; ++i) ptrs[i] = rows.data() + i * d;
  py::array_t<float> out({n, std::size_t(4)});
  (l2 ? k.l2sq_batch4 : k.dot_batch4)(qs, ptrs.data(), n, d, out.mutable_data());
  return out;
}

template <void (*Batch)(const DistanceKernels&, const float*, const float*, std::size_t, std::size_t, float*)>
py::array_t<float> batch_kernel(const FloatArray& q, const FloatArray& rows, const std::string& level) {
  const DistanceKernels& k = kernels_named(level);
  if (q.ndim() != 1) throw InvalidArgument("query must be 1-D");
  const std::size_t d = q.shape(0);
  const std::size_t n = checked_rows(rows, d, "rows");
  py::array_t<float> out(n);
  Batch(k, q.data(), rows.data(), n, d, out.mutable_data());
  return out;
}

void l2_batch(const DistanceKernels& k, const float* q, const float* rows, std::size_t n, std::size_t d, float* out) {
  std::vector<const float*> ptrs(n);
  for (std::size_t i = 0; i < n; ++i) ptrs[i] = rows + i * d;
  k.l2sq_batch(q, ptrs.data(), n, d, out);
}
void dot_batch(const DistanceKernels& k, const float* q, const float* rows, std::size_t n, std::size_t d, float* out) {
  std::vector<const float*> ptrs(n);
  for (std::size_t i = 0; i < n; ++i) ptrs[i] = rows + i * d;
  k.dot_batch(q, ptrs.data(), n, d, out);
}
void l2_block(const DistanceKernels& k, const float* q, const float* rows, std::size_t n, std::size_t d, float* out) {
  k.l2sq_block(q, rows, n, d, out);
}
void dot_block(const DistanceKernels& k, const float* q, const float* rows, std::size_t n, std::size_t d, float* out) {
  k.dot_block(q, rows, n, d, out);
}

float call_pair(float (*fn)(const float*, const float*, std::size_t), const FloatArray& a, const FloatArray& b) {
  if (a.ndim() != 1 || b.ndim() != 1 || a.shape(0) != b.shape(0))
    throw InvalidArgument("kernel inputs must be 1-D arrays of equal length");
  return fn(a.data(), b.data(), static_cast<std::size_t>(a.shape(0)));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "vecdex native core";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const FormatError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });

  m.def("simd_level", [] { return std::string(simd_level_name(active_simd_level())); });
  m.def("detected_simd_level", [] { return std::string(simd_level_name(detected_simd_level())); });
  m.def("available_simd_levels", [] {
    std::vector<std::string> out;
    for (SimdLevel l : available_simd_levels()) out.push_back(simd_level_name(l));
    return out;
  });
  m.def("simd_env_warning", [] { return simd_env_warning(); });
#if defined(VECDEX_HAVE_OPENMP)
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif

  register_quant_kernels(m);
  register_pq_kernels(m);
  register_rabitq_kernels(m);
  register_cur(m);

  m.def("kernel_l2sq", [](const FloatArray& a, const FloatArray& b, const std::string& level) {
    return call_pair(kernels_named(level).l2sq, a, b);
  });
  m.def("kernel_dot", [](const FloatArray& a, const FloatArray& b, const std::string& level) {
    return call_pair(kernels_named(level).dot, a, b);
  });
  m.def("kernel_cosine", [](const FloatArray& a, const FloatArray& b, const std::string& level) {
    return call_pair(kernels_named(level).cosine, a, b);
  });
  m.def("kernel_l2sq_batch", &batch_kernel<l2_batch>);
  m.def("kernel_dot_batch", &batch_kernel<dot_batch>);
  m.def("kernel_l2sq_block", &batch_kernel<l2_block>);
  m.def("kernel_dot_block", &batch_kernel<dot_block>);
  m.def("kernel_l2sq_batch4", [](const FloatArray& q, const FloatArray& r, const std::string& level) {
    return batch4_kernel(q, r, level, true);
  });
  m.def("kernel_dot_batch4", [](const FloatArray& q, const FloatArray& r, const std::string& level) {
    return batch4_kernel(q, r, level, false);
  });

  py::class_<IndexBase> index_base(m, "IndexBase");
  vecdex_py::register_attribute_methods(index_base);
  index_base
      .def_property_readonly("dim", &IndexBase::dim)
      .def_property_readonly("metric", [](const IndexBase& i) { return std::string(metric_name(i.metric())); })
      .def_property_readonly("read_only", &IndexBase::read_only)
      .def("__len__", &IndexBase::size)
      .def("add", &add, py::arg("vectors"), py::arg("ids") = py::none(), py::arg("num_threads") = 0,
           py::arg("attributes") = py::none())
      .def("search", &search, py::arg("queries"), py::arg("k"), py::arg("ef") = 0, py::arg("num_threads") = 0,
           py::arg("rerank") = 0, py::arg("with_stats") = false, py::arg("filters") = py::none(),
           py::arg("filter_of_query") = py::none(), py::arg("explain") = false, py::arg("plan") = "auto",
           py::arg("filter_budget") = 0)
      .def_property_readonly("quantization",
                             [](const IndexBase& i) { return std::string(quantization_name(i.quantization())); })
      .def_property_readonly("has_full_vectors", &IndexBase::has_full_vectors)
      .def_property_readonly("trained", &IndexBase::trained)
      .def("train",
           [](IndexBase& i, const FloatArray& rows) {
             const std::size_t n = checked_rows(rows, i.dim(), "training vectors");
             py::gil_scoped_release nogil;
             i.train(rows.data(), n);
           })
      .def("save",
           [](const IndexBase& i, const std::string& path) {
             py::gil_scoped_release nogil;
             i.save(path);
           })
      .def("memory_usage", &IndexBase::memory_usage)
      .def("ids",
           [](const IndexBase& i) {
             const std::vector<label_t> l = i.live_ids();
             py::array_t<std::int64_t> out(l.size());
             for (std::size_t j = 0; j < l.size(); ++j) out.mutable_data()[j] = static_cast<std::int64_t>(l[j]);
             return out;
           })
      .def("delete",
           [](IndexBase& i, const LabelArray& ids) {
             if (ids.ndim() != 1) throw InvalidArgument("ids must be 1-D");
             const std::size_t n = static_cast<std::size_t>(ids.shape(0));
             py::gil_scoped_release nogil;
             i.remove(ids.data(), n);
           })
      .def("get_vectors", [](const IndexBase& i, const LabelArray& ids) {
        if (ids.ndim() != 1) throw InvalidArgument("ids must be 1-D");
        py::array_t<float> out({static_cast<std::size_t>(ids.shape(0)), i.dim()});
        i.get_vectors(ids.data(), ids.shape(0), out.mutable_data());
        return out;
      });

  py::class_<FlatIndex, IndexBase>(m, "FlatIndex")
      .def(py::init([](std::size_t dim, const std::string& metric, const std::string& quantization,
                       bool keep_full_vectors, std::size_t pq_subquantizers, int pq_bits, std::size_t rabitq_centroids) {
             QuantizerParams qp;
             qp.pq_subquantizers = pq_subquantizers;
             qp.pq_bits = pq_bits;
             qp.rabitq_centroids = rabitq_centroids;
             return std::make_unique<FlatIndex>(dim, metric_from_name(metric), quantization_from_name(quantization),
                                                keep_full_vectors, qp);
           }),
           py::arg("dim"), py::arg("metric"), py::arg("quantization") = "none", py::arg("keep_full_vectors") = true,
           py::arg("pq_subquantizers") = 0, py::arg("pq_bits") = 4, py::arg("rabitq_centroids") = 0);

  py::class_<HnswIndex, IndexBase>(m, "HnswIndex")
      .def(py::init([](std::size_t dim, const std::string& metric, std::size_t M, std::size_t ef_construction,
                       std::uint64_t seed, const std::string& quantization, bool keep_full_vectors,
                       std::size_t pq_subquantizers, int pq_bits, std::size_t rabitq_centroids) {
             HnswParams p;
             p.M = M;
             p.ef_construction = ef_construction;
             p.seed = seed;
             QuantizerParams qp;
             qp.pq_subquantizers = pq_subquantizers;
             qp.pq_bits = pq_bits;
             qp.rabitq_centroids = rabitq_centroids;
             return std::make_unique<HnswIndex>(dim, metric_from_name(metric), p, quantization_from_name(quantization),
                                                keep_full_vectors, qp);
           }),
           py::arg("dim"), py::arg("metric"), py::arg("M"), py::arg("ef_construction"), py::arg("seed"),
           py::arg("quantization") = "none", py::arg("keep_full_vectors") = true, py::arg("pq_subquantizers") = 0,
           py::arg("pq_bits") = 4, py::arg("rabitq_centroids") = 0)
      .def_property_readonly("M", [](const HnswIndex& i) { return i.params().M; })
      .def_property_readonly("ef_construction", [](const HnswIndex& i) { return i.params().ef_construction; })
      .def_property_readonly("seed", [](const HnswIndex& i) { return i.params().seed; })
      .def("build_range_index", &HnswIndex::build_range_index, py::arg("field"), py::arg("M") = 0,
           py::arg("ef_construction") = 0, py::arg("num_threads") = 0,
           py::call_guard<py::gil_scoped_release>())
      .def("optimize", &HnswIndex::optimize, py::arg("num_threads") = 0, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("range_index_fields", &HnswIndex::range_index_fields);

  m.def(
      "load",
      [](const std::string& path, bool mmap) {
        py::gil_scoped_release nogil;
        return load_index(path, mmap);
      },
      py::arg("path"), py::arg("mmap") = false);
  m.def("peek_kind", [](const std::string& path) { return std::string(index_kind_name(peek_index_file(path).kind)); });
}
