#include "vecdex/index_base.h"

#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "vecdex/flat/flat_index.h"
#include "vecdex/hnsw/hnsw_index.h"
#include "vecdex/threading.h"

namespace vecdex {

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::L2: return "l2";
    case Metric::InnerProduct: return "ip";
    case Metric::Cosine: return "cosine";
  }
  return "unknown";
}

Metric metric_from_name(const std::string& name) {
  if (name == "l2") return Metric::L2;
  if (name == "ip") return Metric::InnerProduct;
  if (name == "cosine") return Metric::Cosine;
  throw InvalidArgument("unknown metric '" + name + "': expected 'l2', 'ip' or 'cosine'");
}

namespace {

// Index of the first row holding NaN or infinity, or n when all are finite.
std::size_t first_non_finite_row(const float* rows, std::size_t n, std::size_t dim) {
  for (std::size_t i = 0; i < n; ++i) {
    const float* r = rows + i * dim;
    float acc = 0.f;
    for (std::size_t j = 0; j < dim; ++j) acc += r[j] * 0.f;  // NaN iff some value is NaN or inf
    if (acc != acc) return i;
  }
  return n;
}

void normalise(float* row, std::size_t dim) {
  const float sq = kernels().dot(row, row, dim);
  if (sq > 0.f) {
    const float inv = static_cast<float>(1.0 / std::sqrt(double(sq)));
    for (std::size_t j = 0; j < dim; ++j) row[j] *= inv;
  }
}

}  // namespace

IndexBase::IndexBase(std::size_t dim, Metric metric) : dim_(dim), metric_(metric), store_(dim, metric) {
  if (dim == 0 || dim > (1u << 20)) throw InvalidArgument("dim must be between 1 and 2**20, got " + std::to_string(dim));
}

std::size_t IndexBase::size() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  return labels_.size();
}

void IndexBase::add(const float* rows, std::size_t n, const label_t* ids, int num_threads) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (read_only()) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  if (n == 0) return;
  const std::size_t bad = first_non_finite_row(rows, n, dim_);
  if (bad < n) throw InvalidArgument("vectors contain NaN or infinity (row " + std::to_string(bad) + ")");
  if (labels_.size() + n > kMaxNodes) throw InvalidArgument("index would exceed the maximum number of rows");
  std::vector<label_t> defaults;
  if (!ids) {
    const label_t start = labels_.next_default();
    if (start > kMaxLabel - n) throw InvalidArgument("default ids would exceed 2**63 - 1; pass ids explicitly");
    defaults.resize(n);
    for (std::size_t i = 0; i < n; ++i) defaults[i] = start + i;
    ids = defaults.data();
  } else {
    labels_.check_new(ids, n);
  }

  const node_t first = static_cast<node_t>(labels_.size());
  store_.append(rows, n);
  if (metric_ == Metric::Cosine) {
    float* base = const_cast<float*>(store_.row(first));
    const int threads = resolve_num_threads(num_threads);
#pragma omp parallel for num_threads(threads) schedule(static) if (n > 4096)
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) normalise(base + std::size_t(i) * dim_, dim_);
  }
  labels_.append(ids, n);
  index_new_rows(first, n, num_threads);
}

std::unique_ptr<float[]> IndexBase::prepare_queries(const float* queries, std::size_t nq) const {
  const std::size_t bad = first_non_finite_row(queries, nq, dim_);
  if (bad < nq) throw InvalidArgument("queries contain NaN or infinity (row " + std::to_string(bad) + ")");
  std::unique_ptr<float[]> out(new float[nq * dim_ + 1]);
  std::copy(queries, queries + nq * dim_, out.get());
  if (metric_ == Metric::Cosine) {
    for (std::size_t i = 0; i < nq; ++i) normalise(out.get() + i * dim_, dim_);
  }
  return out;
}

void IndexBase::search(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                       std::int64_t* ids, float* distances) const {
  if (k == 0) throw InvalidArgument("k must be a positive integer");
  std::unique_ptr<float[]> prepared = prepare_queries(queries, nq);
  std::shared_lock<std::shared_mutex> g(rw_);
  for (std::size_t i = 0; i < nq * k; ++i) {
    ids[i] = -1;
    distances[i] = std::numeric_limits<float>::infinity();
  }
  if (nq == 0 || labels_.size() == 0) return;
  search_prepared(prepared.get(), nq, k, params, ids, distances);
}

void IndexBase::write_ids(const std::vector<Neighbor>& best, std::size_t k, std::int64_t* ids,
                          float* distances) const {
  const std::size_t m = best.size() < k ? best.size() : k;
  for (std::size_t j = 0; j < m; ++j) {
    ids[j] = static_cast<std::int64_t>(labels_.label(best[j].id));
    distances[j] = best[j].distance;
  }
}

void IndexBase::get_vectors(const label_t* ids, std::size_t n, float* out) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  for (std::size_t i = 0; i < n; ++i) {
    node_t row;
    if (!labels_.find(ids[i], &row)) throw InvalidArgument("id " + std::to_string(ids[i]) + " is not in the index");
    std::copy(store_.row(row), store_.row(row) + dim_, out + i * dim_);
  }
}

std::map<std::string, std::size_t> IndexBase::memory_usage() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  std::map<std::string, std::size_t> m;
  m["vectors"] = store_.memory_bytes();
  m["ids"] = labels_.memory_bytes();
  return m;
}

void IndexBase::save(const std::string& path) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  FileInfo info;
  info.kind = kind();
  info.metric = metric_;
  info.dim = dim_;
  info.count = labels_.size();
  IndexFileWriter w(path, info);
  w.add_array(section::kLabels, labels_.labels());
  w.add_array(section::kVectorsF32, store_.rows());
  write_sections(w);
  w.commit();
}

void IndexBase::load_common(const IndexFileReader& r, bool view) {
  const FileInfo& info = r.info();
  labels_ = LabelMap(r.array<label_t>(section::kLabels, info.count, view));
  store_ = FloatStore(dim_, metric_, r.array<float>(section::kVectorsF32, info.count * info.dim, view));
}

std::unique_ptr<IndexBase> load_index(const std::string& path, bool mmap) {
  IndexFileReader r(path);
  switch (r.info().kind) {
    case IndexKind::Flat: return FlatIndex::load(r, mmap);
    case IndexKind::Hnsw: return HnswIndex::load(r, mmap);
  }
  throw FormatError("corrupt index file '" + path + "': unknown index kind");
}

}  // namespace vecdex
