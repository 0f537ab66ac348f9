// AVX-512 (F + BW) PQ kernels (simd/pq_kernels.h). Compiled with the AVX-512 flags and
// -ffp-contract=off; reached only through pq_dispatch.cpp. No standard-library templates.
//
// fastscan4: one 64-byte load holds four sub-quantizers' codes for 32 rows, and vpshufb (per
// 128-bit lane) looks them up in four 16-entry tables at once. Odd tails use 256/128-bit forms.
// The nearest-centroid kernel is the AVX2 one.
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own _mm512_undefined_*() values
// (GCC PR 105593, fixed in GCC 13); silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "vecdex/simd/pq_kernels.h"

namespace vecdex {
namespace avx512 {
namespace {

void fastscan4(const std::uint8_t* codes, std::size_t nblocks, std::size_t m, const std::uint8_t* lut,
               std::uint16_t* out) {
  const std::size_t block_bytes = 16 * m;
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m256i mask256 = _mm256_set1_epi8(0x0F);
  const __m128i mask128 = _mm_set1_epi8(0x0F);
  for (std::size_t b = 0; b < nblocks; ++b) {
    const std::uint8_t* blk = codes + b * block_bytes;
    // 32 uint16 lanes each: lanes 0..15 and 16..31 both hold partial sums of rows 0..15 (lo)
    // or 16..31 (hi), from different sub-quantizers; folded at the end.
    __m512i acc_lo = _mm512_setzero_si512();
    __m512i acc_hi = _mm512_setzero_si512();
    std::size_t s = 0;
    for (; s + 4 <= m; s += 4) {
      const __m512i c = _mm512_loadu_si512(blk + 16 * s);
      const __m512i t = _mm512_loadu_si512(lut + 16 * s);
      const __m512i lo = _mm512_and_si512(c, mask);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), mask);
      const __m512i rlo = _mm512_shuffle_epi8(t, lo);
      const __m512i rhi = _mm512_shuffle_epi8(t, hi);
      acc_lo = _mm512_add_epi16(acc_lo, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(rlo)));
      acc_lo = _mm512_add_epi16(acc_lo, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(rlo, 1)));
      acc_hi = _mm512_add_epi16(acc_hi, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(rhi)));
      acc_hi = _mm512_add_epi16(acc_hi, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(rhi, 1)));
    }
    __m256i lo16 = _mm256_add_epi16(_mm512_castsi512_si256(acc_lo), _mm512_extracti64x4_epi64(acc_lo, 1));
    __m256i hi16 = _mm256_add_epi16(_mm512_castsi512_si256(acc_hi), _mm512_extracti64x4_epi64(acc_hi, 1));
    if (s + 2 <= m) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 * s));
      const __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + 16 * s));
      const __m256i rlo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, mask256));
      const __m256i rhi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask256));
      lo16 = _mm256_add_epi16(lo16, _mm256_cvtepu8_epi16(_mm256_castsi256_si128(rlo)));
      lo16 = _mm256_add_epi16(lo16, _mm256_cvtepu8_epi16(_mm256_extracti128_si256(rlo, 1)));
      hi16 = _mm256_add_epi16(hi16, _mm256_cvtepu8_epi16(_mm256_castsi256_si128(rhi)));
      hi16 = _mm256_add_epi16(hi16, _mm256_cvtepu8_epi16(_mm256_extracti128_si256(rhi, 1)));
      s += 2;
    }
    if (s < m) {
      const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * s));
      const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 16 * s));
      lo16 = _mm256_add_epi16(lo16, _mm256_cvtepu8_epi16(_mm_shuffle_epi8(t, _mm_and_si128(c, mask128))));
      hi16 = _mm256_add_epi16(
          hi16, _mm256_cvtepu8_epi16(_mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(c, 4), mask128))));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * b), lo16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * b + 16), hi16);
  }
}

const PqKernels kTable = {SimdLevel::AVX512, "avx512", fastscan4, avx2::pq_nearest};

}  // namespace

const PqKernels* pq_table() { return &kTable; }

}  // namespace avx512
}  // namespace vecdex
