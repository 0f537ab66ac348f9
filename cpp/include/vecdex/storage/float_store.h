// Full-precision rows, contiguous and 64-byte aligned: the reference store and the source of
// exact distances for re-ranking.
#pragma once

#include <memory>

#include "vecdex/simd/dispatch.h"
#include "vecdex/storage/aligned_array.h"
#include "vecdex/storage/vector_store.h"

namespace vecdex {

// Internal distance for a metric: squared L2, or 1 - dot for inner product and (normalised)
// cosine, so every metric is "smaller is closer" and matches what search returns.
inline float finish_distance(Metric m, float raw) { return m == Metric::L2 ? raw : 1.0f - raw; }

class FloatStore final : public VectorStore {
 public:
  FloatStore(std::size_t dim, Metric metric) : dim_(dim), metric_(metric) {}
  FloatStore(std::size_t dim, Metric metric, AlignedArray<float> rows)
      : dim_(dim), metric_(metric), rows_(std::move(rows)) {}

  std::size_t dim() const override { return dim_; }
  std::size_t size() const override { return rows_.size() / dim_; }
  Metric metric() const override { return metric_; }
  std::unique_ptr<QueryDistance> query_distance(const float* query) const override;
  float pair_distance(node_t a, node_t b) const override;
  std::size_t memory_bytes() const override { return rows_.bytes(); }

  const float* row(node_t i) const { return rows_.data() + std::size_t(i) * dim_; }
  const AlignedArray<float>& rows() const { return rows_; }
  void reserve(std::size_t n) { rows_.reserve(n * dim_); }
  // Appends already-prepared rows (normalised for cosine by the caller).
  void append(const float* rows, std::size_t n) { rows_.append(rows, n * dim_); }

 private:
  std::size_t dim_;
  Metric metric_;
  AlignedArray<float> rows_;
};

}  // namespace vecdex
