// What every index shares: dimension, metric, full-precision rows, user ids, input checks,
// and the lock that keeps adds and searches apart.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>

#include "vecdex/attributes/attribute_store.h"
#include "vecdex/attributes/bitset.h"
#include "vecdex/attributes/filter.h"
#include "vecdex/common.h"
#include "vecdex/io/file_format.h"
#include "vecdex/label_map.h"
#include "vecdex/search/predicate.h"
#include "vecdex/search/query_filter.h"
#include "vecdex/search/topk.h"
#include "vecdex/storage/code_store.h"
#include "vecdex/storage/float_store.h"

namespace vecdex {

// What a search did, summed over its queries: the cost model the planner and benchmarks read.
struct SearchStats {
  std::uint64_t distances = 0;  // distance evaluations
  std::uint64_t expansions = 0;  // graph nodes whose links were read
};

// Per-call settings: arguments, never index state, so concurrent searches can differ.
struct SearchParams {
  std::size_t ef = 0;                      // HNSW beam width; 0 means the index's default
  int num_threads = 0;                     // 0 means all cores
  SearchStats* stats = nullptr;            // filled when given
  // One filter per query (nq entries), or nullptr: every row may be returned. Set by search()
  // from the FilterSpec; the bitsets live for the call.
  const QueryFilter* filters = nullptr;
  QueryPlan* plans = nullptr;              // nq entries, filled when given (explain)
  // HNSW: overrides the planner for every query (ExactScan, FilteredGraph or PostFilter; the
  // last two only for filtered queries); Graph means "let the planner choose".
  PlanKind forced_plan = PlanKind::Graph;
  // Bytes of filter bitsets held at once: a batch with more distinct filters runs in stretches.
  std::size_t filter_budget_bytes = std::size_t(256) << 20;
  // Quantised indexes: rerank * k candidates from the codes are re-scored with the full vectors.
  // 0 means the default: 1 when full vectors are kept (exact distances for what is returned).
  std::size_t rerank = 0;
};

// Filters for a search, as native filter trees: `count` distinct trees, and for each query the
// one it uses (of_query[q] < count; nullptr means every query uses tree 0).
struct FilterSpec {
  const FilterNode* nodes = nullptr;
  std::size_t count = 0;
  const std::uint32_t* of_query = nullptr;
};

class IndexBase {
 public:
  IndexBase(std::size_t dim, Metric metric, Quantization quantization = Quantization::None,
            bool keep_full_vectors = true, const QuantizerParams& quantizer = QuantizerParams());
  virtual ~IndexBase() = default;

  std::size_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  std::size_t size() const;  // live rows: deleted ones are not counted
  bool read_only() const { return codes_->is_view(); }
  Quantization quantization() const { return codes_->quantization(); }
  bool has_full_vectors() const { return full_vectors() != nullptr; }
  bool trained() const { return codes_->trained(); }
  // Trains the quantiser on a sample (rows in the caller's space); only while the index is empty.
  void train(const float* rows, std::size_t n);
  virtual IndexKind kind() const = 0;

  // Adds n rows; ids may be nullptr (then next_default(), +1, ...). `attributes` (optional) holds
  // the rows' attribute columns. Checks everything first, so a rejected call changes nothing.
  void add(const float* rows, std::size_t n, const label_t* ids, int num_threads,
           const AttributeBatch* attributes = nullptr);
  // Deletes the rows of n ids (tombstones): every id must be live and given once, else
  // InvalidArgument naming the first bad one, and nothing changes. A deleted row stays in storage
  // (and in the HNSW graph, where it still routes walks) but is never returned, listed or
  // counted again; its id is free, and adding it again makes a new row.
  void remove(const label_t* ids, std::size_t n);
  // ids: n*k (-1 where fewer than k results), distances: n*k (+inf there).
  // `filter` (optional) restricts every query to the rows its tree matches; the trees are
  // evaluated under the same lock as the search, so rows added meanwhile cannot slip in.
  void search(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params, std::int64_t* ids,
              float* distances, const FilterSpec* filter = nullptr) const;

  void save(const std::string& path) const;
  virtual std::map<std::string, std::size_t> memory_usage() const;

  // Every row's id, deleted rows included (row -> id); live_ids() for what the index holds.
  const LabelMap& labels() const { return labels_; }
  // The ids of the live rows, in row (insertion) order.
  std::vector<label_t> live_ids() const;

  // Attributes. Declares fields (all or none: InvalidArgument when one is redeclared with
  // another type).
  void declare_schema(const Schema& fields);
  Schema schema() const;
  // Replaces the batch's fields for the rows of `ids` (present and distinct); all or nothing.
  void update_attributes(const label_t* ids, std::size_t n, const AttributeBatch& batch);
  // Values of `fields` (every field when empty) for `ids`; InvalidArgument for an absent id or
  // an unknown field.
  AttributeBatch get_attributes(const label_t* ids, std::size_t n, const std::vector<std::string>& fields) const;
  // The live rows matching a filter. Takes no lock: the caller holds rw_ (shared), as search() does.
  Bitset filter_rows(const FilterNode& filter) const;
  // The same under the shared lock: how many rows match, and their ids in row order.
  std::size_t filter_count(const FilterNode& filter) const;
  std::vector<label_t> filter_ids(const FilterNode& filter) const;
  // Copies the stored rows of the given ids (normalised, for cosine); InvalidArgument if absent.
  void get_vectors(const label_t* ids, std::size_t n, float* out) const;

 protected:
  // Called with the rows already stored, under the exclusive lock; `rows` are the same rows in
  // float32 (normalised, for cosine), so graph construction never needs to decode codes.
  virtual void index_new_rows(node_t first, std::size_t n, const float* rows, int num_threads) = 0;
  virtual void search_prepared(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                               std::int64_t* ids, float* distances) const = 0;
  virtual void write_params(Params& p) const = 0;
  virtual void write_sections(IndexFileWriter& w) const = 0;
  // Adds what the index knows about a filter beyond its rows (a range index's span), under the
  // shared lock.
  virtual void describe_filter(const FilterNode& node, QueryFilter& filter) const {
    (void)node, (void)filter;
  }
  // Rows whose attributes `batch` replaced, under the exclusive lock.
  virtual void attributes_updated(const node_t* rows, std::size_t n, const AttributeBatch& batch) {
    (void)rows, (void)n, (void)batch;
  }
  // Reads what every index has (ids, codes, full vectors); returns the parameters for the rest.
  void load_common(const IndexFileReader& r, bool view);
  static Quantization quantization_in(const Params& p);
  static bool full_vectors_in(const IndexFileReader& r, Quantization q);

  // The float32 rows, when kept: the store itself for unquantised indexes.
  const FloatStore* full_vectors() const;
  // Candidates (best first, from the codes) -> the best k, re-scored exactly when full vectors
  // exist and the index is quantised. `coded` is the query's distance to the codes when the
  // caller has it (RaBitQ then reuses its prepared query for the error bounds).
  std::vector<Neighbor> finish_candidates(const float* query, std::vector<Neighbor> candidates, std::size_t k,
                                          QueryDistance* coded = nullptr) const;
  // How many candidates the traversal must deliver for k results under these parameters.
  std::size_t candidate_count(std::size_t k, const SearchParams& params) const;
  // The best `pool` of the rows in `rows`, by the codes: distances to the matching rows only.
  // Returns the number of distances computed.
  std::size_t scan_rows(QueryDistance& qd, const Bitset& rows, TopK& top) const;

  // Exact filtered scans for queries that share one filter. gather: only the matching rows are
  // scored (few matches); otherwise every row is scored and checked (many).
  struct ScanTask {
    const Bitset* rows;  // nullptr (with gather false): every row
    bool gather;
    std::vector<std::uint32_t> queries;
  };
  // Runs the tasks on `threads` threads, a group of queries at a time: each tile of rows is
  // scored by every query of the group while it is in cache, which is what lets a scan shared
  // by many queries run at matrix-product speed rather than memory speed. Finishes (re-ranks)
  // and writes each query's results and its plan's distance count.
  void run_scan_tasks(const float* queries, const std::vector<ScanTask>& tasks, std::size_t k, std::size_t pool,
                      int threads, std::int64_t* ids, float* distances, QueryPlan* plans, SearchStats* stats) const;

  // Deleted rows, as searches see them. exclude_deleted: clears them from a set of rows (a
  // filter's, so match counts and plans see only live rows). search_live_rows: an unfiltered
  // search on an index with deletions, run as a filtered one whose filter (shared by every
  // query) is the live rows. Both under the caller's shared lock.
  void exclude_deleted(Bitset& rows) const {
    if (deleted_count_) rows.and_not(deleted_);
  }
  void search_live_rows(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                        std::int64_t* ids, float* distances) const;

  // Copies rows into the stored space (checked finite, normalised for cosine); `what` names
  // them in errors.
  std::unique_ptr<float[]> prepare_rows(const float* rows, std::size_t n, const char* what) const;
  void write_ids(const std::vector<Neighbor>& best, std::size_t k, std::int64_t* ids, float* distances) const;

  std::size_t dim_;
  Metric metric_;
  std::unique_ptr<CodeStore> codes_;   // what traversal and scans measure
  std::unique_ptr<FloatStore> full_;   // float32 rows beside quantised codes, when kept
  LabelMap labels_;
  AttributeStore attributes_;  // one entry per row, like labels_
  // Deleted rows: empty until the first deletion, then one bit per row (grown by add()).
  Bitset deleted_;
  std::size_t deleted_count_ = 0;
  mutable std::shared_mutex rw_;
};

// Opens any vecdex index file.
std::unique_ptr<IndexBase> load_index(const std::string& path, bool mmap);

}  // namespace vecdex
