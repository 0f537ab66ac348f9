// Reference kernels: plain loops that every SIMD level is tested against.
#include <cmath>

#include "batch4_from_single.h"
#include "vecdex/simd/kernel_decls.h"

namespace vecdex {
namespace scalar {
namespace {

float l2sq(const float* a, const float* b, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) {
    const float t = a[i] - b[i];
    s += t * t;
  }
  return s;
}

float dot(const float* a, const float* b, std::size_t d) {
  float s = 0.f;
  for (std::size_t i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

float cosine(const float* a, const float* b, std::size_t d) {
  float ab = 0.f, aa = 0.f, bb = 0.f;
  for (std::size_t i = 0; i < d; ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa == 0.f || bb == 0.f) return 0.f;
  return static_cast<float>(ab / std::sqrt(double(aa) * double(bb)));
}

void l2sq_batch(const float* q, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = l2sq(q, rows[i], d);
}
void dot_batch(const float* q, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = dot(q, rows[i], d);
}
void l2sq_block(const float* q, const float* base, std::size_t n, std::size_t d, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = l2sq(q, base + i * d, d);
}
void dot_block(const float* q, const float* base, std::size_t n, std::size_t d, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = dot(q, base + i * d, d);
}

const DistanceKernels kTable = {SimdLevel::Scalar, l2sq,      dot,       cosine,
                                l2sq_batch,        dot_batch, l2sq_block, dot_block,
                                batch4_from_single<l2sq>, batch4_from_single<dot>};

}  // namespace

const DistanceKernels* kernel_table() { return &kTable; }

}  // namespace scalar
}  // namespace vecdex
