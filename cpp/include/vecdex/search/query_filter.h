// A query's filter as the search loops see it (the matching rows and how many there are) and the
// plan the planner chose for it, which explain=True reports.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vecdex/attributes/bitset.h"

namespace vecdex {

class RangeIndex;

// Positions [lo, hi) of a range index's sorted order.
struct RangeSpan {
  std::uint32_t lo = 0, hi = 0;
  std::size_t size() const { return hi - lo; }
};

struct QueryFilter {
  const Bitset* rows = nullptr;  // the rows that may be returned
  std::size_t matches = 0;       // rows->count(), computed once per distinct filter
  // A range predicate on a field with a range index (the rest of the filter is in `rows`).
  const RangeIndex* range = nullptr;
  RangeSpan span;
};

enum class PlanKind : std::uint8_t {
  Graph,          // no filter, or one that every row matches: the plain graph search
  Empty,          // no row matches: nothing to search
  ExactScan,      // distances to every matching row (few matches: cheaper than any walk)
  FilteredGraph,  // graph walk that scores only matching rows, bridging through the others
  PostFilter,     // graph walk that scores every row it meets and keeps only the matches (most match)
  FlatScan,       // FlatIndex: a scan of all rows, the filter checked per row
  RangeGraph,     // walk of a range index's segment graphs inside the range (range/range_index.h)
};

inline const char* plan_name(PlanKind k) {
  switch (k) {
    case PlanKind::Graph: return "graph";
    case PlanKind::Empty: return "empty";
    case PlanKind::ExactScan: return "exact_scan";
    case PlanKind::FilteredGraph: return "filtered_graph";
    case PlanKind::PostFilter: return "post_filter";
    case PlanKind::FlatScan: return "flat_scan";
    case PlanKind::RangeGraph: return "range_graph";
  }
  return "unknown";
}

// What one query's search did.
struct QueryPlan {
  PlanKind kind = PlanKind::Graph;
  std::size_t matches = 0;     // rows the filter accepts (all rows without a filter)
  std::size_t ef = 0;          // beam width used by a graph walk (0 for scans)
  bool fallback = false;       // the walk found fewer than min(k, matches): finished by an exact scan
  std::uint64_t distances = 0;   // distance evaluations (codes), the fall-back included
  std::uint64_t expansions = 0;  // graph nodes whose links were read
  std::uint64_t filter_checks = 0;  // rows tested against the filter during the walk
};

}  // namespace vecdex
