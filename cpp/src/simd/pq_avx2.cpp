// AVX2 PQ kernels (simd/pq_kernels.h). Compiled with -mavx2 -ffp-contract=off; reached only
// through pq_dispatch.cpp after the CPU and OS have been checked. No standard-library templates.
//
// fastscan4: one 32-byte load holds the codes of two sub-quantizers for 32 rows (16 bytes each,
// low nibbles rows 0..15, high nibbles rows 16..31), and one 32-byte load their two 16-entry
// tables; vpshufb looks up all 64 entries in registers. The byte results are widened to uint16
// and summed (wrapping, like the scalar reference).
#include <immintrin.h>

#include "vecdex/simd/pq_kernels.h"

namespace vecdex {
namespace avx2 {
namespace {

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

void fastscan4(const std::uint8_t* codes, std::size_t nblocks, std::size_t m, const std::uint8_t* lut,
               std::uint16_t* out) {
  const std::size_t block_bytes = 16 * m;
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m128i mask128 = _mm_set1_epi8(0x0F);
  for (std::size_t b = 0; b < nblocks; ++b) {
    const std::uint8_t* blk = codes + b * block_bytes;
    __m256i acc_lo = _mm256_setzero_si256();  // rows 0..15
    __m256i acc_hi = _mm256_setzero_si256();  // rows 16..31
    std::size_t s = 0;
    for (; s + 2 <= m; s += 2) {
      const __m256i c = load256(blk + 16 * s);
      const __m256i t = load256(lut + 16 * s);
      const __m256i lo = _mm256_and_si256(c, mask);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), mask);
      const __m256i rlo = _mm256_shuffle_epi8(t, lo);
      const __m256i rhi = _mm256_shuffle_epi8(t, hi);
      acc_lo = _mm256_add_epi16(acc_lo, _mm256_cvtepu8_epi16(_mm256_castsi256_si128(rlo)));
      acc_lo = _mm256_add_epi16(acc_lo, _mm256_cvtepu8_epi16(_mm256_extracti128_si256(rlo, 1)));
      acc_hi = _mm256_add_epi16(acc_hi, _mm256_cvtepu8_epi16(_mm256_castsi256_si128(rhi)));
      acc_hi = _mm256_add_epi16(acc_hi, _mm256_cvtepu8_epi16(_mm256_extracti128_si256(rhi, 1)));
    }
    if (s < m) {
      const __m128i c = load128(blk + 16 * s);
      const __m128i t = load128(lut + 16 * s);
      const __m128i lo = _mm_and_si128(c, mask128);
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(c, 4), mask128);
      acc_lo = _mm256_add_epi16(acc_lo, _mm256_cvtepu8_epi16(_mm_shuffle_epi8(t, lo)));
      acc_hi = _mm256_add_epi16(acc_hi, _mm256_cvtepu8_epi16(_mm_shuffle_epi8(t, hi)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * b), acc_lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * b + 16), acc_hi);
  }
}

// Running per-lane minimum with its index: strict <, so each lane keeps its earliest index.
inline void take_min(__m256 v, __m256i idx, __m256* best, __m256i* best_idx) {
  const __m256 lt = _mm256_cmp_ps(v, *best, _CMP_LT_OQ);
  *best = _mm256_blendv_ps(*best, v, lt);
  *best_idx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*best_idx), _mm256_castsi256_ps(idx), lt));
}

}  // namespace

void pq_nearest(const float* x, std::size_t n, std::size_t stride, std::size_t dsub, const float* ct,
                const float* cnorm, std::size_t ksub, std::uint32_t* labels) {
  const __m256i step8 = _mm256_set1_epi32(8);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (std::size_t i = 0; i < n; ++i) {
    const float* xi = x + i * stride;
    __m256 best = _mm256_set1_ps(__builtin_inff());
    __m256i best_idx = _mm256_setzero_si256();
    std::size_t k0 = 0;
    for (; k0 + 32 <= ksub; k0 += 32) {
      __m256 a0 = _mm256_loadu_ps(cnorm + k0), a1 = _mm256_loadu_ps(cnorm + k0 + 8);
      __m256 a2 = _mm256_loadu_ps(cnorm + k0 + 16), a3 = _mm256_loadu_ps(cnorm + k0 + 24);
      for (std::size_t j = 0; j < dsub; ++j) {
        const __m256 xb = _mm256_set1_ps(-2.f * xi[j]);
        const float* c = ct + j * ksub + k0;
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(xb, _mm256_loadu_ps(c)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(xb, _mm256_loadu_ps(c + 8)));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(xb, _mm256_loadu_ps(c + 16)));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(xb, _mm256_loadu_ps(c + 24)));
      }
      __m256i idx = _mm256_add_epi32(iota, _mm256_set1_epi32(static_cast<int>(k0)));
      take_min(a0, idx, &best, &best_idx);
      idx = _mm256_add_epi32(idx, step8);
      take_min(a1, idx, &best, &best_idx);
      idx = _mm256_add_epi32(idx, step8);
      take_min(a2, idx, &best, &best_idx);
      idx = _mm256_add_epi32(idx, step8);
      take_min(a3, idx, &best, &best_idx);
    }
    for (; k0 + 8 <= ksub; k0 += 8) {
      __m256 a0 = _mm256_loadu_ps(cnorm + k0);
      for (std::size_t j = 0; j < dsub; ++j) {
        const __m256 xb = _mm256_set1_ps(-2.f * xi[j]);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(xb, _mm256_loadu_ps(ct + j * ksub + k0)));
      }
      take_min(a0, _mm256_add_epi32(iota, _mm256_set1_epi32(static_cast<int>(k0))), &best, &best_idx);
    }
    alignas(32) float v[8];
    alignas(32) std::int32_t id[8];
    _mm256_store_ps(v, best);
    _mm256_store_si256(reinterpret_cast<__m256i*>(id), best_idx);
    int b = 0;
    for (int l = 1; l < 8; ++l) {
      if (v[l] < v[b] || (v[l] == v[b] && id[l] < id[b])) b = l;
    }
    labels[i] = static_cast<std::uint32_t>(id[b]);
  }
}

namespace {
const PqKernels kTable = {SimdLevel::AVX2, "avx2", fastscan4, pq_nearest};
}  // namespace

const PqKernels* pq_table() { return &kTable; }

}  // namespace avx2
}  // namespace vecdex
