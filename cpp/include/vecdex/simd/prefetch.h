// Software prefetch for graph walks, where the next rows are known before they are needed.
#pragma once

#include <cstddef>

namespace vecdex {

inline void prefetch_l1(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}

// Prefetch a whole row: a 384-d float row spans 24 cache lines, and touching only the first
// leaves the rest to the hardware prefetcher, which does not follow scattered graph neighbours.
inline void prefetch_row(const void* p, std::size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (std::size_t off = 0; off < bytes; off += 64) prefetch_l1(c + off);
}

}  // namespace vecdex

namespace vecdex {
// Rows of a scattered batch requested before the first is scored: a graph walk is bound by
// memory latency, so the misses of several rows must be in flight at once.
#ifndef VECDEX_ROWS_AHEAD
#define VECDEX_ROWS_AHEAD 4
#endif
constexpr std::size_t kRowsAhead = VECDEX_ROWS_AHEAD;
}  // namespace vecdex
