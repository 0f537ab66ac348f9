// Hierarchical navigable small-world graph (Malkov & Yashunin) over any VectorStore: parallel
// insertion with per-node locks, seedable levels, and a search loop that takes a row predicate.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "vecdex/hnsw/graph.h"
#include "vecdex/index_base.h"
#include "vecdex/range/range_index.h"
#include "vecdex/search/visited.h"

namespace vecdex {

struct HnswParams {
  std::size_t M = 16;
  std::size_t ef_construction = 200;
  std::uint64_t seed = 0;
};

constexpr std::size_t kDefaultEf = 64;

class HnswIndex final : public IndexBase {
 public:
  HnswIndex(std::size_t dim, Metric metric, const HnswParams& params,
            Quantization quantization = Quantization::None, bool keep_full_vectors = true,
            const QuantizerParams& quantizer = QuantizerParams());
  IndexKind kind() const override { return IndexKind::Hnsw; }
  const HnswParams& params() const { return params_; }
  std::map<std::string, std::size_t> memory_usage() const override;
  static std::unique_ptr<HnswIndex> load(const IndexFileReader& r, bool view);

  // Range indexes (range/range_index.h). Builds (or rebuilds) one over an int or float field
  // with M links per row per segment and beam ef_construction (0: the defaults, from the
  // index's own); InvalidArgument for an unknown field, another type, or a read-only index.
  void build_range_index(const std::string& field, std::size_t M, std::size_t ef_construction, int num_threads);
  // Rebuilds every range index over all rows, emptying their deltas.
  void optimize(int num_threads);
  std::vector<std::string> range_index_fields() const;

 protected:
  void index_new_rows(node_t first, std::size_t n, const float* rows, int num_threads) override;
  void search_prepared(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                       std::int64_t* ids, float* distances) const override;
  void write_params(Params& p) const override;
  void write_sections(IndexFileWriter& w) const override;
  void describe_filter(const FilterNode& node, QueryFilter& filter) const override;
  void attributes_updated(const node_t* rows, std::size_t n, const AttributeBatch& batch) override;

 private:
  // Level of row i: a pure function of (seed, i), so levels do not depend on threads or batching.
  int draw_level(node_t i) const;
  // Links row q, whose float32 values are `row` (the stored codes may be lossy).
  void insert(node_t q, const float* row);
  // Beam search on one level from `entry`; returns up to ef closest rows, best first.
  template <bool kBuilding>
  std::vector<Neighbor> search_level(QueryDistance& qd, VisitedSet& visited, Neighbor entry, int level,
                                     std::size_t ef, SearchStats* stats) const;
  // Level-0 beam search that returns only rows in `allowed`. score_all: every neighbour is
  // scored and guides the walk (many rows match); otherwise only matching rows are scored and
  // the links of non-matching neighbours are followed one more hop to find them.
  std::vector<Neighbor> search_level0_filtered(QueryDistance& qd, VisitedSet& visited, Neighbor entry, std::size_t ef,
                                               const Bitset& allowed, bool score_all, QueryPlan& plan) const;
  // Greedy walk down the upper levels to the closest row at `stop_level`.
  template <bool kBuilding>
  Neighbor descend(QueryDistance& qd, Neighbor from, int top_level, int stop_level, SearchStats* stats) const;
  // Hnsw's neighbour-diversity heuristic: keep a candidate only if it is closer to the base
  // than to every neighbour kept so far.
  void select_neighbors(std::vector<Neighbor>& candidates, std::size_t max_count) const;
  // Adds q to each neighbour's list at `level`, re-pruning lists that are full.
  void link_back(node_t q, const std::vector<Neighbor>& neighbors, int level);
  std::size_t copy_links(node_t i, int level, node_t* out, bool locked) const;

  // Pruning can leave a row with no incoming level-0 link, and then no search can ever return
  // it. Finds such rows by a walk from the entry point and links each from its nearest reachable
  // rows, so every row added stays findable.
  void repair_reachability();

  RangeIndex make_range_index(const std::string& field, std::size_t M, std::size_t ef_construction,
                              int num_threads) const;
  // A range walk over f's range index, with the delta scanned beside it.
  std::vector<Neighbor> search_range(QueryDistance& qd, VisitedSet& visited, node_t entry, const QueryFilter& f,
                                     std::size_t ef, QueryPlan& plan) const;

  void lock(node_t i) const;
  void unlock(node_t i) const;

  HnswParams params_;
  double level_scale_;
  HnswGraph graph_;
  mutable VisitedPool visited_;
  std::mutex entry_mu_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> node_locks_;
  std::size_t rows_since_repair_ = 0;
  std::vector<RangeIndex> range_indexes_;
};

}  // namespace vecdex
