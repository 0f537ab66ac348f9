// HNSW's neighbour-diversity heuristic (Malkov & Yashunin, algorithm 4), shared by the HNSW graph
// and the range index's segment graphs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "vecdex/search/topk.h"

namespace vecdex {

// Keeps at most max_count of `candidates` (distances to one base row), nearest first, each only
// if it is closer to the base than to every candidate kept before it; a list already within
// max_count is left as it is. `diverse(c, kept)` makes that test, so the caller chooses how rows
// are named and measured.
template <class Diverse>
void select_diverse(std::vector<Neighbor>& candidates, std::size_t max_count, Diverse diverse) {
  if (candidates.size() <= max_count) return;
  std::sort(candidates.begin(), candidates.end());
  std::vector<Neighbor> kept;
  kept.reserve(max_count);
  for (const Neighbor& c : candidates) {
    if (kept.size() >= max_count) break;
    if (diverse(c, kept)) kept.push_back(c);
  }
  candidates.swap(kept);
}

}  // namespace vecdex
