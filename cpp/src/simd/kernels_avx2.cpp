// AVX2 + FMA kernels. Compiled with -mavx2 -mfma; reached only through the dispatcher, after the
// CPU and OS have been checked. Keep standard-library templates out of this file: an inline
// instantiation compiled here could be picked by the linker for callers on older CPUs.
#include <immintrin.h>

#include <cmath>

#include "avx2_common.h"
#include "vecdex/simd/kernel_decls.h"
#include "vecdex/simd/prefetch.h"

namespace vecdex {
namespace avx2 {
namespace {

float l2sq(const float* a, const float* b, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
    __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
    s2 = _mm256_fmadd_ps(t2, t2, s2);
    s3 = _mm256_fmadd_ps(t3, t3, s3);
  }
  for (; i + 8 <= d; i += 8) {
    __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    const __m256i m = tail_mask(d - i);
    __m256 t = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
    s1 = _mm256_fmadd_ps(t, t, s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float dot(const float* a, const float* b, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= d; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  if (i < d) {
    const __m256i m = tail_mask(d - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float cosine(const float* a, const float* b, std::size_t d) {
  __m256 ab = _mm256_setzero_ps(), aa = _mm256_setzero_ps(), bb = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
    ab = _mm256_fmadd_ps(x, y, ab);
    aa = _mm256_fmadd_ps(x, x, aa);
    bb = _mm256_fmadd_ps(y, y, bb);
  }
  if (i < d) {
    const __m256i m = tail_mask(d - i);
    const __m256 x = _mm256_maskload_ps(a + i, m), y = _mm256_maskload_ps(b + i, m);
    ab = _mm256_fmadd_ps(x, y, ab);
    aa = _mm256_fmadd_ps(x, x, aa);
    bb = _mm256_fmadd_ps(y, y, bb);
  }
  const float sab = hsum(ab), saa = hsum(aa), sbb = hsum(bb);
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

// Four queries per row (see the AVX-512 version); the tail uses masked loads (zeros on both
// sides add nothing to either sum).
template <bool kL2>
inline __m256 accumulate(__m256 acc, __m256 x, __m256 q) {
  if constexpr (kL2) {
    const __m256 t = _mm256_sub_ps(q, x);
    return _mm256_fmadd_ps(t, t, acc);
  } else {
    return _mm256_fmadd_ps(x, q, acc);
  }
}
template <bool kL2>
void batch4(const float* const* queries, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  const float *q0 = queries[0], *q1 = queries[1], *q2 = queries[2], *q3 = queries[3];
  for (std::size_t r = 0; r < n; ++r) {
    const float* x = rows[r];
    if (r + 2 < n) prefetch_l2_range(rows[r + 2], d * sizeof(float));
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 8 <= d; i += 8) {
      const __m256 x0 = _mm256_loadu_ps(x + i);
      a0 = accumulate<kL2>(a0, x0, _mm256_loadu_ps(q0 + i));
      a1 = accumulate<kL2>(a1, x0, _mm256_loadu_ps(q1 + i));
      a2 = accumulate<kL2>(a2, x0, _mm256_loadu_ps(q2 + i));
      a3 = accumulate<kL2>(a3, x0, _mm256_loadu_ps(q3 + i));
    }
    if (i < d) {
      const __m256i m = tail_mask(d - i);
      const __m256 x0 = _mm256_maskload_ps(x + i, m);
      a0 = accumulate<kL2>(a0, x0, _mm256_maskload_ps(q0 + i, m));
      a1 = accumulate<kL2>(a1, x0, _mm256_maskload_ps(q1 + i, m));
      a2 = accumulate<kL2>(a2, x0, _mm256_maskload_ps(q2 + i, m));
      a3 = accumulate<kL2>(a3, x0, _mm256_maskload_ps(q3 + i, m));
    }
    out[4 * r + 0] = hsum(a0);
    out[4 * r + 1] = hsum(a1);
    out[4 * r + 2] = hsum(a2);
    out[4 * r + 3] = hsum(a3);
  }
}
void dot_batch4(const float* const* queries, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  batch4<false>(queries, rows, n, d, out);
}
void l2sq_batch4(const float* const* queries, const float* const* rows, std::size_t n, std::size_t d, float* out) {
  batch4<true>(queries, rows, n, d, out);
}

const DistanceKernels kTable = {SimdLevel::AVX2, l2sq,      dot,       cosine,
                                l2sq_batch,      dot_batch, l2sq_block, dot_block,
                                l2sq_batch4, dot_batch4};

}  // namespace

const DistanceKernels* kernel_table() { return &kTable; }

}  // namespace avx2
}  // namespace vecdex
