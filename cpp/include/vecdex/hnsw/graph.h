// The HNSW graph's links, in flat arrays: level 0 has a fixed block of (1 + M0) node ids per row
// (count, then links); rows above level 0 own consecutive blocks of (1 + M) in one shared upper
// array, found through a per-row offset. No allocation per node, and the arrays save as-is.
#pragma once

#include <cstdint>

#include "vecdex/common.h"
#include "vecdex/storage/aligned_array.h"

namespace vecdex {

constexpr node_t kNoNode = 0xFFFFFFFFu;

class HnswGraph {
 public:
  HnswGraph() = default;
  explicit HnswGraph(std::size_t M) : M_(M), M0_(2 * M) {}

  std::size_t M() const { return M_; }
  std::size_t max_links(int level) const { return level == 0 ? M0_ : M_; }
  std::size_t size() const { return levels_.size(); }
  int level(node_t i) const { return levels_[i]; }
  node_t entry() const { return entry_; }
  int max_level() const { return max_level_; }
  void set_entry(node_t e, int level) {
    entry_ = e;
    max_level_ = level;
  }

  // [count, link_0, ..., link_{max-1}] of row i at a level it has.
  node_t* links(node_t i, int level) {
    return level == 0 ? level0_.mutable_data() + std::size_t(i) * (M0_ + 1)
                      : upper_.mutable_data() + upper_offsets_[i] + std::size_t(level - 1) * (M_ + 1);
  }
  const node_t* links(node_t i, int level) const {
    return level == 0 ? level0_.data() + std::size_t(i) * (M0_ + 1)
                      : upper_.data() + upper_offsets_[i] + std::size_t(level - 1) * (M_ + 1);
  }

  // Appends rows with the given levels, all without links.
  void grow(const std::uint8_t* levels, std::size_t n);

  std::size_t memory_bytes() const {
    return levels_.bytes() + level0_.bytes() + upper_offsets_.bytes() + upper_.bytes();
  }

  const AlignedArray<std::uint8_t>& levels() const { return levels_; }
  const AlignedArray<node_t>& level0() const { return level0_; }
  const AlignedArray<std::uint64_t>& upper_offsets() const { return upper_offsets_; }
  const AlignedArray<node_t>& upper() const { return upper_; }

  // Takes arrays read from a file and checks every link before the graph is walked: counts within
  // bounds, targets existing rows that have the level, offsets matching the levels.
  static HnswGraph from_arrays(std::size_t M, AlignedArray<std::uint8_t> levels, AlignedArray<node_t> level0,
                               AlignedArray<std::uint64_t> upper_offsets, AlignedArray<node_t> upper, node_t entry,
                               int max_level);

 private:
  std::size_t M_ = 16, M0_ = 32;
  AlignedArray<std::uint8_t> levels_;
  AlignedArray<node_t> level0_;
  AlignedArray<std::uint64_t> upper_offsets_;
  AlignedArray<node_t> upper_;
  node_t entry_ = kNoNode;
  int max_level_ = -1;
};

}  // namespace vecdex
