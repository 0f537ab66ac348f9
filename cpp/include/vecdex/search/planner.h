// How to answer one filtered query on a graph index, from the exact number of matching rows.
//
// Costs are in "distance evaluations of a row found by a graph walk". Scoring the matching rows
// in order (an exact scan) costs about a third of that per row: the rows are read in address
// order, so the hardware prefetcher streams them, where a walk waits on scattered rows. A plain
// walk at beam width ef scores about kWalkDistancesPerEf * ef rows (measured on debian and
// clustered data, M = 16: 13-15). A filtered walk that scores only matching rows needs about as
// many matching rows again, and reads the links of about one bridge per match missed, so its
// cost grows as the matches thin out; below kTwoHopMinSelectivity two hops no longer connect
// the matches reliably and the exact scan is the answer at any size.
#pragma once

#include <algorithm>
#include <cstddef>

#include "vecdex/search/query_filter.h"

namespace vecdex {

struct FilterPlanInput {
  std::size_t rows;       // rows in the index
  std::size_t matches;    // rows the filter accepts
  std::size_t pool;       // candidates the search must deliver (k times the re-rank factor)
  std::size_t ef;         // the caller's beam width (already >= pool)
  std::size_t max_links;  // level-0 links per row
};

struct FilterPlan {
  PlanKind kind;
  std::size_t ef;   // beam width for a walk
  bool score_all;   // walk: score every neighbour (many matches) instead of matching rows only
};

constexpr double kWalkDistancesPerEf = 14.0;
constexpr double kScanCostPerRow = 0.35;         // relative to a walk's distance evaluation
constexpr double kScoreAllMinSelectivity = 0.5;  // above: a plain walk that skips non-matches
constexpr double kTwoHopMinSelectivity = 0.02;

inline FilterPlan plan_filtered_search(const FilterPlanInput& in) {
  if (in.matches == 0) return {PlanKind::Empty, 0, false};
  if (in.matches >= in.rows) return {PlanKind::Graph, in.ef, true};
  const double s = double(in.matches) / double(in.rows);
  const double scan_cost = kScanCostPerRow * double(in.matches);
  if (s >= kScoreAllMinSelectivity) {
    // Every neighbour is scored; a fraction 1 - s of that work finds nothing to return.
    const double walk_cost = kWalkDistancesPerEf * double(in.ef) / s;
    if (scan_cost <= walk_cost) return {PlanKind::ExactScan, 0, false};
    return {PlanKind::FilteredGraph, in.ef, true};
  }
  if (s < kTwoHopMinSelectivity) return {PlanKind::ExactScan, 0, false};
  // Matching rows only, plus the link reads of the bridges (about 1/s - 1 per scored row, each a
  // cache miss like a row's but no arithmetic: counted at a quarter).
  const double walk_cost = kWalkDistancesPerEf * double(in.ef) * (1.0 + 0.25 * (1.0 / s - 1.0));
  if (scan_cost <= walk_cost) return {PlanKind::ExactScan, 0, false};
  return {PlanKind::FilteredGraph, in.ef, false};
}

}  // namespace vecdex
