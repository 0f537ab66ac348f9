#include "vecdex/index_base.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "vecdex/flat/flat_index.h"
#include "vecdex/hnsw/hnsw_index.h"
#include "vecdex/storage/rabitq_store.h"
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

// Error-bound width used to skip re-ranking: ~99% of RaBitQ estimates lie within it (see
// storage/rabitq_store.h), where the paper's 1.9 covers only ~94.5%.
constexpr double kRerankBoundEps = 2.6;

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

IndexBase::IndexBase(std::size_t dim, Metric metric, Quantization quantization, bool keep_full_vectors,
                     const QuantizerParams& quantizer)
    : dim_(dim), metric_(metric) {
  if (dim == 0 || dim > (1u << 20)) throw InvalidArgument("dim must be between 1 and 2**20, got " + std::to_string(dim));
  codes_ = make_code_store(quantization, dim, metric, quantizer);
  if (quantization != Quantization::None && keep_full_vectors) full_ = std::make_unique<FloatStore>(dim, metric);
}

const FloatStore* IndexBase::full_vectors() const {
  if (full_) return full_.get();
  if (codes_->quantization() == Quantization::None) return static_cast<const FloatStore*>(codes_.get());
  return nullptr;
}

void IndexBase::train(const float* rows, std::size_t n) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (read_only()) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  if (labels_.size() > 0) throw InvalidArgument("train() must come before the first add(): the index already holds vectors");
  if (n == 0) throw InvalidArgument("train() needs at least one vector");
  std::unique_ptr<float[]> prepared = prepare_rows(rows, n, "vectors");
  codes_->train(prepared.get(), n);
}

std::size_t IndexBase::size() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  return labels_.size() - deleted_count_;
}

std::vector<label_t> IndexBase::live_ids() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  std::vector<label_t> out;
  out.reserve(labels_.size() - deleted_count_);
  for (std::size_t r = 0; r < labels_.size(); ++r)
    if (!deleted_count_ || !deleted_.test(r)) out.push_back(labels_.label(static_cast<node_t>(r)));
  return out;
}

void IndexBase::remove(const label_t* ids, std::size_t n) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (read_only()) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  if (n == 0) return;
  const std::vector<node_t> rows = labels_.distinct_rows_of(ids, n);
  deleted_.grow(labels_.size());
  for (std::size_t i = 0; i < n; ++i) {
    deleted_.set(rows[i]);
    labels_.remove(ids[i]);
  }
  deleted_count_ += n;
}

void IndexBase::add(const float* rows, std::size_t n, const label_t* ids, int num_threads,
                    const AttributeBatch* attributes) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (read_only()) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  if (n == 0) return;
  std::unique_ptr<float[]> prepared = prepare_rows(rows, n, "vectors");
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
  if (attributes) attributes_.check(*attributes, n);

  // Codes with a trained range learn it from the first vectors added, unless train() came first.
  if (!codes_->trained()) codes_->train(prepared.get(), n);
  const node_t first = static_cast<node_t>(labels_.size());
  codes_->reserve(first + n);
  codes_->append(prepared.get(), n);
  if (full_) full_->append(prepared.get(), n);
  labels_.append(ids, n);
  if (deleted_count_) deleted_.grow(labels_.size());
  index_new_rows(first, n, prepared.get(), num_threads);
  attributes_.append(attributes, n);
}

void IndexBase::declare_schema(const Schema& fields) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (read_only()) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  attributes_.check_declare(fields);
  attributes_.declare(fields);
}

Schema IndexBase::schema() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  return attributes_.schema();
}

void IndexBase::update_attributes(const label_t* ids, std::size_t n, const AttributeBatch& batch) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (read_only()) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  const std::vector<node_t> rows = labels_.distinct_rows_of(ids, n);
  attributes_.check(batch, n);
  attributes_.assign(rows.data(), n, batch);
  attributes_updated(rows.data(), n, batch);
}

AttributeBatch IndexBase::get_attributes(const label_t* ids, std::size_t n,
                                         const std::vector<std::string>& fields) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  std::vector<node_t> rows(n);
  for (std::size_t i = 0; i < n; ++i)
    if (!labels_.find(ids[i], &rows[i])) throw InvalidArgument("id " + std::to_string(ids[i]) + " is not in the index");
  return attributes_.get(rows.data(), n, fields);
}

Bitset IndexBase::filter_rows(const FilterNode& filter) const {
  Bitset rows = evaluate(attributes_, filter, labels_.size());
  exclude_deleted(rows);
  return rows;
}

std::size_t IndexBase::filter_count(const FilterNode& filter) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  return filter_rows(filter).count();
}

std::vector<label_t> IndexBase::filter_ids(const FilterNode& filter) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  const Bitset rows = filter_rows(filter);
  std::vector<label_t> out;
  out.reserve(rows.count());
  rows.for_each_set([&](node_t r) { out.push_back(labels_.label(r)); });
  return out;
}

std::unique_ptr<float[]> IndexBase::prepare_rows(const float* queries, std::size_t nq, const char* what) const {
  const std::size_t bad = first_non_finite_row(queries, nq, dim_);
  if (bad < nq) throw InvalidArgument(std::string(what) + " contain NaN or infinity (row " + std::to_string(bad) + ")");
  std::unique_ptr<float[]> out(new float[nq * dim_ + 1]);
  std::copy(queries, queries + nq * dim_, out.get());
  if (metric_ == Metric::Cosine) {
    float* p = out.get();
#pragma omp parallel for schedule(static) if (nq > 4096)
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(nq); ++i) normalise(p + std::size_t(i) * dim_, dim_);
  }
  return out;
}

std::size_t IndexBase::candidate_count(std::size_t k, const SearchParams& params) const {
  if (codes_->quantization() == Quantization::None || !full_) return k;
  const std::size_t r = params.rerank ? params.rerank : 1;
  return k * r;
}

std::vector<Neighbor> IndexBase::finish_candidates(const float* query, std::vector<Neighbor> candidates,
                                                   std::size_t k, QueryDistance* coded) const {
  const auto* rabitq = dynamic_cast<const RaBitQStore*>(codes_.get());
  if (rabitq && full_ && candidates.size() > k) {
    // RaBitQ knows how far each estimate can be off: re-score candidates in order of their lower
    // bound (estimate - error bound) and stop once the next bound is worse than the k-th exact
    // distance, so only candidates that could still make the top k cost an exact distance.
    const std::size_t n = candidates.size();
    std::vector<node_t> ids(n);
    std::vector<float> est(n), bound(n);
    for (std::size_t i = 0; i < n; ++i) ids[i] = candidates[i].id;
    if (!coded || !coded->estimate_with_bounds(ids.data(), n, kRerankBoundEps, est.data(), bound.data()))
      rabitq->estimate(query, ids.data(), n, est.data(), bound.data(), kRerankBoundEps);
    std::vector<Neighbor> by_lower(n);
    for (std::size_t i = 0; i < n; ++i) by_lower[i] = {est[i] - bound[i], ids[i]};
    std::sort(by_lower.begin(), by_lower.end());
    // Exact distances in small batches, so the float rows are fetched together (one at a time,
    // each is a chain of cache misses): the first k are always needed, then 4 at a time.
    auto exact = full_->query_distance(query);
    TopK top(k);
    std::vector<node_t> batch;
    float d[16];
    std::size_t next = 0;
    while (next < n && !(top.full() && by_lower[next].distance > top.worst())) {
      const std::size_t want = top.full() ? 4 : std::min<std::size_t>(16, k - top.size());
      batch.clear();
      while (batch.size() < want && next < n && !(top.full() && by_lower[next].distance > top.worst()))
        batch.push_back(by_lower[next++].id);
      exact->distances(batch.data(), batch.size(), d);
      for (std::size_t j = 0; j < batch.size(); ++j) top.push(d[j], batch[j]);
    }
    return top.sorted();
  }
  if (codes_->quantization() != Quantization::None && full_ && !candidates.empty()) {
    std::vector<node_t> ids(candidates.size());
    std::vector<float> exact(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i) ids[i] = candidates[i].id;
    full_->query_distance(query)->distances(ids.data(), ids.size(), exact.data());
    for (std::size_t i = 0; i < candidates.size(); ++i) candidates[i].distance = exact[i];
    std::sort(candidates.begin(), candidates.end(), [](const Neighbor& a, const Neighbor& b) {
      return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
    });
  }
  if (candidates.size() > k) candidates.resize(k);
  return candidates;
}

void IndexBase::search(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                       std::int64_t* ids, float* distances, const FilterSpec* filter) const {
  if (k == 0) throw InvalidArgument("k must be a positive integer");
  if (params.rerank > 0 && codes_->quantization() != Quantization::None && !full_)
    throw InvalidArgument("rerank needs the full vectors, but this index was built with keep_full_vectors=False");
  if (filter && filter->count == 0) throw InvalidArgument("filter spec without filters");
  if (filter && filter->of_query)
    for (std::size_t q = 0; q < nq; ++q)
      if (filter->of_query[q] >= filter->count) throw InvalidArgument("filter index out of range");
  std::unique_ptr<float[]> prepared = prepare_rows(queries, nq, "queries");
  std::shared_lock<std::shared_mutex> g(rw_);
  // Trees are checked (unknown fields, wrong types) before any result is written.
  if (filter)
    for (std::size_t i = 0; i < filter->count; ++i) validate_filter(attributes_, filter->nodes[i]);
  for (std::size_t i = 0; i < nq * k; ++i) {
    ids[i] = -1;
    distances[i] = std::numeric_limits<float>::infinity();
  }
  const std::size_t rows = labels_.size(), live = rows - deleted_count_;
  if (params.plans)
    for (std::size_t q = 0; q < nq; ++q) {
      params.plans[q] = QueryPlan();
      params.plans[q].matches = live;
      params.plans[q].kind = live == 0 ? PlanKind::Empty : PlanKind::Graph;
    }
  if (nq == 0 || live == 0) return;
  if (!filter) {
    if (deleted_count_) return search_live_rows(prepared.get(), nq, k, params, ids, distances);
    return search_prepared(prepared.get(), nq, k, params, ids, distances);
  }

  // Queries run in consecutive stretches whose distinct filters' bitsets fit the budget, so a
  // batch with a different filter per query never holds one bitset per query of a large index.
  const std::size_t set_bytes = (rows + 63) / 64 * 8;
  const std::size_t max_sets = std::max<std::size_t>(1, params.filter_budget_bytes / set_bytes);
  std::vector<Bitset> sets;
  std::vector<QueryFilter> described;  // per set: its count and what describe_filter adds
  std::vector<std::size_t> slot_of(filter->count, SIZE_MAX);
  std::vector<QueryFilter> per_query(nq);
  sets.reserve(std::min(max_sets, filter->count));  // never reallocated: per_query points into it
  std::size_t first = 0;
  auto flush = [&](std::size_t end) {
    if (end == first) return;
    SearchParams p = params;
    p.filters = per_query.data() + first;
    p.plans = params.plans ? params.plans + first : nullptr;
    search_prepared(prepared.get() + first * dim_, end - first, k, p, ids + first * k, distances + first * k);
    sets.clear();
    described.clear();
    std::fill(slot_of.begin(), slot_of.end(), SIZE_MAX);
    first = end;
  };
  for (std::size_t q = 0; q < nq; ++q) {
    const std::size_t f = filter->of_query ? filter->of_query[q] : 0;
    if (slot_of[f] == SIZE_MAX) {
      if (sets.size() == max_sets) flush(q);
      slot_of[f] = sets.size();
      sets.push_back(filter_rows(filter->nodes[f]));
      QueryFilter d;
      d.rows = &sets.back();
      d.matches = sets.back().count();
      describe_filter(filter->nodes[f], d);
      described.push_back(d);
    }
    per_query[q] = described[slot_of[f]];
  }
  flush(nq);
}

void IndexBase::search_live_rows(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                                 std::int64_t* ids, float* distances) const {
  Bitset live(labels_.size(), true);
  exclude_deleted(live);
  QueryFilter all_live;
  all_live.rows = &live;
  all_live.matches = labels_.size() - deleted_count_;
  const std::vector<QueryFilter> per_query(nq, all_live);
  SearchParams p = params;
  p.filters = per_query.data();
  search_prepared(queries, nq, k, p, ids, distances);
}

void IndexBase::run_scan_tasks(const float* queries, const std::vector<ScanTask>& tasks, std::size_t k,
                               std::size_t pool, int threads, std::int64_t* ids, float* distances, QueryPlan* plans,
                               SearchStats* stats) const {
  constexpr std::size_t kGroup = 16;
  // A tile of float32 rows that stays in L2 while the group scores it (codes are smaller).
  const std::size_t tile = std::max<std::size_t>(32, std::min<std::size_t>(1024, (256 * 1024) / (dim_ * sizeof(float))));
  struct Chunk {
    const ScanTask* task;
    std::size_t first, count;
  };
  std::vector<Chunk> chunks;
  for (const ScanTask& t : tasks)
    for (std::size_t i = 0; i < t.queries.size(); i += kGroup)
      chunks.push_back({&t, i, std::min(kGroup, t.queries.size() - i)});
  const std::size_t n = labels_.size();
  FirstError err;
  std::mutex stats_mu;
  const int use_threads = static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(threads, chunks.size())));
#pragma omp parallel for num_threads(use_threads) schedule(dynamic, 1)
  for (std::int64_t ci = 0; ci < static_cast<std::int64_t>(chunks.size()); ++ci) {
    err.run([&] {
      const Chunk& c = chunks[std::size_t(ci)];
      const Bitset* rows = c.task->rows;  // nullptr: every row (the unfiltered exact scan)
      std::vector<std::unique_ptr<QueryDistance>> qd;
      std::vector<TopK> tops;
      for (std::size_t j = 0; j < c.count; ++j) {
        qd.push_back(codes_->query_distance(queries + std::size_t(c.task->queries[c.first + j]) * dim_));
        tops.emplace_back(pool);
      }
      std::vector<node_t> batch(tile);
      std::vector<float> d(tile);
      std::size_t scored = 0;
      // float32 rows: four queries at a time share each row load (the batch4 kernels).
      const FloatStore* floats =
          codes_->quantization() == Quantization::None ? static_cast<const FloatStore*>(codes_.get()) : nullptr;
      std::vector<const float*> row_ptrs(floats ? tile : 0);
      std::vector<float> d4(floats ? 4 * tile : 0);
      const DistanceKernels& kern = kernels();
      const bool l2 = metric_ == Metric::L2;
      // Queries [0, quads) go through the four-query kernel (float32 rows); the rest, fewer than
      // four (or all, for codes), through their own QueryDistance: a quad padded with repeats
      // would do up to four times the work of a single-query scan.
      const std::size_t quads = floats ? c.count / 4 * 4 : 0;
      auto push = [&](TopK& top, const float* dist, const node_t* ids_in_tile, std::size_t m, const Bitset* check) {
        for (std::size_t i = 0; i < m; ++i)
          if (dist[i] < top.worst() && (!check || check->accepts(ids_in_tile[i]))) top.push(dist[i], ids_in_tile[i]);
      };
      auto score_by_fours = [&](const node_t* ids_in_tile, std::size_t m, const Bitset* check) {
        for (std::size_t j0 = 0; j0 < quads; j0 += 4) {
          const float* qs[4];
          for (std::size_t t = 0; t < 4; ++t) qs[t] = queries + std::size_t(c.task->queries[c.first + j0 + t]) * dim_;
          (l2 ? kern.l2sq_batch4 : kern.dot_batch4)(qs, row_ptrs.data(), m, dim_, d4.data());
          for (std::size_t t = 0; t < 4; ++t) {
            TopK& top = tops[j0 + t];
            for (std::size_t i = 0; i < m; ++i) {
              const float dist = l2 ? d4[4 * i + t] : 1.0f - d4[4 * i + t];
              if (dist < top.worst() && (!check || check->accepts(ids_in_tile[i]))) top.push(dist, ids_in_tile[i]);
            }
          }
        }
      };
      if (c.task->gather) {
        const std::uint64_t* words = rows->words();
        const std::size_t nwords = rows->word_count();
        std::size_t w = 0;
        std::uint64_t bits = nwords ? words[0] : 0;
        while (true) {
          std::size_t m = 0;
          while (m < tile) {
            while (!bits && ++w < nwords) bits = words[w];
            if (!bits) break;
            batch[m++] = static_cast<node_t>(w * 64 + std::size_t(__builtin_ctzll(bits)));
            bits &= bits - 1;
          }
          if (m == 0) break;
          if (quads) {
            for (std::size_t i = 0; i < m; ++i) row_ptrs[i] = floats->row(batch[i]);
            score_by_fours(batch.data(), m, nullptr);
          }
          for (std::size_t j = quads; j < c.count; ++j) {
            qd[j]->distances(batch.data(), m, d.data());
            push(tops[j], d.data(), batch.data(), m, nullptr);
          }
          scored += m;
        }
      } else {
        for (std::size_t start = 0; start < n; start += tile) {
          const std::size_t m = std::min(tile, n - start);
          for (std::size_t i = 0; i < m; ++i) batch[i] = static_cast<node_t>(start + i);
          if (quads) {
            for (std::size_t i = 0; i < m; ++i) row_ptrs[i] = floats->row(batch[i]);
            score_by_fours(batch.data(), m, rows);
          }
          for (std::size_t j = quads; j < c.count; ++j) {
            qd[j]->distances_range(static_cast<node_t>(start), m, d.data());
            push(tops[j], d.data(), batch.data(), m, rows);
          }
        }
        scored = n;
      }
      for (std::size_t j = 0; j < c.count; ++j) {
        const std::size_t q = c.task->queries[c.first + j];
        write_ids(finish_candidates(queries + q * dim_, tops[j].sorted(), k, qd[j].get()), k, ids + q * k,
                  distances + q * k);
        if (plans) plans[q].distances = scored;
      }
      if (stats) {
        std::lock_guard<std::mutex> g(stats_mu);
        stats->distances += scored * c.count;
      }
    });
  }
  err.rethrow();
}

std::size_t IndexBase::scan_rows(QueryDistance& qd, const Bitset& rows, TopK& top) const {
  constexpr std::size_t kBatch = 256;
  node_t batch[kBatch];
  float d[kBatch];
  std::size_t n = 0, total = 0;
  auto flush = [&] {
    qd.distances(batch, n, d);
    for (std::size_t i = 0; i < n; ++i)
      if (d[i] < top.worst()) top.push(d[i], batch[i]);
    total += n;
    n = 0;
  };
  rows.for_each_set([&](node_t r) {
    batch[n++] = r;
    if (n == kBatch) flush();
  });
  if (n) flush();
  return total;
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
    if (const FloatStore* full = full_vectors()) {
      std::copy(full->row(row), full->row(row) + dim_, out + i * dim_);
    } else {
      codes_->decode(row, out + i * dim_);
    }
  }
}

std::map<std::string, std::size_t> IndexBase::memory_usage() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  std::map<std::string, std::size_t> m;
  if (codes_->quantization() == Quantization::None) {
    m["vectors"] = codes_->memory_bytes();
  } else {
    m["codes"] = codes_->memory_bytes();
    m["vectors"] = full_ ? full_->memory_bytes() : 0;
  }
  m["ids"] = labels_.memory_bytes();
  m["attributes"] = attributes_.memory_bytes();
  m["deleted"] = deleted_.memory_bytes();
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
  Params p;
  p.set("quantization", std::uint64_t(codes_->quantization()));
  write_params(p);
  const std::string text = p.serialize();
  w.add_section(section::kParams, text.data(), text.size());
  w.add_array(section::kLabels, labels_.labels());
  codes_->write(w);
  if (full_) full_->write(w);
  attributes_.write(w);
  if (deleted_count_) w.add_section(section::kDeleted, deleted_.words(), deleted_.word_count() * sizeof(std::uint64_t));
  write_sections(w);
  w.commit();
}

void IndexBase::load_common(const IndexFileReader& r, bool view) {
  const FileInfo& info = r.info();
  deleted_ = read_deleted_rows(r, static_cast<std::size_t>(info.count));
  deleted_count_ = deleted_.count();
  if (!deleted_count_) deleted_ = Bitset();
  labels_ = LabelMap(r.array<label_t>(section::kLabels, info.count, view), deleted_count_ ? &deleted_ : nullptr);
  codes_->read(r, info.count, view);
  if (full_) full_->read(r, info.count, view);
  attributes_.read(r, info.count, view);
}

Quantization IndexBase::quantization_in(const Params& p) {
  if (!p.has("quantization")) return Quantization::None;  // files from before quantisation
  const std::uint64_t q = p.get_u64("quantization");
  if (q > static_cast<std::uint64_t>(Quantization::RaBitQ8)) throw FormatError("corrupt index file: unknown quantization");
  return static_cast<Quantization>(q);
}

bool IndexBase::full_vectors_in(const IndexFileReader& r, Quantization q) {
  return q == Quantization::None || r.has(section::kVectorsF32);
}

std::unique_ptr<IndexBase> load_index(const std::string& path, bool mmap) {
  IndexFileReader r(path);
  switch (r.info().kind) {
    case IndexKind::Flat: return FlatIndex::load(r, mmap);
    case IndexKind::Hnsw: return HnswIndex::load(r, mmap);
    case IndexKind::Cur:
      throw InvalidArgument("'" + path + "' holds a CUR index: open it with vecdex.CURIndex.load()");
  }
  throw FormatError("corrupt index file '" + path + "': unknown index kind");
}

}  // namespace vecdex
