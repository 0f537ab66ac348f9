// AVX-512 (F + BW) RaBitQ kernels: the AVX2 scheme on 512-bit registers (vpshufb and vpsadbw need
// AVX-512BW), 256-bit blocks for rows under 8 words and for tails. VPOPCNTQ (AVX512_VPOPCNTDQ, a separate CPU feature) is not used. No standard-library
// templates here.
#include <immintrin.h>

#include "vecdex/simd/rabitq_kernels.h"

namespace vecdex {
namespace avx512 {
namespace {

inline __m512i popcnt8(__m512i v) {
  // Bytes 0,1,1,2,1,2,2,3,1,2,2,3,2,3,3,4 in every 128-bit lane (no broadcast intrinsic: GCC 12
  // warns about its undefined pass-through operand).
  const __m512i lut = _mm512_set_epi64(0x0403030203020201ll, 0x0302020102010100ll, 0x0403030203020201ll,
                                       0x0302020102010100ll, 0x0403030203020201ll, 0x0302020102010100ll,
                                       0x0403030203020201ll, 0x0302020102010100ll);
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, low));
  const __m512i hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
  return _mm512_add_epi8(lo, hi);
}

// Sum of the eight 64-bit lanes, in registers. GCC 12 warns (-Wuninitialized) about the undefined
// pass-through operand inside _mm512_extracti64x4_epi64; it is never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
inline std::uint64_t hsum64(__m512i v) {
  const __m256i h = _mm256_add_epi64(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(s)) + static_cast<std::uint64_t>(_mm_extract_epi64(s, 1));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

inline __m512i ld(const std::uint64_t* p) { return _mm512_loadu_si512(reinterpret_cast<const void*>(p)); }

// 512-bit blocks, planes weighted per byte as in the AVX2 table (at most 120 per byte).
inline void accumulate(__m512i c, __m512i p0, __m512i p1, __m512i p2, __m512i p3, __m512i& acc_ip, __m512i& acc_pc) {
  __m512i t = popcnt8(_mm512_and_si512(c, p3));
  t = _mm512_add_epi8(_mm512_add_epi8(t, t), popcnt8(_mm512_and_si512(c, p2)));
  t = _mm512_add_epi8(_mm512_add_epi8(t, t), popcnt8(_mm512_and_si512(c, p1)));
  t = _mm512_add_epi8(_mm512_add_epi8(t, t), popcnt8(_mm512_and_si512(c, p0)));
  acc_ip = _mm512_add_epi64(acc_ip, _mm512_sad_epu8(t, _mm512_setzero_si512()));
  acc_pc = _mm512_add_epi64(acc_pc, _mm512_sad_epu8(popcnt8(c), _mm512_setzero_si512()));
}

// The same on 256 bits (rows of fewer than 8 words, and tails).
inline __m256i popcnt8_256(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                       2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0F);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v, low)),
                         _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
}
inline void accumulate256(__m256i c, __m256i p0, __m256i p1, __m256i p2, __m256i p3, __m256i& acc_ip,
                          __m256i& acc_pc) {
  __m256i t = popcnt8_256(_mm256_and_si256(c, p3));
  t = _mm256_add_epi8(_mm256_add_epi8(t, t), popcnt8_256(_mm256_and_si256(c, p2)));
  t = _mm256_add_epi8(_mm256_add_epi8(t, t), popcnt8_256(_mm256_and_si256(c, p1)));
  t = _mm256_add_epi8(_mm256_add_epi8(t, t), popcnt8_256(_mm256_and_si256(c, p0)));
  acc_ip = _mm256_add_epi64(acc_ip, _mm256_sad_epu8(t, _mm256_setzero_si256()));
  acc_pc = _mm256_add_epi64(acc_pc, _mm256_sad_epu8(popcnt8_256(c), _mm256_setzero_si256()));
}
inline std::uint64_t hsum64_256(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(s)) + static_cast<std::uint64_t>(_mm_extract_epi64(s, 1));
}
inline __m256i ld256(const std::uint64_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

void ip_bin_u4(const std::uint64_t* code, const std::uint64_t* planes, std::size_t words, std::uint32_t* ip,
               std::uint32_t* pc) {
  const std::uint64_t *p0 = planes, *p1 = planes + words, *p2 = planes + 2 * words, *p3 = planes + 3 * words;
  std::uint64_t s_ip = 0, s_pc = 0;
  std::size_t w = 0;
  if (words >= 8) {
    __m512i acc_ip = _mm512_setzero_si512(), acc_pc = acc_ip;
    for (; w + 8 <= words; w += 8)
      accumulate(ld(code + w), ld(p0 + w), ld(p1 + w), ld(p2 + w), ld(p3 + w), acc_ip, acc_pc);
    s_ip = hsum64(acc_ip);
    s_pc = hsum64(acc_pc);
  }
  if (w < words) {
    __m256i acc_ip = _mm256_setzero_si256(), acc_pc = acc_ip;
    for (; w + 4 <= words; w += 4)
      accumulate256(ld256(code + w), ld256(p0 + w), ld256(p1 + w), ld256(p2 + w), ld256(p3 + w), acc_ip, acc_pc);
    for (; w < words; w += 2) {  // 1..3 words left: 128- and 64-bit loads, zero-extended
      const bool two = w + 2 <= words;
      auto part = [two](const std::uint64_t* p) {
        const __m128i x = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                              : _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
        return _mm256_inserti128_si256(_mm256_setzero_si256(), x, 0);
      };
      accumulate256(part(code + w), part(p0 + w), part(p1 + w), part(p2 + w), part(p3 + w), acc_ip, acc_pc);
    }
    s_ip += hsum64_256(acc_ip);
    s_pc += hsum64_256(acc_pc);
  }
  *ip = static_cast<std::uint32_t>(s_ip);
  *pc = static_cast<std::uint32_t>(s_pc);
}

void fwht(float* x, std::size_t n) {
  std::size_t h = 1;
  if (n >= 16) {
    // Strides 1..8 inside each 16-float register: lane j takes its partner j ^ h by a permute,
    // then a + b where bit h of j is clear and a - b (partner minus own) where it is set: the
    // same single add or subtract of the same two values as the scalar butterfly.
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (std::size_t i = 0; i < n; i += 16) {
      __m512 v = _mm512_loadu_ps(x + i);
      for (int step = 1; step < 16; step <<= 1) {
        const __m512 partner = _mm512_permutexvar_ps(_mm512_xor_si512(lane, _mm512_set1_epi32(step)), v);
        const __mmask16 high = _mm512_test_epi32_mask(lane, _mm512_set1_epi32(step));
        v = _mm512_mask_sub_ps(_mm512_add_ps(v, partner), high, partner, v);
      }
      _mm512_storeu_ps(x + i, v);
    }
    h = 16;
  }
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
