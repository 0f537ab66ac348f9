#include "vecdex/flat/flat_index.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "vecdex/threading.h"

namespace vecdex {
namespace {

// The few-queries path splits rows across threads in tiles of about 384 KiB of float32 rows.
constexpr std::size_t kTileBytes = 384 * 1024;

std::size_t tile_rows(std::size_t dim) {
  const std::size_t r = kTileBytes / (dim * sizeof(float));
  return std::max<std::size_t>(16, std::min<std::size_t>(r, 4096));
}

void push_tile(TopK& top, const float* d, node_t first, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (d[i] < top.worst()) top.push(d[i], first + static_cast<node_t>(i));
}

}  // namespace

// Filtered: queries are grouped by filter. Few matches: distances to the matching rows only
// (gathered from the bitset); many: the sequential scan, each row checked, which streams faster
// than gathering once more than about a quarter of the rows match.
void FlatIndex::search_filtered(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                                std::int64_t* ids, float* distances) const {
  const std::size_t n = labels_.size();
  std::map<std::pair<const Bitset*, bool>, std::size_t> task_of;
  std::vector<ScanTask> tasks;
  for (std::size_t q = 0; q < nq; ++q) {
    const QueryFilter& f = params.filters[q];
    QueryPlan plan;
    plan.matches = f.matches;
    const bool gather = f.matches * 4 < n;
    plan.kind = f.matches == 0 ? PlanKind::Empty : gather ? PlanKind::ExactScan : PlanKind::FlatScan;
    if (params.plans) params.plans[q] = plan;
    if (f.matches == 0) continue;
    const auto key = std::make_pair(f.rows, gather);
    auto it = task_of.find(key);
    if (it == task_of.end()) {
      it = task_of.emplace(key, tasks.size()).first;
      tasks.push_back({f.rows, gather, {}});
    }
    tasks[it->second].queries.push_back(static_cast<std::uint32_t>(q));
  }
  run_scan_tasks(queries, tasks, k, candidate_count(k, params), resolve_num_threads(params.num_threads), ids,
                 distances, params.plans, params.stats);
}

void FlatIndex::search_prepared(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                                std::int64_t* ids, float* distances) const {
  if (params.filters) return search_filtered(queries, nq, k, params, ids, distances);
  const std::size_t n = labels_.size(), tile = tile_rows(dim_);
  const int threads = resolve_num_threads(params.num_threads);
  const std::size_t pool = candidate_count(k, params);
  if (params.stats) params.stats->distances += n * nq;
  if (params.plans)
    for (std::size_t q = 0; q < nq; ++q) {
      params.plans[q].kind = PlanKind::FlatScan;
      params.plans[q].distances = n;
    }
  FirstError err;

  if (nq >= static_cast<std::size_t>(threads) || n < 4 * tile) {
    // Many queries: threads take groups of queries; each group walks the rows tile by tile.
    std::vector<ScanTask> all(1, ScanTask{nullptr, false, {}});
    all[0].queries.resize(nq);
    for (std::size_t q = 0; q < nq; ++q) all[0].queries[q] = static_cast<std::uint32_t>(q);
    run_scan_tasks(queries, all, k, pool, threads, ids, distances, nullptr, nullptr);
  } else {
    // Few queries, many cores: split the rows of each query across threads, then merge.
    for (std::size_t q = 0; q < nq; ++q) {
      std::vector<std::vector<Neighbor>> partial(threads);
      const std::size_t chunk = (n + threads - 1) / threads;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
      for (int t = 0; t < threads; ++t) {
        err.run([&] {
          const std::size_t lo = std::min(n, std::size_t(t) * chunk), hi = std::min(n, lo + chunk);
          auto qd = codes_->query_distance(queries + q * dim_);
          TopK top(pool);
          std::vector<float> d(tile);
          for (std::size_t start = lo; start < hi; start += tile) {
            const std::size_t m = std::min(tile, hi - start);
            qd->distances_range(static_cast<node_t>(start), m, d.data());
            push_tile(top, d.data(), static_cast<node_t>(start), m);
          }
          partial[t] = top.sorted();
        });
      }
      err.rethrow();
      TopK merged(pool);
      for (const auto& p : partial)
        for (const Neighbor& nb : p) merged.push(nb.distance, nb.id);
      write_ids(finish_candidates(queries + q * dim_, merged.sorted(), k), k, ids + q * k, distances + q * k);
    }
  }
  err.rethrow();
}

std::unique_ptr<FlatIndex> FlatIndex::load(const IndexFileReader& r, bool view) {
  const Quantization q = quantization_in(r.params());
  auto index = std::make_unique<FlatIndex>(r.info().dim, r.info().metric, q, full_vectors_in(r, q));
  index->load_common(r, view);
  return index;
}

}  // namespace vecdex
