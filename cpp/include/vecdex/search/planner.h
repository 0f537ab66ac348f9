// How to answer one filtered query on a graph index, from the exact number of matching rows.
//
// Costs are in "distance evaluations of a row reached by a graph walk" (~110 ns for 384-d
// float32 rows on the 2-core EPYC reference machine). Calibrated on debian (63,666 x 384, M = 16,
// 500 queries, uncorrelated filters of selectivity 0.5% to 90%, each plan forced):
// - an exact scan of the matching rows costs 0.35-1.3 units per row (rows read in address order;
//   the low end when the matching rows stay in cache between queries): kScanCostPerRow = 0.5;
// - a plain walk at beam width ef scores ~14 ef rows (kWalkDistancesPerEf);
// - a walk that scores only matching rows and bridges through the others (two hops) scores about
//   as many, plus ~1/s - 1 link reads of bridges per scored row, each ~a quarter of a unit; its
//   recall falls as the matches thin out (ef 64: 0.96 at 10%, 0.91 at 5%, 0.82 at 2%), so below
//   kTwoHopMinSelectivity only the exact scan is used, and ef grows as sqrt(0.25 / s) (capped at 2x)
//   for selectivities under 25%;
// - at selectivity >= kScoreAllMinSelectivity a walk that scores every neighbour (and returns
//   only matches) replaces bridging: it is more accurate (uncorrelated, ef 64: 0.992 against
//   0.976 at 30%) though slower at 25-50% (3.7k against 5.2k queries/s at 30%), and bridging
//   loses recall when the matches lie away from the query (0.87-0.89 at 25-45% selectivity on
//   clustered data with anti-correlated filters, tests/test_filtered_search.py), which a walk
//   through all rows does not.
#pragma once

#include <algorithm>
#include <cmath>
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
constexpr double kScanCostPerRow = 0.5;          // relative to a walk's distance evaluation
constexpr double kScoreAllMinSelectivity = 0.25;  // above: a plain walk that skips non-matches
constexpr double kTwoHopMinSelectivity = 0.06;

inline FilterPlan plan_filtered_search(const FilterPlanInput& in) {
  if (in.matches == 0) return {PlanKind::Empty, 0, false};
  if (in.matches >= in.rows) return {PlanKind::Graph, in.ef, true};
  const double s = double(in.matches) / double(in.rows);
  const double scan_cost = kScanCostPerRow * double(in.matches);
  if (s >= kScoreAllMinSelectivity) {
    // Every neighbour is scored; a fraction 1 - s of that work finds nothing to return.
    const double walk_cost = kWalkDistancesPerEf * double(in.ef) / s;
    if (scan_cost <= walk_cost) return {PlanKind::ExactScan, 0, false};
    return {PlanKind::PostFilter, in.ef, true};
  }
  if (s < kTwoHopMinSelectivity) return {PlanKind::ExactScan, 0, false};
  const double widen = std::min(2.0, std::max(1.0, std::sqrt(0.25 / s)));
  const std::size_t ef = static_cast<std::size_t>(double(in.ef) * widen + 0.5);
  const double walk_cost = kWalkDistancesPerEf * double(ef) * (1.0 + 0.25 * (1.0 / s - 1.0));
  if (scan_cost <= walk_cost) return {PlanKind::ExactScan, 0, false};
  return {PlanKind::FilteredGraph, ef, false};
}

// A filter whose range predicate has a range index (range/range_index.h): `span` rows lie in the
// range, `matches` of all rows pass the whole filter (delta rows included). The range walk scores
// the in-range rows it meets, so it needs the range to be the filter's main restriction (at
// least kRangeMinDensity of the span's rows pass the rest); past kRangeMaxSelectivity of the
// rows, a walk of the whole graph that skips the few outside is as cheap and needs no seeds.
// Within those bounds the range walk replaces the two-hop walk and post-filtering, and an exact
// scan still wins when fewer rows match than the walk would score.
constexpr double kRangeMaxSelectivity = 0.5;
constexpr double kRangeMinDensity = 0.5;
// A range walk scores ~13 rows per unit of ef but also reads ~65 links per expansion (debian,
// 10% ranges, ef 64: 855 distances, 4,900 link checks, 190 us against 590 us for an exact scan
// of the 6,400 rows), so it costs about 16 units per ef where a scanned row costs 0.5.
constexpr double kRangeWalkDistancesPerEf = 16.0;
// Below this beam a range walk misses too much (debian, 1% ranges: recall 0.90 at ef 16, 0.95 at
// 32), so the walk runs at least at it and is compared with the scan at it: a range of a few
// hundred rows is scanned whatever ef the caller gave.
constexpr std::size_t kRangeMinEf = 32;

struct RangePlanInput {
  std::size_t rows, matches, span, ef;
};

// RangeGraph or ExactScan; Graph means: leave it to plan_filtered_search.
inline FilterPlan plan_range_search(const RangePlanInput& in) {
  if (in.matches == 0) return {PlanKind::Empty, 0, false};
  if (double(in.span) >= kRangeMaxSelectivity * double(in.rows) || double(in.matches) < kRangeMinDensity * double(in.span))
    return {PlanKind::Graph, in.ef, false};
  const std::size_t ef = std::max(in.ef, kRangeMinEf);
  if (kScanCostPerRow * double(in.matches) <= kRangeWalkDistancesPerEf * double(ef))
    return {PlanKind::ExactScan, 0, false};
  return {PlanKind::RangeGraph, ef, false};
}

}  // namespace vecdex
