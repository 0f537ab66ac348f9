// Full-precision rows, contiguous and 64-byte aligned: the reference store and the source of
// exact distances for re-ranking.
#pragma once

#include <memory>

#include "vecdex/simd/dispatch.h"
#include "vecdex/storage/aligned_array.h"
#include "vecdex/storage/code_store.h"

namespace vecdex {

// Internal distance for a metric: squared L2, or 1 - dot for inner product and (normalised)
// cosine, so every metric is "smaller is closer" and matches what search returns.
inline float finish_distance(Metric m, float raw) { return m == Metric::L2 ? raw : 1.0f - raw; }

class FloatStore final : public CodeStore {
 public:
  FloatStore(std::size_t dim, Metric metric) : dim_(dim), metric_(metric) {}

  std::size_t dim() const override { return dim_; }
  std::size_t size() const override { return rows_.size() / dim_; }
  Metric metric() const override { return metric_; }
  std::unique_ptr<QueryDistance> query_distance(const float* query) const override;
  float pair_distance(node_t a, node_t b) const override;
  std::size_t memory_bytes() const override { return rows_.bytes(); }

  Quantization quantization() const override { return Quantization::None; }
  bool trained() const override { return true; }
  void train(const float*, std::size_t) override {}
  void reserve(std::size_t n) override { rows_.reserve(n * dim_); }
  void append(const float* rows, std::size_t n) override { rows_.append(rows, n * dim_); }
  void decode(node_t i, float* out) const override;
  const float* row_as_float(node_t i, float*) const override { return row(i); }
  bool is_view() const override { return rows_.is_view(); }
  void write(IndexFileWriter& w) const override { w.add_array(section::kVectorsF32, rows_); }
  void read(const IndexFileReader& r, std::size_t count, bool view) override {
    rows_ = r.array<float>(section::kVectorsF32, count * dim_, view);
  }
  std::size_t bytes_per_row() const override { return dim_ * sizeof(float); }

  const float* row(node_t i) const { return rows_.data() + std::size_t(i) * dim_; }
  float* mutable_row(node_t i) { return rows_.mutable_data() + std::size_t(i) * dim_; }
  const AlignedArray<float>& rows() const { return rows_; }

 private:
  std::size_t dim_;
  Metric metric_;
  AlignedArray<float> rows_;
};

}  // namespace vecdex
