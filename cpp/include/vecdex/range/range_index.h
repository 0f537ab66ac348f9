// A range index over one ordered (int or float) attribute, after iRangeGraph (Xu et al., SIGMOD
// 2025): the rows holding a value, sorted by (value, row), take positions 0..n-1; every segment
// of 2^j consecutive positions (j from kRangeLeafLog2 up to the level below the root) holds a
// small navigable graph of its own rows, and the root is the HNSW graph's level 0. A range
// predicate is a span of positions [lo, hi). A walk at position p reads the links of every
// segment around p from the root down to the largest one inside the span, keeping those inside
// the span: the large segments' links cross between the parts of the range, the covering
// segment's graph (all in range) is navigable on its own. Segments hold at most M links per row.
//
// The index is a snapshot: rows added after the build, and rows whose value of the field changed
// (stale), are the delta that a search scans exactly beside the walk; optimize() rebuilds.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vecdex/attributes/attribute_store.h"
#include "vecdex/attributes/bitset.h"
#include "vecdex/attributes/filter.h"
#include "vecdex/common.h"
#include "vecdex/hnsw/graph.h"
#include "vecdex/io/file_format.h"
#include "vecdex/search/query_filter.h"
#include "vecdex/search/topk.h"
#include "vecdex/search/visited.h"
#include "vecdex/storage/aligned_array.h"
#include "vecdex/storage/vector_store.h"

namespace vecdex {

constexpr int kRangeLeafLog2 = 6;  // the smallest segments with a graph: 64 rows
constexpr int kRangeNarrowLevelEnd = 17;  // levels below: segments of <= 2^16 rows, u16 links
constexpr std::size_t kMaxRangeIndexes = 64;
constexpr std::size_t kDefaultRangeM = 12;
constexpr std::size_t kDefaultRangeEfConstruction = 64;

class RangeIndex {
 public:
  // What the build reads. `row_vector(row, scratch)` gives a row in the stored space (the full
  // vector when kept) to search from; distances between rows come from `store`.
  struct Source {
    std::string field;
    const AttributeColumnIndex* column = nullptr;  // an int or float column
    std::size_t rows = 0;                          // rows in the index now
    const VectorStore* store = nullptr;
    std::function<const float*(node_t, float*)> row_vector;
    std::size_t M = 8;                // links per row per segment
    std::size_t ef_construction = 64;
    int threads = 1;
  };
  static RangeIndex build(const Source& src);

  const std::string& field() const { return field_; }
  std::size_t built_rows() const { return built_rows_; }
  std::size_t positions() const { return order_.size(); }
  std::size_t M() const { return M_; }
  std::size_t ef_construction() const { return ef_construction_; }
  std::size_t memory_bytes() const;

  // The positions whose value satisfies a Range node on this field (same semantics as filter
  // evaluation: mixed int/float bounds compared mathematically).
  RangeSpan span_of(const FilterNode& range) const;

  // Marks rows whose value of the field changed since the build: they leave the walk's results
  // and join the delta.
  void mark_stale(const node_t* rows, std::size_t n);
  bool has_stale() const { return stale_count_ > 0; }
  // Whether an index of `rows` rows has rows the walk cannot stand for (below).
  bool has_delta(std::size_t rows) const { return rows > built_rows_ || stale_count_ > 0; }
  // Rows the walk cannot stand for: stale rows, and every row added after the build.
  bool in_delta(node_t row) const { return row >= built_rows_ || (stale_count_ && stale_.test(row)); }

  // The best `ef` rows of `accept` inside the span (delta rows excluded), by a walk over the
  // segment graphs and `top` (the HNSW graph, whose level 0 is the root segment). `entry`: the
  // row the HNSW upper levels led to (used as a seed when inside the span).
  std::vector<Neighbor> search(QueryDistance& qd, VisitedSet& visited, const HnswGraph& top, node_t entry,
                               RangeSpan span, const Bitset& accept, std::size_t ef, QueryPlan& plan) const;

  // Adds the delta rows that `accept` matches (exact distances) to `top`; returns how many.
  std::size_t scan_delta(QueryDistance& qd, const Bitset& accept, TopK& top) const;

  // Sections RNP<i> (params), RNF<i> (field name), RNO<i> (order), RNK<i> (keys), RNL<i> (u16
  // links), RNW<i> (u32 links), RNS<i> (stale rows) for the i-th range index of a file.
  void write(IndexFileWriter& w, std::size_t i) const;
  static bool present(const IndexFileReader& r, std::size_t i);
  // Checks everything against `rows` (the index's rows) and `top_max_links`.
  static RangeIndex read(const IndexFileReader& r, std::size_t i, std::size_t rows, bool view);

 private:
  // The largest segment level (log2 of its size) around position p inside the span, at least
  // kRangeLeafLog2; top_log2() means the root.
  int covering_level(std::uint32_t p, RangeSpan s) const;
  // Links of position p at `level` (below the root), as positions into out (room for M);
  // returns how many.
  std::size_t read_links(int level, std::uint32_t p, std::uint32_t* out) const;
  void write_links(int level, std::uint32_t p, const std::uint32_t* positions, std::size_t count);
  int narrow_end() const { return std::min(top_log2_, kRangeNarrowLevelEnd); }
  int compare_key(std::uint32_t p, const AttributeValue& v) const;
  void build_level(int level, const Source& src);
  void derive_positions(std::size_t rows);

  std::string field_;
  bool is_int_ = true;
  std::size_t built_rows_ = 0;
  std::size_t M_ = 8;
  std::size_t ef_construction_ = kDefaultRangeEfConstruction;
  int top_log2_ = kRangeLeafLog2;          // the root: 2^top_log2_ >= positions
  AlignedArray<node_t> order_;             // position -> row
  AlignedArray<std::uint64_t> keys_;       // position -> value (int64 or double bits)
  // Per level below the root, per position, [count, links...]: levels under kRangeNarrowLevelEnd
  // (segments of at most 2^16 rows) as u16 offsets from the segment's start, the others as u32
  // positions.
  AlignedArray<std::uint16_t> narrow_links_;
  AlignedArray<std::uint32_t> wide_links_;
  AlignedArray<std::uint32_t> position_;   // row (< built_rows_) -> position, or kNoNode (no value)
  Bitset stale_;                           // rows < built_rows_ whose value changed
  std::size_t stale_count_ = 0;
};

}  // namespace vecdex
