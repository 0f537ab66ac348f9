// Tie-aware recall@k, as ann-benchmarks counts it. Distances are recomputed here in double with
// the plain formula of each metric, independent of vecdex's SIMD kernels, so the index is judged
// against the definition rather than against itself.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_io.h"
#include "vecdex/common.h"

namespace vecdex_bench {

// The distances vecdex returns: l2 = squared Euclidean, ip = 1 - q.x, cosine = 1 - cos(q, x)
// with a zero vector having similarity 0.
inline double exact_distance(vecdex::Metric metric, const float* a, const float* b, std::size_t dim) {
  double dot = 0, aa = 0, bb = 0, l2 = 0;
  for (std::size_t j = 0; j < dim; ++j) {
    const double x = a[j], y = b[j];
    dot += x * y;
    aa += x * x;
    bb += y * y;
    l2 += (x - y) * (x - y);
  }
  switch (metric) {
    case vecdex::Metric::L2: return l2;
    case vecdex::Metric::InnerProduct: return 1.0 - dot;
    case vecdex::Metric::Cosine: return (aa > 0 && bb > 0) ? 1.0 - dot / std::sqrt(aa * bb) : 1.0;
  }
  return l2;
}

// Float32 search distances are only accurate to ~1e-6 relative, so equal-looking distances must
// count as ties: absolute 1e-5 near 0 (cosine, ip), relative once distances exceed 1 (large l2).
inline double tie_tolerance(double kth) { return 1e-5 * std::max(1.0, std::abs(kth)); }

// Per query, the largest exact distance a hit may have. Taken as the largest exact distance among
// the first k ground-truth ids rather than that of the k-th alone, so a ground truth whose order
// is off by float32 rounding does not lower the bar.
inline std::vector<double> hit_thresholds(const Matrix<float>& base, const Matrix<float>& queries,
                                          const Matrix<std::int64_t>& gt, std::size_t k, vecdex::Metric metric) {
  std::vector<double> thr(queries.rows);
  for (std::size_t q = 0; q < queries.rows; ++q) {
    double kth = -INFINITY;
    for (std::size_t j = 0; j < k; ++j) {
      const std::int64_t id = gt.row(q)[j];
      kth = std::max(kth, exact_distance(metric, queries.row(q), base.row(static_cast<std::size_t>(id)), base.cols));
    }
    thr[q] = kth + tie_tolerance(kth);
  }
  return thr;
}

// Throws InputError unless the first k ids of each of the first `nq` rows are rows of the base.
inline void check_ground_truth(const Matrix<std::int64_t>& gt, const std::string& path, std::size_t nq,
                               std::size_t k, std::size_t n) {
  if (gt.cols < k) {
    throw InputError("'" + path + "': ground truth has " + std::to_string(gt.cols) + " neighbours per query; --k " +
                     std::to_string(k) + " needs at least that many");
  }
  if (gt.rows < nq) {
    throw InputError("'" + path + "': ground truth has " + std::to_string(gt.rows) + " rows but " +
                     std::to_string(nq) + " queries are used");
  }
  for (std::size_t q = 0; q < nq; ++q) {
    for (std::size_t j = 0; j < k; ++j) {
      const std::int64_t id = gt.row(q)[j];
      if (id < 0 || static_cast<std::uint64_t>(id) >= n) {
        throw InputError("'" + path + "': ground truth id " + std::to_string(id) + " (query " + std::to_string(q) +
                         ", rank " + std::to_string(j) + ") is not a row of the base (" + std::to_string(n) +
                         " rows); is it the ground truth of this base file?");
      }
    }
  }
}

// Fraction of the nq*k returned ids (row-major nq x k, -1 = none) that are hits; an id repeated
// within a row counts once, and an id that is not a base row never counts.
inline double recall_at_k(const std::vector<std::int64_t>& ids, const Matrix<float>& base, const Matrix<float>& queries,
                          const std::vector<double>& thresholds, std::size_t k, vecdex::Metric metric) {
  std::size_t hits = 0;
  for (std::size_t q = 0; q < queries.rows; ++q) {
    const std::int64_t* row = ids.data() + q * k;
    for (std::size_t j = 0; j < k; ++j) {
      const std::int64_t id = row[j];
      if (id < 0 || static_cast<std::uint64_t>(id) >= base.rows) continue;
      if (std::find(row, row + j, id) != row + j) continue;
      const double d = exact_distance(metric, queries.row(q), base.row(static_cast<std::size_t>(id)), base.cols);
      if (d <= thresholds[q]) ++hits;
    }
  }
  return double(hits) / double(queries.rows * k);
}

}  // namespace vecdex_bench
