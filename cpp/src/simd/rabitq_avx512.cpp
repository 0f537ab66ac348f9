// AVX-512 (F + BW) RaBitQ kernels: the AVX2 scheme on 512-bit registers (vpshufb and vpsadbw need
// AVX-512BW). VPOPCNTQ (AVX512_VPOPCNTDQ, a separate CPU feature) is not used. No standard-library
// templates here.
#include <immintrin.h>

#include "vecdex/simd/rabitq_kernels.h"

namespace vecdex {
namespace avx512 {
namespace {

inline __m512i popcnt64(__m512i v) {
  const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, low));
  const __m512i hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
  return _mm512_sad_epu8(_mm512_add_epi8(lo, hi), _mm512_setzero_si512());
}

inline __m512i ld(const std::uint64_t* p) { return _mm512_loadu_si512(reinterpret_cast<const void*>(p)); }

void ip_bin_u4(const std::uint64_t* code, const std::uint64_t* planes, std::size_t words, std::uint32_t* ip,
               std::uint32_t* pc) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, ap = a0;
  std::size_t w = 0;
  for (; w + 8 <= words; w += 8) {
    const __m512i c = ld(code + w);
    ap = _mm512_add_epi64(ap, popcnt64(c));
    a0 = _mm512_add_epi64(a0, popcnt64(_mm512_and_si512(c, ld(planes + w))));
    a1 = _mm512_add_epi64(a1, popcnt64(_mm512_and_si512(c, ld(planes + words + w))));
    a2 = _mm512_add_epi64(a2, popcnt64(_mm512_and_si512(c, ld(planes + 2 * words + w))));
    a3 = _mm512_add_epi64(a3, popcnt64(_mm512_and_si512(c, ld(planes + 3 * words + w))));
  }
  if (w < words) {  // 1..7 words left: masked loads, zeros beyond
    const __mmask8 m = static_cast<__mmask8>((1u << (words - w)) - 1u);
    const __m512i c = _mm512_maskz_loadu_epi64(m, code + w);
    ap = _mm512_add_epi64(ap, popcnt64(c));
    a0 = _mm512_add_epi64(a0, popcnt64(_mm512_and_si512(c, _mm512_maskz_loadu_epi64(m, planes + w))));
    a1 = _mm512_add_epi64(a1, popcnt64(_mm512_and_si512(c, _mm512_maskz_loadu_epi64(m, planes + words + w))));
    a2 = _mm512_add_epi64(a2, popcnt64(_mm512_and_si512(c, _mm512_maskz_loadu_epi64(m, planes + 2 * words + w))));
    a3 = _mm512_add_epi64(a3, popcnt64(_mm512_and_si512(c, _mm512_maskz_loadu_epi64(m, planes + 3 * words + w))));
  }
  const std::uint64_t s0 = _mm512_reduce_add_epi64(a0), s1 = _mm512_reduce_add_epi64(a1),
                      s2 = _mm512_reduce_add_epi64(a2), s3 = _mm512_reduce_add_epi64(a3);
  *ip = static_cast<std::uint32_t>(s0 + 2 * s1 + 4 * s2 + 8 * s3);
  *pc = static_cast<std::uint32_t>(_mm512_reduce_add_epi64(ap));
}

void fwht(float* x, std::size_t n) {
  std::size_t h = 1;
  for (; h < n && h < 16; h <<= 1) {
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
      for (std::size_t j = i; j < i + h; j += 16) {
        const __m512 a = _mm512_loadu_ps(x + j), b = _mm512_loadu_ps(x + j + h);
        _mm512_storeu_ps(x + j, _mm512_add_ps(a, b));
        _mm512_storeu_ps(x + j + h, _mm512_sub_ps(a, b));
      }
    }
  }
}

const RaBitQKernels kTable = {SimdLevel::AVX512, "avx512", ip_bin_u4, fwht};

}  // namespace
const RaBitQKernels* rabitq_table() { return &kTable; }
}  // namespace avx512
}  // namespace vecdex
