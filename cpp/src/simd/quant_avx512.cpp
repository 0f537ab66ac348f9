// AVX-512 (F/BW/DQ/VL) kernels for quantised rows. Compiled with AVX-512 flags; reached only through
// quant_dispatch.cpp. Tails use masked loads and stores, so no row is read, and no output written,
// past its end. No standard-library templates here (see kernels_avx2.cpp).
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own _mm512_undefined_*() values
// (GCC PR 105593, fixed in GCC 13); silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "quant_avx512_common.h"
#include "vecdex/simd/quant_kernel_decls.h"

namespace vecdex {
namespace avx512 {
namespace {

using namespace q512;

// ---------------------------------------------------------------- fp16 / bf16
inline __m512 f16x16_to_ps(__m256i h) { return _mm512_cvtph_ps(h); }
inline __m512 bf16x16_to_ps(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

template <bool kBf16>
inline __m512 half16(__m256i h) {
  return kBf16 ? bf16x16_to_ps(h) : f16x16_to_ps(h);
}

template <bool kBf16>
float dot_half(const float* q, const std::uint16_t* x, std::size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), half16<kBf16>(load256(x + i)), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), half16<kBf16>(load256(x + i + 16)), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 32), half16<kBf16>(load256(x + i + 32)), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 48), half16<kBf16>(load256(x + i + 48)), s3);
  }
  for (; i + 16 <= d; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), half16<kBf16>(load256(x + i)), s0);
  if (i < d) {
    const __mmask16 m = mask16(d - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), half16<kBf16>(_mm256_maskz_loadu_epi16(m, x + i)), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

template <bool kBf16>
float l2sq_half(const float* q, const std::uint16_t* x, std::size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    const __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), half16<kBf16>(load256(x + i)));
    const __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), half16<kBf16>(load256(x + i + 16)));
    const __m512 t2 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 32), half16<kBf16>(load256(x + i + 32)));
    const __m512 t3 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 48), half16<kBf16>(load256(x + i + 48)));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
    s2 = _mm512_fmadd_ps(t2, t2, s2);
    s3 = _mm512_fmadd_ps(t3, t3, s3);
  }
  for (; i + 16 <= d; i += 16) {
    const __m512 t = _mm512_sub_ps(_mm512_loadu_ps(q + i), half16<kBf16>(load256(x + i)));
    s0 = _mm512_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    const __mmask16 m = mask16(d - i);
    const __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), half16<kBf16>(_mm256_maskz_loadu_epi16(m, x + i)));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

float dot_f16(const float* q, const std::uint16_t* x, std::size_t d) { return dot_half<false>(q, x, d); }
float l2sq_f16(const float* q, const std::uint16_t* x, std::size_t d) { return l2sq_half<false>(q, x, d); }
float dot_bf16(const float* q, const std::uint16_t* x, std::size_t d) { return dot_half<true>(q, x, d); }
float l2sq_bf16(const float* q, const std::uint16_t* x, std::size_t d) { return l2sq_half<true>(q, x, d); }

// ---------------------------------------------------------------- conversions
constexpr int kRne = _MM_FROUND_TO_NEAREST_INT;  // explicit: MXCSR's rounding mode is not used

void f32_to_f16(const float* in, std::uint16_t* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtps_ph(_mm512_loadu_ps(in + i), kRne));
  if (i < n) {
    const __mmask16 m = mask16(n - i);
    _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, in + i), kRne));
  }
}

void f16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, f16x16_to_ps(load256(in + i)));
  if (i < n) {
    const __mmask16 m = mask16(n - i);
    _mm512_mask_storeu_ps(out + i, m, f16x16_to_ps(_mm256_maskz_loadu_epi16(m, in + i)));
  }
}

// Round-to-nearest-even of 16 floats (as bits) to bfloat16 in the low half of each lane; NaNs made
// quiet. Integer lanes only, so subnormals round like any other value (vcvtneps2bf16 would flush them).
inline __m512i bf16_round16(__m512i x) {
  const __m512i abs = _mm512_and_si512(x, _mm512_set1_epi32(0x7FFFFFFF));
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(abs, _mm512_set1_epi32(0x7F800000));
  const __m512i hi = _mm512_srli_epi32(x, 16);
  const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7FFF)), lsb), 16);
  return _mm512_mask_blend_epi32(nan, r, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}

void f32_to_bf16(const float* in, std::uint16_t* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(bf16_round16(load512(in + i))));
  if (i < n) {
    const __mmask16 m = mask16(n - i);
    _mm512_mask_cvtepi32_storeu_epi16(out + i, m, bf16_round16(_mm512_maskz_loadu_epi32(m, in + i)));
  }
}

void bf16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, bf16x16_to_ps(load256(in + i)));
  if (i < n) {
    const __mmask16 m = mask16(n - i);
    _mm512_mask_storeu_ps(out + i, m, bf16x16_to_ps(_mm256_maskz_loadu_epi16(m, in + i)));
  }
}

// ---------------------------------------------------------------- SQ8, float weights
inline __m512 u8x16_to_ps(__m128i c) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(c)); }

float dot_u8_f32(const float* w, const std::uint8_t* code, std::size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), u8x16_to_ps(load128(code + i)), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), u8x16_to_ps(load128(code + i + 16)), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), u8x16_to_ps(load128(code + i + 32)), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), u8x16_to_ps(load128(code + i + 48)), s3);
  }
  for (; i + 16 <= d; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), u8x16_to_ps(load128(code + i)), s0);
  if (i < d) {
    const __mmask16 m = mask16(d - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), u8x16_to_ps(_mm_maskz_loadu_epi8(m, code + i)), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// t = b - scale * code (one fused negative multiply-add), then s += t * t.
inline __m512 l2_step(__m512 s, const float* b, const float* scale, __m128i c) {
  const __m512 t = _mm512_fnmadd_ps(_mm512_loadu_ps(scale), u8x16_to_ps(c), _mm512_loadu_ps(b));
  return _mm512_fmadd_ps(t, t, s);
}

float l2sq_u8_f32(const float* b, const float* scale, const std::uint8_t* code, std::size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    s0 = l2_step(s0, b + i, scale + i, load128(code + i));
    s1 = l2_step(s1, b + i + 16, scale + i + 16, load128(code + i + 16));
    s2 = l2_step(s2, b + i + 32, scale + i + 32, load128(code + i + 32));
    s3 = l2_step(s3, b + i + 48, scale + i + 48, load128(code + i + 48));
  }
  for (; i + 16 <= d; i += 16) s0 = l2_step(s0, b + i, scale + i, load128(code + i));
  if (i < d) {
    const __mmask16 m = mask16(d - i);
    const __m512 t = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, scale + i), u8x16_to_ps(_mm_maskz_loadu_epi8(m, code + i)),
                                      _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(t, t, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// ---------------------------------------------------------------- SQ8 uniform, integers
// Without VNNI: pmaddubsw with the codes split as code & 0x7F and code & 0x80 so that neither
// half's pair sums can saturate int16 (see quant_kernels.h), each widened by pmaddwd.
inline __m512i dot_u8_i8_step(__m512i acc, __m512i c, __m512i qv) {
  const __m512i ones = _mm512_set1_epi16(1);
  const __m512i lo = _mm512_maddubs_epi16(_mm512_and_si512(c, _mm512_set1_epi8(0x7F)), qv);
  const __m512i hi = _mm512_maddubs_epi16(_mm512_and_si512(c, _mm512_set1_epi8(static_cast<char>(0x80))), qv);
  return _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(lo, ones), _mm512_madd_epi16(hi, ones)));
}

std::int32_t dot_u8_i8(const std::uint8_t* code, const std::int8_t* q, std::size_t d) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 128 <= d; i += 128) {
    acc0 = dot_u8_i8_step(acc0, load512(code + i), load512(q + i));
    acc1 = dot_u8_i8_step(acc1, load512(code + i + 64), load512(q + i + 64));
  }
  for (; i + 64 <= d; i += 64) acc0 = dot_u8_i8_step(acc0, load512(code + i), load512(q + i));
  if (i < d) {
    const __mmask64 m = mask64(d - i);
    acc1 = dot_u8_i8_step(acc1, _mm512_maskz_loadu_epi8(m, code + i), _mm512_maskz_loadu_epi8(m, q + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

// |c - q| as bytes, widened by interleaving with zero, squared and pair-summed by pmaddwd.
inline __m512i l2sq_u8_step(__m512i acc, __m512i c, __m512i qv) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i ad = _mm512_sub_epi8(_mm512_max_epu8(c, qv), _mm512_min_epu8(c, qv));
  const __m512i lo = _mm512_unpacklo_epi8(ad, zero), hi = _mm512_unpackhi_epi8(ad, zero);
  return _mm512_add_epi32(acc, _mm512_add_epi32(_mm512_madd_epi16(lo, lo), _mm512_madd_epi16(hi, hi)));
}

std::int32_t l2sq_u8_u8(const std::uint8_t* code, const std::uint8_t* q, std::size_t d) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 128 <= d; i += 128) {
    acc0 = l2sq_u8_step(acc0, load512(code + i), load512(q + i));
    acc1 = l2sq_u8_step(acc1, load512(code + i + 64), load512(q + i + 64));
  }
  for (; i + 64 <= d; i += 64) acc0 = l2sq_u8_step(acc0, load512(code + i), load512(q + i));
  if (i < d) {
    const __mmask64 m = mask64(d - i);
    acc1 = l2sq_u8_step(acc1, _mm512_maskz_loadu_epi8(m, code + i), _mm512_maskz_loadu_epi8(m, q + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

// ---------------------------------------------------------------- SQ4
// Codes are 0..15: pmaddubsw pair sums are at most 3840, no saturation.
inline __m512i dot_u4_step(__m512i acc, __m512i c, __m512i qv) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(c, qv), _mm512_set1_epi16(1)));
}

std::int32_t dot_u4_i8(const std::uint8_t* packed, const std::int8_t* q, std::size_t d) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 128 <= d; i += 128) {
    acc0 = dot_u4_step(acc0, u4x64(load256(packed + i / 2)), load512(q + i));
    acc1 = dot_u4_step(acc1, u4x64(load256(packed + i / 2 + 32)), load512(q + i + 64));
  }
  for (; i + 64 <= d; i += 64) acc0 = dot_u4_step(acc0, u4x64(load256(packed + i / 2)), load512(q + i));
  if (i < d) {
    // The masked query bytes are 0, so an odd row's ignored last high nibble adds code * 0.
    const std::size_t rem = d - i;
    const __m512i c = u4x64(_mm256_maskz_loadu_epi8(mask32((rem + 1) / 2), packed + i / 2));
    acc1 = dot_u4_step(acc1, c, _mm512_maskz_loadu_epi8(mask64(rem), q + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

// 16 packed bytes -> 32 codes (as bytes of h) -> two vectors of 16 floats.
inline __m512 u4_lo16_ps(__m256i c) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(c))); }
inline __m512 u4_hi16_ps(__m256i c) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(c, 1))); }

float dot_u4_f32(const float* w, const std::uint8_t* packed, std::size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m256i c = u4x32(load128(packed + i / 2));
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), u4_lo16_ps(c), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), u4_hi16_ps(c), s1);
  }
  if (i < d) {
    // Masked weights are 0, so an odd row's ignored last high nibble adds 0 * code.
    const std::size_t rem = d - i;
    const __m256i c = u4x32(_mm_maskz_loadu_epi8(mask16((rem + 1) / 2), packed + i / 2));
    s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask16(rem < 16 ? rem : 16), w + i), u4_lo16_ps(c), s0);
    if (rem > 16) s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask16(rem - 16), w + i + 16), u4_hi16_ps(c), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

float l2sq_u4_f32(const float* b, const float* scale, const std::uint8_t* packed, std::size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m256i c = u4x32(load128(packed + i / 2));
    const __m512 t0 = _mm512_fnmadd_ps(_mm512_loadu_ps(scale + i), u4_lo16_ps(c), _mm512_loadu_ps(b + i));
    const __m512 t1 = _mm512_fnmadd_ps(_mm512_loadu_ps(scale + i + 16), u4_hi16_ps(c), _mm512_loadu_ps(b + i + 16));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  if (i < d) {
    // Masked b and scale are 0, so masked lanes give t = 0 whatever the code.
    const std::size_t rem = d - i;
    const __m256i c = u4x32(_mm_maskz_loadu_epi8(mask16((rem + 1) / 2), packed + i / 2));
    const __mmask16 m0 = mask16(rem < 16 ? rem : 16);
    const __m512 t0 =
        _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m0, scale + i), u4_lo16_ps(c), _mm512_maskz_loadu_ps(m0, b + i));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    if (rem > 16) {
      const __mmask16 m1 = mask16(rem - 16);
      const __m512 t1 = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m1, scale + i + 16), u4_hi16_ps(c),
                                         _mm512_maskz_loadu_ps(m1, b + i + 16));
      s1 = _mm512_fmadd_ps(t1, t1, s1);
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

const QuantKernels kTable = {
    SimdLevel::AVX512, "avx512",
    dot_f16,           l2sq_f16,    dot_bf16,  l2sq_bf16,  f32_to_f16, f16_to_f32, f32_to_bf16, bf16_to_f32,
    dot_u8_f32,        l2sq_u8_f32, dot_u8_i8, l2sq_u8_u8, dot_u4_i8,  dot_u4_f32, l2sq_u4_f32,
};

}  // namespace

const QuantKernels* quant_table() { return &kTable; }

}  // namespace avx512
}  // namespace vecdex
