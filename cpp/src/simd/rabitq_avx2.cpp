// AVX2 RaBitQ kernels (compiled with -mavx2 -mfma -mpopcnt; reached only through
// rabitq_kernels() after the CPU has been checked). Popcounts by nibble lookup (vpshufb) summed
// with vpsadbw; the Walsh-Hadamard butterflies 8 lanes at a time. No standard-library templates.
#include <immintrin.h>

#include "vecdex/simd/rabitq_kernels.h"

namespace vecdex {
namespace avx2 {
namespace {

inline __m256i popcnt8(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                       2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
  const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  return _mm256_add_epi8(lo, hi);
}
// Popcount of each 64-bit lane (vpsadbw against zero).
inline __m256i popcnt64(__m256i v) { return _mm256_sad_epu8(popcnt8(v), _mm256_setzero_si256()); }

inline std::uint64_t hsum64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(s)) + static_cast<std::uint64_t>(_mm_extract_epi64(s, 1));
}

void ip_bin_u4(const std::uint64_t* code, const std::uint64_t* planes, std::size_t words, std::uint32_t* ip,
               std::uint32_t* pc) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, ap = a0;
  std::size_t w = 0;
  for (; w + 4 <= words; w += 4) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(code + w));
    ap = _mm256_add_epi64(ap, popcnt64(c));
    a0 = _mm256_add_epi64(a0, popcnt64(_mm256_and_si256(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(planes + w)))));
    a1 = _mm256_add_epi64(a1, popcnt64(_mm256_and_si256(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(planes + words + w)))));
    a2 = _mm256_add_epi64(a2, popcnt64(_mm256_and_si256(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(planes + 2 * words + w)))));
    a3 = _mm256_add_epi64(a3, popcnt64(_mm256_and_si256(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(planes + 3 * words + w)))));
  }
  std::uint64_t s0 = hsum64(a0), s1 = hsum64(a1), s2 = hsum64(a2), s3 = hsum64(a3), p = hsum64(ap);
  for (; w < words; ++w) {
    const std::uint64_t c = code[w];
    p += _mm_popcnt_u64(c);
    s0 += _mm_popcnt_u64(c & planes[w]);
    s1 += _mm_popcnt_u64(c & planes[words + w]);
    s2 += _mm_popcnt_u64(c & planes[2 * words + w]);
    s3 += _mm_popcnt_u64(c & planes[3 * words + w]);
  }
  *ip = static_cast<std::uint32_t>(s0 + 2 * s1 + 4 * s2 + 8 * s3);
  *pc = static_cast<std::uint32_t>(p);
}

void fwht(float* x, std::size_t n) {
  std::size_t h = 1;
  for (; h < n && h < 8; h <<= 1) {
    for (std::size_t i = 0; i < n; i += 2 * h) {
      for (std::size_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  for (; h < n; h <<= 1) {
    for (std::size_t i = 0; i < n; i += 2 * h) {
      for (std::size_t j = i; j < i + h; j += 8) {
        const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
        _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
        _mm256_storeu_ps(x + j + h, _mm256_sub_ps(a, b));
      }
    }
  }
}

const RaBitQKernels kTable = {SimdLevel::AVX2, "avx2", ip_bin_u4, fwht};

}  // namespace
const RaBitQKernels* rabitq_table() { return &kTable; }
}  // namespace avx2
}  // namespace vecdex
