// The native half of CUR-based cross-encoder search (ANNCUR, ADACUR): item embeddings taken from
// the cross-encoder's scores of k anchor queries against every item (item i's embedding is column
// i of R, k x n), least-squares fits of a query's coefficients over the anchor queries from the
// items scored so far, and the approximate scores of every item with the best unscored ones
// picked. Calling the cross-encoder is the caller's part (python/vecdex/cur.py).
//
// Optionally each item also carries a dual-encoder vector ("side" vector). A fit can then add the
// dual-encoder similarity of the query to each item as one more feature, so the blend weight of
// dual encoder and CUR is itself fitted to the exact scores.
#pragma once

#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "vecdex/attributes/bitset.h"
#include "vecdex/common.h"
#include "vecdex/cur/least_squares.h"
#include "vecdex/label_map.h"
#include "vecdex/storage/aligned_array.h"

namespace vecdex {
namespace cur {

enum class ScoreStorage : std::uint32_t { F32 = 0, F16 = 1 };
const char* score_storage_name(ScoreStorage s);
ScoreStorage score_storage_from_name(const std::string& name);  // throws InvalidArgument

// A query's fitted model: approximate score of item i = coefficients . embedding_i
// (+ side_weight * <side query, side vector_i> when the fit used the dual encoder).
struct QueryFit {
  std::vector<float> coefficients;
  float side_weight = 0;
  bool uses_side = false;
};

class CurIndex {
 public:
  CurIndex(std::size_t anchor_count, ScoreStorage storage, std::size_t side_dim = 0);

  std::size_t anchor_count() const { return anchor_count_; }
  ScoreStorage storage() const { return storage_; }
  std::size_t side_dim() const { return side_dim_; }
  std::size_t size() const;  // live items
  std::vector<label_t> ids() const;
  bool contains(label_t id) const;
  label_t next_default_id() const;

  // scores: m x anchor_count, row j = the anchor queries' scores of item j (its column of R);
  // side: m x side_dim dual-encoder vectors, required exactly when side_dim > 0; ids: m new
  // ids, or null for next_default_id() onwards. All-or-nothing: nothing is added on an error.
  void add(const label_t* ids, std::size_t m, const float* scores, const float* side);
  // Deleted items are never returned again; their ids may be added again.
  void remove(const label_t* ids, std::size_t n);
  // Stored embeddings (fp16 ones widened) of the given items: n x anchor_count.
  void embeddings(const label_t* ids, std::size_t n, float* out) const;
  // Stored dual-encoder vectors of the given items: n x side_dim.
  void side_vectors(const label_t* ids, std::size_t n, float* out) const;

  // Fits a query from the exact scores of m distinct items. side_query (side_dim values, or null)
  // adds the dual-encoder similarity as a feature.
  QueryFit fit(const label_t* scored, const float* scores, std::size_t m, const float* side_query,
               const SolveOptions& options) const;
  // Approximate scores of the given items.
  void approximate(const QueryFit& f, const float* side_query, const label_t* ids, std::size_t n, float* out) const;
  // The `count` live items with the highest approximate scores, leaving out `exclude` (ids not in
  // the index are ignored there), best first, ties by insertion order.
  void best(const QueryFit& f, const float* side_query, const label_t* exclude, std::size_t n_exclude,
            std::size_t count, std::vector<label_t>* ids, std::vector<float>* scores, int num_threads = 0) const;

  void save(const std::string& path) const;
  static std::unique_ptr<CurIndex> load(const std::string& path);
  std::size_t memory_bytes() const;

 private:
  std::size_t rows() const { return labels_.size(); }
  void embedding_row(node_t row, float* out) const;
  // Approximate scores of all rows into out (rows() values).
  void score_rows(const QueryFit& f, const float* side_query, float* out, int num_threads) const;
  float side_score(const float* side_query, node_t row) const;
  void check_side_query(const float* side_query) const;
  void check_fit(const QueryFit& f, const float* side_query) const;

  std::size_t anchor_count_;
  ScoreStorage storage_;
  std::size_t side_dim_;
  AlignedArray<float> scores_f32_;         // rows x anchor_count
  AlignedArray<std::uint16_t> scores_f16_;  // rows x anchor_count, fp16 bit patterns
  AlignedArray<float> side_;                // rows x side_dim
  LabelMap labels_;
  Bitset deleted_;
  std::size_t deleted_count_ = 0;
  mutable std::shared_mutex rw_;
};

}  // namespace cur
}  // namespace vecdex
