#include <algorithm>
#include <vector>

#include "vecdex/storage/float_store.h"

namespace vecdex {
namespace {

class FloatQueryDistance final : public QueryDistance {
 public:
  FloatQueryDistance(const FloatStore& store, const float* query)
      : store_(store), query_(query), k_(kernels()), l2_(store.metric() == Metric::L2), dim_(store.dim()) {}

  float distance(node_t id) override {
    const float* r = store_.row(id);
    return l2_ ? k_.l2sq(query_, r, dim_) : 1.0f - k_.dot(query_, r, dim_);
  }

  void distances(const node_t* ids, std::size_t n, float* out) override {
    if (rows_.size() < n) rows_.resize(n);
    for (std::size_t i = 0; i < n; ++i) rows_[i] = store_.row(ids[i]);
    if (l2_) {
      k_.l2sq_batch(query_, rows_.data(), n, dim_, out);
    } else {
      k_.dot_batch(query_, rows_.data(), n, dim_, out);
      for (std::size_t i = 0; i < n; ++i) out[i] = 1.0f - out[i];
    }
  }

  void distances_range(node_t first, std::size_t n, float* out) override {
    if (l2_) {
      k_.l2sq_block(query_, store_.row(first), n, dim_, out);
    } else {
      k_.dot_block(query_, store_.row(first), n, dim_, out);
      for (std::size_t i = 0; i < n; ++i) out[i] = 1.0f - out[i];
    }
  }

 private:
  const FloatStore& store_;
  const float* query_;
  const DistanceKernels& k_;
  bool l2_;
  std::size_t dim_;
  std::vector<const float*> rows_;
};

}  // namespace

std::unique_ptr<QueryDistance> FloatStore::query_distance(const float* query) const {
  return std::make_unique<FloatQueryDistance>(*this, query);
}

void FloatStore::decode(node_t i, float* out) const {
  const float* r = row(i);
  std::copy(r, r + dim_, out);
}

float FloatStore::pair_distance(node_t a, node_t b) const {
  const DistanceKernels& k = kernels();
  return metric_ == Metric::L2 ? k.l2sq(row(a), row(b), dim_) : 1.0f - k.dot(row(a), row(b), dim_);
}

}  // namespace vecdex
