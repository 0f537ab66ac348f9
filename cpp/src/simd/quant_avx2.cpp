// AVX2 + FMA + F16C kernels for quantised rows. Compiled with -mavx2 -mfma -mf16c; reached only
// through quant_dispatch.cpp after the CPU and OS have been checked. No standard-library
// templates here (see kernels_avx2.cpp); the helpers of quant_scalar_impl.h have internal linkage.
// Tails: float rows use masked loads of the floats plus a zero-padded copy of the remaining
// 8/16-bit elements on the stack; integer kernels finish with the scalar loop (exact either way).
#include <immintrin.h>

#include <cstring>

#include "quant_scalar_impl.h"
#include "avx2_common.h"
#include "vecdex/simd/quant_kernel_decls.h"

namespace vecdex {
namespace avx2 {
namespace {

inline std::int32_t hsum_i32(__m128i s) {
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}
inline std::int32_t hsum_i32(__m256i v) {
  return hsum_i32(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i load64(const void* p) { return _mm_loadl_epi64(static_cast<const __m128i*>(p)); }

// The first `rem` (< 8) 16-bit elements at p, zeros after them; reads only those rem elements.
inline __m128i load_u16_partial(const std::uint16_t* p, std::size_t rem) {
  alignas(16) std::uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(buf, p, rem * sizeof(std::uint16_t));
  return _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
}
// The first `nbytes` (<= 8) bytes at p in the low 64 bits, zeros after them.
inline __m128i load_u8_partial(const std::uint8_t* p, std::size_t nbytes) {
  alignas(16) std::uint8_t buf[16] = {0};
  std::memcpy(buf, p, nbytes);
  return _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
}

// ---------------------------------------------------------------- fp16 / bf16
inline __m256 f16x8_to_ps(__m128i h) { return _mm256_cvtph_ps(h); }
inline __m256 bf16x8_to_ps(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }

template <bool kBf16>
inline __m256 half8(__m128i h) {
  return kBf16 ? bf16x8_to_ps(h) : f16x8_to_ps(h);
}

template <bool kBf16>
float dot_half(const float* q, const std::uint16_t* x, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), half8<kBf16>(load128(x + i)), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), half8<kBf16>(load128(x + i + 8)), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), half8<kBf16>(load128(x + i + 16)), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), half8<kBf16>(load128(x + i + 24)), s3);
  }
  for (; i + 8 <= d; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), half8<kBf16>(load128(x + i)), s0);
  if (i < d) {
    const __m256 qv = _mm256_maskload_ps(q + i, tail_mask(d - i));
    s1 = _mm256_fmadd_ps(qv, half8<kBf16>(load_u16_partial(x + i, d - i)), s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

template <bool kBf16>
float l2sq_half(const float* q, const std::uint16_t* x, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), half8<kBf16>(load128(x + i)));
    const __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), half8<kBf16>(load128(x + i + 8)));
    const __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 16), half8<kBf16>(load128(x + i + 16)));
    const __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 24), half8<kBf16>(load128(x + i + 24)));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
    s2 = _mm256_fmadd_ps(t2, t2, s2);
    s3 = _mm256_fmadd_ps(t3, t3, s3);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(q + i), half8<kBf16>(load128(x + i)));
    s0 = _mm256_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    const __m256 qv = _mm256_maskload_ps(q + i, tail_mask(d - i));
    const __m256 t = _mm256_sub_ps(qv, half8<kBf16>(load_u16_partial(x + i, d - i)));
    s1 = _mm256_fmadd_ps(t, t, s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float dot_f16(const float* q, const std::uint16_t* x, std::size_t d) { return dot_half<false>(q, x, d); }
float l2sq_f16(const float* q, const std::uint16_t* x, std::size_t d) { return l2sq_half<false>(q, x, d); }
float dot_bf16(const float* q, const std::uint16_t* x, std::size_t d) { return dot_half<true>(q, x, d); }
float l2sq_bf16(const float* q, const std::uint16_t* x, std::size_t d) { return l2sq_half<true>(q, x, d); }

// ---------------------------------------------------------------- conversions
constexpr int kRne = _MM_FROUND_TO_NEAREST_INT;  // explicit: MXCSR's rounding mode is not used

void f32_to_f16(const float* in, std::uint16_t* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), kRne));
  if (i < n) {
    alignas(16) std::uint16_t buf[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(buf), _mm256_cvtps_ph(_mm256_maskload_ps(in + i, tail_mask(n - i)), kRne));
    std::memcpy(out + i, buf, (n - i) * sizeof(std::uint16_t));
  }
}

void f16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, f16x8_to_ps(load128(in + i)));
  if (i < n) _mm256_maskstore_ps(out + i, tail_mask(n - i), f16x8_to_ps(load_u16_partial(in + i, n - i)));
}

// Round-to-nearest-even of 8 floats (as bits) to bfloat16; NaNs made quiet. Integer lanes only, so
// subnormals are rounded like any other value.
inline __m128i bf16_round8(__m256i x) {
  const __m256i abs = _mm256_and_si256(x, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F800000));
  const __m256i hi = _mm256_srli_epi32(x, 16);
  const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
  const __m256i v = _mm256_blendv_epi8(r, quiet, nan);  // every lane is 0..0xFFFF: packus is exact
  return _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

void f32_to_bf16(const float* in, std::uint16_t* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), bf16_round8(load256(in + i)));
  if (i < n) {
    const __m256i x = _mm256_maskload_epi32(reinterpret_cast<const int*>(in + i), tail_mask(n - i));
    alignas(16) std::uint16_t buf[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(buf), bf16_round8(x));
    std::memcpy(out + i, buf, (n - i) * sizeof(std::uint16_t));
  }
}

void bf16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, bf16x8_to_ps(load128(in + i)));
  if (i < n) _mm256_maskstore_ps(out + i, tail_mask(n - i), bf16x8_to_ps(load_u16_partial(in + i, n - i)));
}

// ---------------------------------------------------------------- SQ8, float weights
inline __m256 u8x8_to_ps(__m128i c) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c)); }

float dot_u8_f32(const float* w, const std::uint8_t* code, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m256i c = load256(code + i);
    const __m128i c0 = _mm256_castsi256_si128(c), c1 = _mm256_extracti128_si256(c, 1);
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), u8x8_to_ps(c0), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), u8x8_to_ps(_mm_srli_si128(c0, 8)), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), u8x8_to_ps(c1), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), u8x8_to_ps(_mm_srli_si128(c1, 8)), s3);
  }
  for (; i + 8 <= d; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), u8x8_to_ps(load64(code + i)), s0);
  if (i < d) {
    const __m256 wv = _mm256_maskload_ps(w + i, tail_mask(d - i));
    s1 = _mm256_fmadd_ps(wv, u8x8_to_ps(load_u8_partial(code + i, d - i)), s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float l2sq_u8_f32(const float* b, const float* scale, const std::uint8_t* code, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  // t = b - scale * code (one fused negative multiply-add), then s += t * t.
  for (; i + 32 <= d; i += 32) {
    const __m256i c = load256(code + i);
    const __m128i c0 = _mm256_castsi256_si128(c), c1 = _mm256_extracti128_si256(c, 1);
    const __m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i), u8x8_to_ps(c0), _mm256_loadu_ps(b + i));
    const __m256 t1 =
        _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i + 8), u8x8_to_ps(_mm_srli_si128(c0, 8)), _mm256_loadu_ps(b + i + 8));
    const __m256 t2 = _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i + 16), u8x8_to_ps(c1), _mm256_loadu_ps(b + i + 16));
    const __m256 t3 = _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i + 24), u8x8_to_ps(_mm_srli_si128(c1, 8)),
                                       _mm256_loadu_ps(b + i + 24));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
    s2 = _mm256_fmadd_ps(t2, t2, s2);
    s3 = _mm256_fmadd_ps(t3, t3, s3);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i), u8x8_to_ps(load64(code + i)), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(t, t, s0);
  }
  if (i < d) {
    const __m256i m = tail_mask(d - i);
    const __m256 t = _mm256_fnmadd_ps(_mm256_maskload_ps(scale + i, m), u8x8_to_ps(load_u8_partial(code + i, d - i)),
                                      _mm256_maskload_ps(b + i, m));
    s1 = _mm256_fmadd_ps(t, t, s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// ---------------------------------------------------------------- SQ8 uniform, integers
// pmaddubsw (u8 x s8, adjacent pairs summed into int16 with saturation) is exact only while a
// pair sum fits int16. With the codes split into code & 0x7F (pairs in [-32512, 32258]) and
// code & 0x80 (0 or 128: pairs in [-32768, 32512]) both halves are exact; pmaddwd by 1 widens
// each to int32 before they are added.
std::int32_t dot_u8_i8(const std::uint8_t* code, const std::int8_t* q, std::size_t d) {
  const __m256i lo7 = _mm256_set1_epi8(0x7F), hi1 = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m256i c = load256(code + i), qv = load256(q + i);
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(c, lo7), qv), ones));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(c, hi1), qv), ones));
  }
  __m128i acc = _mm_add_epi32(_mm256_castsi256_si128(acc0), _mm256_extracti128_si256(acc0, 1));
  acc = _mm_add_epi32(acc, _mm_add_epi32(_mm256_castsi256_si128(acc1), _mm256_extracti128_si256(acc1, 1)));
  if (i + 16 <= d) {
    const __m128i c = load128(code + i), qv = load128(q + i), o = _mm_set1_epi16(1);
    acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_maddubs_epi16(_mm_and_si128(c, _mm_set1_epi8(0x7F)), qv), o));
    acc = _mm_add_epi32(
        acc, _mm_madd_epi16(_mm_maddubs_epi16(_mm_and_si128(c, _mm_set1_epi8(static_cast<char>(0x80))), qv), o));
    i += 16;
  }
  return hsum_i32(acc) + qref::dot_u8_i8_from(code, q, i, d);
}

// |c - q| as bytes (max - min), widened to int16 by interleaving with zero (the order of the
// terms does not matter for a sum), squared and pair-summed by pmaddwd: at most 2*255^2 per lane.
std::int32_t l2sq_u8_u8(const std::uint8_t* code, const std::uint8_t* q, std::size_t d) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m256i c = load256(code + i), qv = load256(q + i);
    const __m256i ad = _mm256_sub_epi8(_mm256_max_epu8(c, qv), _mm256_min_epu8(c, qv));
    const __m256i lo = _mm256_unpacklo_epi8(ad, zero), hi = _mm256_unpackhi_epi8(ad, zero);
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(lo, lo));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(hi, hi));
  }
  __m256i acc = _mm256_add_epi32(acc0, acc1);
  if (i + 16 <= d) {
    const __m256i c = _mm256_cvtepu8_epi16(load128(code + i)), qv = _mm256_cvtepu8_epi16(load128(q + i));
    const __m256i t = _mm256_sub_epi16(c, qv);
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(t, t));
    i += 16;
  }
  return hsum_i32(acc) + qref::l2sq_u8_u8_from(code, q, i, d);
}

// ---------------------------------------------------------------- SQ4
// 16 packed bytes -> 32 codes in dimension order: each byte b widened to the 16-bit lane
// (b & 0x0F) | (b >> 4) << 8, i.e. low nibble in the even byte, high nibble in the odd byte.
inline __m256i u4x32(const std::uint8_t* p) {
  const __m256i t = _mm256_cvtepu8_epi16(load128(p));
  return _mm256_or_si256(_mm256_and_si256(t, _mm256_set1_epi16(0x000F)),
                         _mm256_slli_epi16(_mm256_and_si256(t, _mm256_set1_epi16(0x00F0)), 4));
}
// 8 packed bytes (in the low half of h) -> 16 codes.
inline __m128i u4x16(__m128i h) {
  const __m128i t = _mm_cvtepu8_epi16(h);
  return _mm_or_si128(_mm_and_si128(t, _mm_set1_epi16(0x000F)), _mm_slli_epi16(_mm_and_si128(t, _mm_set1_epi16(0x00F0)), 4));
}

// Codes are 0..15, so a pmaddubsw pair sum is at most 2*15*128 = 3840: no saturation.
std::int32_t dot_u4_i8(const std::uint8_t* packed, const std::int8_t* q, std::size_t d) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 64 <= d; i += 64) {
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(u4x32(packed + i / 2), load256(q + i)), ones));
    acc1 = _mm256_add_epi32(
        acc1, _mm256_madd_epi16(_mm256_maddubs_epi16(u4x32(packed + i / 2 + 16), load256(q + i + 32)), ones));
  }
  if (i + 32 <= d) {
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(u4x32(packed + i / 2), load256(q + i)), ones));
    i += 32;
  }
  return hsum_i32(_mm256_add_epi32(acc0, acc1)) + qref::dot_u4_i8_from(packed, q, i, d);
}

float dot_u4_f32(const float* w, const std::uint8_t* packed, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m128i c = u4x16(load64(packed + i / 2));
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), u8x8_to_ps(c), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), u8x8_to_ps(_mm_srli_si128(c, 8)), s1);
  }
  if (i < d) {
    // Masked weights are 0, so the ignored high nibble of an odd row's last byte adds 0 * code.
    const std::size_t rem = d - i;
    const __m128i c = u4x16(load_u8_partial(packed + i / 2, (rem + 1) / 2));
    s0 = _mm256_fmadd_ps(_mm256_maskload_ps(w + i, tail_mask(rem < 8 ? rem : 8)), u8x8_to_ps(c), s0);
    if (rem > 8)
      s1 = _mm256_fmadd_ps(_mm256_maskload_ps(w + i + 8, tail_mask(rem - 8)), u8x8_to_ps(_mm_srli_si128(c, 8)), s1);
  }
  return hsum(_mm256_add_ps(s0, s1));
}

float l2sq_u4_f32(const float* b, const float* scale, const std::uint8_t* packed, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m128i c = u4x16(load64(packed + i / 2));
    const __m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i), u8x8_to_ps(c), _mm256_loadu_ps(b + i));
    const __m256 t1 =
        _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i + 8), u8x8_to_ps(_mm_srli_si128(c, 8)), _mm256_loadu_ps(b + i + 8));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
  }
  if (i < d) {
    // Masked b and scale are 0, so masked lanes give t = 0 whatever the code.
    const std::size_t rem = d - i;
    const __m128i c = u4x16(load_u8_partial(packed + i / 2, (rem + 1) / 2));
    const __m256i m0 = tail_mask(rem < 8 ? rem : 8);
    const __m256 t0 = _mm256_fnmadd_ps(_mm256_maskload_ps(scale + i, m0), u8x8_to_ps(c), _mm256_maskload_ps(b + i, m0));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    if (rem > 8) {
      const __m256i m1 = tail_mask(rem - 8);
      const __m256 t1 = _mm256_fnmadd_ps(_mm256_maskload_ps(scale + i + 8, m1), u8x8_to_ps(_mm_srli_si128(c, 8)),
                                         _mm256_maskload_ps(b + i + 8, m1));
      s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
  }
  return hsum(_mm256_add_ps(s0, s1));
}

const QuantKernels kTable = {
    SimdLevel::AVX2, "avx2",
    dot_f16,         l2sq_f16,    dot_bf16,  l2sq_bf16,  f32_to_f16, f16_to_f32, f32_to_bf16, bf16_to_f32,
    dot_u8_f32,      l2sq_u8_f32, dot_u8_i8, l2sq_u8_u8, dot_u4_i8,  dot_u4_f32, l2sq_u4_f32,
};

}  // namespace

const QuantKernels* quant_table() { return &kTable; }

}  // namespace avx2
}  // namespace vecdex
