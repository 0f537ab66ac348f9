// AVX-512 kernels (F/BW/DQ/VL). Compiled with AVX-512 flags; reached only through the dispatcher.
// Tails use masked loads, so no row ever reads past its end. No standard-library templates here
// (see kernels_avx2.cpp).
#include <immintrin.h>

#include <cmath>

#include "vecdex/simd/kernel_decls.h"
#include "vecdex/simd/prefetch.h"

namespace vecdex {
namespace avx512 {
namespace {

inline __mmask16 tail_mask(std::size_t rem) { return static_cast<__mmask16>((1u << rem) - 1u); }

float l2sq(const float* a, const float* b, std::size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    __m512 t2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
    __m512 t3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
    s2 = _mm512_fmadd_ps(t2, t2, s2);
    s3 = _mm512_fmadd_ps(t3, t3, s3);
  }
  for (; i + 16 <= d; i += 16) {
    __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    const __mmask16 m = tail_mask(d - i);
    __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float dot(const float* a, const float* b, std::size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= d; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < d) {
    const __mmask16 m = tail_mask(d - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float cosine(const float* a, const float* b, std::size_t d) {
  __m512 ab = _mm512_setzero_ps(), aa = _mm512_setzero_ps(), bb = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m512 x = _mm512_loadu_ps(a + i), y = _mm512_loadu_ps(b + i);
    ab = _mm512_fmadd_ps(x, y, ab);
    aa = _mm512_fmadd_ps(x, x, aa);
    bb = _mm512_fmadd_ps(y, y, bb);
  }
  if (i < d) {
    const __mmask16 m = tail_mask(d - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, a + i), y = _mm512_maskz_loadu_ps(m, b + i);
    ab = _mm512_fmadd_ps(x, y, ab);
    aa = _mm512_fmadd_ps(x, x, aa);
    bb = _mm512_fmadd_ps(y, y, bb);
  }
  const float sab = _mm512_reduce_add_ps(ab), saa = _mm512_reduce_add_ps(aa);
  const float sbb = _mm512_reduce_add_ps(bb);
  if (saa == 0.f || sbb == 0.f) return 0.f;
  return static_cast<float>(sab / std::sqrt(double(saa) * double(sbb)));
}

void l2sq_batch(const float* q, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  prefetch_rows(rows, n, d * sizeof(float));
  for (std::size_t i = 0; i < n; ++i) out[i] = l2sq(q, rows[i], d);
}
void dot_batch(const float* q, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  prefetch_rows(rows, n, d * sizeof(float));
  for (std::size_t i = 0; i < n; ++i) out[i] = dot(q, rows[i], d);
}
void l2sq_block(const float* q, const float* base, std::size_t n, std::size_t d, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = l2sq(q, base + i * d, d);
}
void dot_block(const float* q, const float* base, std::size_t n, std::size_t d, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = dot(q, base + i * d, d);
}

// Four queries per row: each 16-float slice of the row is loaded once and meets the four
// queries' slices, two accumulators per query (eight chains hide the FMA latency).
void dot_batch4(const float* const* queries, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  const float *q0 = queries[0], *q1 = queries[1], *q2 = queries[2], *q3 = queries[3];
  for (std::size_t r = 0; r < n; ++r) {
    const float* x = rows[r];
    if (r + 2 < n) prefetch_l2_range(rows[r + 2], d * sizeof(float));
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
    std::size_t i = 0;
    for (; i + 32 <= d; i += 32) {
      const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
      a0 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(q0 + i), a0);
      a1 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(q1 + i), a1);
      a2 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(q2 + i), a2);
      a3 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(q3 + i), a3);
      b0 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(q0 + i + 16), b0);
      b1 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(q1 + i + 16), b1);
      b2 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(q2 + i + 16), b2);
      b3 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(q3 + i + 16), b3);
    }
    for (; i < d; i += 16) {
      const __mmask16 m = d - i >= 16 ? static_cast<__mmask16>(0xFFFF) : tail_mask(d - i);
      const __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
      a0 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, q0 + i), a0);
      a1 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, q1 + i), a1);
      a2 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, q2 + i), a2);
      a3 = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, q3 + i), a3);
    }
    out[4 * r + 0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    out[4 * r + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    out[4 * r + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
    out[4 * r + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
  }
}
void l2sq_batch4(const float* const* queries, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  const float *q0 = queries[0], *q1 = queries[1], *q2 = queries[2], *q3 = queries[3];
  for (std::size_t r = 0; r < n; ++r) {
    const float* x = rows[r];
    if (r + 2 < n) prefetch_l2_range(rows[r + 2], d * sizeof(float));
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    for (std::size_t i = 0; i < d; i += 16) {
      const __mmask16 m = d - i >= 16 ? static_cast<__mmask16>(0xFFFF) : tail_mask(d - i);
      const __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
      const __m512 t0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q0 + i), x0);
      const __m512 t1 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q1 + i), x0);
      const __m512 t2 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q2 + i), x0);
      const __m512 t3 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q3 + i), x0);
      a0 = _mm512_fmadd_ps(t0, t0, a0);
      a1 = _mm512_fmadd_ps(t1, t1, a1);
      a2 = _mm512_fmadd_ps(t2, t2, a2);
      a3 = _mm512_fmadd_ps(t3, t3, a3);
    }
    out[4 * r + 0] = _mm512_reduce_add_ps(a0);
    out[4 * r + 1] = _mm512_reduce_add_ps(a1);
    out[4 * r + 2] = _mm512_reduce_add_ps(a2);
    out[4 * r + 3] = _mm512_reduce_add_ps(a3);
  }
}

const DistanceKernels kTable = {SimdLevel::AVX512, l2sq,      dot,       cosine,
                                l2sq_batch,        dot_batch, l2sq_block, dot_block,
                                l2sq_batch4, dot_batch4};

}  // namespace

const DistanceKernels* kernel_table() { return &kTable; }

}  // namespace avx512
}  // namespace vecdex
