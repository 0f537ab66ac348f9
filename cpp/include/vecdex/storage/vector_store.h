// How an index measures distance, independent of how vectors are stored. HNSW and exact search
// talk only to this interface, so fp32 rows, fp16 rows or quantised codes plug in unchanged.
#pragma once

#include <cstddef>
#include <memory>

#include "vecdex/common.h"

namespace vecdex {

// Distances from one prepared query to stored rows. Not thread-safe: one per query per thread.
// Batched so the virtual call is paid once per neighbour list, not once per distance.
class QueryDistance {
 public:
  virtual ~QueryDistance() = default;
  virtual float distance(node_t id) = 0;
  virtual void distances(const node_t* ids, std::size_t n, float* out) = 0;
  // Distances to the contiguous rows [first, first + n).
  virtual void distances_range(node_t first, std::size_t n, float* out) = 0;
  // Stores whose distances are estimates with a known error (RaBitQ) write the estimates and
  // their bounds at width eps0 and return true; the others return false.
  virtual bool estimate_with_bounds(const node_t* ids, std::size_t n, double eps0, float* dist, float* bound) {
    (void)ids, (void)n, (void)eps0, (void)dist, (void)bound;
    return false;
  }
};

class VectorStore {
 public:
  virtual ~VectorStore() = default;
  virtual std::size_t dim() const = 0;
  virtual std::size_t size() const = 0;
  virtual Metric metric() const = 0;
  // `query` is already in the stored space (normalised for cosine).
  virtual std::unique_ptr<QueryDistance> query_distance(const float* query) const = 0;
  // Distance between two stored rows: what graph construction prunes neighbours with.
  virtual float pair_distance(node_t a, node_t b) const = 0;
  virtual std::size_t memory_bytes() const = 0;
};

}  // namespace vecdex
