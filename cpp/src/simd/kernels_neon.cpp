// NEON kernels for aarch64, where NEON is part of the baseline ISA.
#include <arm_neon.h>

#include <cmath>

#include "batch4_from_single.h"
#include "vecdex/simd/kernel_decls.h"

namespace vecdex {
namespace neon {
namespace {

float l2sq(const float* a, const float* b, std::size_t d) {
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = vdupq_n_f32(0.f);
  std::size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    float32x4_t t0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
    float32x4_t t1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    s0 = vfmaq_f32(s0, t0, t0);
    s1 = vfmaq_f32(s1, t1, t1);
  }
  float s = vaddvq_f32(vaddq_f32(s0, s1));
  for (; i < d; ++i) {
    const float t = a[i] - b[i];
    s += t * t;
  }
  return s;
}

float dot(const float* a, const float* b, std::size_t d) {
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = vdupq_n_f32(0.f);
  std::size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
  }
  float s = vaddvq_f32(vaddq_f32(s0, s1));
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}

float cosine(const float* a, const float* b, std::size_t d) {
  float32x4_t ab = vdupq_n_f32(0.f), aa = vdupq_n_f32(0.f), bb = vdupq_n_f32(0.f);
  std::size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    const float32x4_t x = vld1q_f32(a + i), y = vld1q_f32(b + i);
    ab = vfmaq_f32(ab, x, y);
    aa = vfmaq_f32(aa, x, x);
    bb = vfmaq_f32(bb, y, y);
  }
  float sab = vaddvq_f32(ab), saa = vaddvq_f32(aa), sbb = vaddvq_f32(bb);
  for (; i < d; ++i) {
    sab += a[i] * b[i];
    saa += a[i] * a[i];
    sbb += b[i] * b[i];
  }
  if (saa == 0.f || sbb == 0.f) return 0.f;
  return static_cast<float>(sab / std::sqrt(double(saa) * double(sbb)));
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

const DistanceKernels kTable = {SimdLevel::Neon, l2sq,      dot,       cosine,
                                l2sq_batch,      dot_batch, l2sq_block, dot_block,
                                batch4_from_single<l2sq>, batch4_from_single<dot>};

}  // namespace

const DistanceKernels* kernel_table() { return &kTable; }

}  // namespace neon
}  // namespace vecdex
