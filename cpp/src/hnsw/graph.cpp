#include "vecdex/hnsw/graph.h"

#include <string>

namespace vecdex {

void HnswGraph::grow(const std::uint8_t* levels, std::size_t n) {
  const std::size_t old = levels_.size();
  levels_.append(levels, n);
  level0_.resize((old + n) * (M0_ + 1), 0);
  upper_offsets_.resize(old + n, 0);
  std::size_t upper_size = upper_.size();
  for (std::size_t i = 0; i < n; ++i) {
    upper_offsets_[old + i] = upper_size;
    upper_size += std::size_t(levels[i]) * (M_ + 1);
  }
  upper_.resize(upper_size, 0);
}

HnswGraph HnswGraph::from_arrays(std::size_t M, AlignedArray<std::uint8_t> levels, AlignedArray<node_t> level0,
                                 AlignedArray<std::uint64_t> upper_offsets, AlignedArray<node_t> upper, node_t entry,
                                 int max_level) {
  HnswGraph g(M);
  const std::size_t n = levels.size();
  auto bad = [](const std::string& what) { return FormatError("corrupt index file: graph " + what); };
  if (level0.size() != n * (g.M0_ + 1) || upper_offsets.size() != n) throw bad("arrays have inconsistent sizes");
  std::size_t expect = 0;
  int top = -1;
  for (std::size_t i = 0; i < n; ++i) {
    if (upper_offsets[i] != expect) throw bad("offsets do not match levels");
    expect += std::size_t(levels[i]) * (M + 1);
    if (levels[i] > top) top = levels[i];
  }
  if (upper.size() != expect) throw bad("upper links have the wrong size");
  if (n == 0 ? (entry != kNoNode || max_level != -1) : (entry >= n || levels[entry] != max_level || max_level != top))
    throw bad("entry point is invalid");
  g.levels_ = std::move(levels);
  g.level0_ = std::move(level0);
  g.upper_offsets_ = std::move(upper_offsets);
  g.upper_ = std::move(upper);
  g.entry_ = entry;
  g.max_level_ = max_level;
  for (std::size_t i = 0; i < n; ++i) {
    for (int l = 0; l <= g.levels_[i]; ++l) {
      const node_t* ln = static_cast<const HnswGraph&>(g).links(static_cast<node_t>(i), l);
      if (ln[0] > g.max_links(l)) throw bad("link count out of range");
      for (node_t j = 1; j <= ln[0]; ++j)
        if (ln[j] >= n || g.levels_[ln[j]] < l) throw bad("link to a missing node");
    }
  }
  return g;
}

}  // namespace vecdex
