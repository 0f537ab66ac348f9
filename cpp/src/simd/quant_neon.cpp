// NEON kernels for quantised rows (aarch64, where NEON and the f16<->f32 conversions FCVTL/FCVTN
// are part of the baseline ISA). Tails run the scalar reference loops of quant_scalar_impl.h.
// The f16 conversions use the FPCR's rounding mode, round-to-nearest-even unless a program changes
// it, and produce the same NaNs as the scalar reference (FPCR.DN clear, the Linux default).
#include <arm_neon.h>

#include "quant_scalar_impl.h"
#include "vecdex/simd/quant_kernel_decls.h"

namespace vecdex {
namespace neon {
namespace {

inline float32x4_t f16x4(uint16x4_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(h)); }
inline float32x4_t bf16x4(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }

template <bool kBf16>
inline float32x4_t half4(uint16x4_t h) {
  return kBf16 ? bf16x4(h) : f16x4(h);
}
template <bool kBf16>
inline float half1(std::uint16_t h) {
  return kBf16 ? qref::bf16_to_f32(h) : qref::f16_to_f32(h);
}

template <bool kBf16>
float dot_half(const float* q, const std::uint16_t* x, std::size_t d) {
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = vdupq_n_f32(0.f);
  std::size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const uint16x8_t h = vld1q_u16(x + i);
    s0 = vfmaq_f32(s0, vld1q_f32(q + i), half4<kBf16>(vget_low_u16(h)));
    s1 = vfmaq_f32(s1, vld1q_f32(q + i + 4), half4<kBf16>(vget_high_u16(h)));
  }
  float s = vaddvq_f32(vaddq_f32(s0, s1));
  for (; i < d; ++i) s += q[i] * half1<kBf16>(x[i]);
  return s;
}

template <bool kBf16>
float l2sq_half(const float* q, const std::uint16_t* x, std::size_t d) {
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = vdupq_n_f32(0.f);
  std::size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const uint16x8_t h = vld1q_u16(x + i);
    const float32x4_t t0 = vsubq_f32(vld1q_f32(q + i), half4<kBf16>(vget_low_u16(h)));
    const float32x4_t t1 = vsubq_f32(vld1q_f32(q + i + 4), half4<kBf16>(vget_high_u16(h)));
    s0 = vfmaq_f32(s0, t0, t0);
    s1 = vfmaq_f32(s1, t1, t1);
  }
  float s = vaddvq_f32(vaddq_f32(s0, s1));
  for (; i < d; ++i) {
    const float t = q[i] - half1<kBf16>(x[i]);
    s += t * t;
  }
  return s;
}

float dot_f16(const float* q, const std::uint16_t* x, std::size_t d) { return dot_half<false>(q, x, d); }
float l2sq_f16(const float* q, const std::uint16_t* x, std::size_t d) { return l2sq_half<false>(q, x, d); }
float dot_bf16(const float* q, const std::uint16_t* x, std::size_t d) { return dot_half<true>(q, x, d); }
float l2sq_bf16(const float* q, const std::uint16_t* x, std::size_t d) { return l2sq_half<true>(q, x, d); }

void f32_to_f16(const float* in, std::uint16_t* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
  for (; i < n; ++i) out[i] = qref::f32_to_f16(in[i]);
}
void f16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, f16x4(vld1_u16(in + i)));
  for (; i < n; ++i) out[i] = qref::f16_to_f32(in[i]);
}
void f32_to_bf16(const float* in, std::uint16_t* out, std::size_t n) {
  const uint32x4_t abs_mask = vdupq_n_u32(0x7FFFFFFFu), inf = vdupq_n_u32(0x7F800000u);
  const uint32x4_t bias = vdupq_n_u32(0x7FFFu), one = vdupq_n_u32(1u), quiet = vdupq_n_u32(0x40u);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32x4_t x = vreinterpretq_u32_f32(vld1q_f32(in + i));
    const uint32x4_t nan = vcgtq_u32(vandq_u32(x, abs_mask), inf);
    const uint32x4_t hi = vshrq_n_u32(x, 16);
    const uint32x4_t r = vshrq_n_u32(vaddq_u32(vaddq_u32(x, bias), vandq_u32(hi, one)), 16);
    vst1_u16(out + i, vmovn_u32(vbslq_u32(nan, vorrq_u32(hi, quiet), r)));
  }
  for (; i < n; ++i) out[i] = qref::f32_to_bf16(in[i]);
}
void bf16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, bf16x4(vld1_u16(in + i)));
  for (; i < n; ++i) out[i] = qref::bf16_to_f32(in[i]);
}

// 16 codes -> 4 vectors of 4 floats, multiplied into s[0..3] with w.
inline void fma_u8x16(float32x4_t* s, const float* w, uint8x16_t c) {
  const uint16x8_t lo = vmovl_u8(vget_low_u8(c)), hi = vmovl_high_u8(c);
  s[0] = vfmaq_f32(s[0], vld1q_f32(w), vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))));
  s[1] = vfmaq_f32(s[1], vld1q_f32(w + 4), vcvtq_f32_u32(vmovl_high_u16(lo)));
  s[2] = vfmaq_f32(s[2], vld1q_f32(w + 8), vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))));
  s[3] = vfmaq_f32(s[3], vld1q_f32(w + 12), vcvtq_f32_u32(vmovl_high_u16(hi)));
}
inline float32x4_t l2_u8x4(float32x4_t s, const float* b, const float* scale, uint32x4_t c) {
  const float32x4_t t = vfmsq_f32(vld1q_f32(b), vld1q_f32(scale), vcvtq_f32_u32(c));  // b - scale * c
  return vfmaq_f32(s, t, t);
}
inline void l2_u8x16(float32x4_t* s, const float* b, const float* scale, uint8x16_t c) {
  const uint16x8_t lo = vmovl_u8(vget_low_u8(c)), hi = vmovl_high_u8(c);
  s[0] = l2_u8x4(s[0], b, scale, vmovl_u16(vget_low_u16(lo)));
  s[1] = l2_u8x4(s[1], b + 4, scale + 4, vmovl_high_u16(lo));
  s[2] = l2_u8x4(s[2], b + 8, scale + 8, vmovl_u16(vget_low_u16(hi)));
  s[3] = l2_u8x4(s[3], b + 12, scale + 12, vmovl_high_u16(hi));
}
inline float sum4(const float32x4_t* s) { return vaddvq_f32(vaddq_f32(vaddq_f32(s[0], s[1]), vaddq_f32(s[2], s[3]))); }

float dot_u8_f32(const float* w, const std::uint8_t* code, std::size_t d) {
  float32x4_t s[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) fma_u8x16(s, w + i, vld1q_u8(code + i));
  float r = sum4(s);
  for (; i < d; ++i) r += w[i] * float(code[i]);
  return r;
}
float l2sq_u8_f32(const float* b, const float* scale, const std::uint8_t* code, std::size_t d) {
  float32x4_t s[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) l2_u8x16(s, b + i, scale + i, vld1q_u8(code + i));
  float r = sum4(s);
  for (; i < d; ++i) {
    const float t = b[i] - scale[i] * float(code[i]);
    r += t * t;
  }
  return r;
}

// u8 x s8 products widened to int16 by vmull after widening both to int16 lanes: codes 0..255
// times -128..127 fit int32 (vmlal_s16), exact.
inline int32x4_t dot_u8_i8_x16(int32x4_t acc, uint8x16_t c, int8x16_t qv) {
  const int16x8_t c0 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(c))), c1 = vreinterpretq_s16_u16(vmovl_high_u8(c));
  const int16x8_t q0 = vmovl_s8(vget_low_s8(qv)), q1 = vmovl_high_s8(qv);
  acc = vmlal_s16(acc, vget_low_s16(c0), vget_low_s16(q0));
  acc = vmlal_high_s16(acc, c0, q0);
  acc = vmlal_s16(acc, vget_low_s16(c1), vget_low_s16(q1));
  return vmlal_high_s16(acc, c1, q1);
}

std::int32_t dot_u8_i8(const std::uint8_t* code, const std::int8_t* q, std::size_t d) {
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = dot_u8_i8_x16(acc0, vld1q_u8(code + i), vld1q_s8(q + i));
    acc1 = dot_u8_i8_x16(acc1, vld1q_u8(code + i + 16), vld1q_s8(q + i + 16));
  }
  for (; i + 16 <= d; i += 16) acc0 = dot_u8_i8_x16(acc0, vld1q_u8(code + i), vld1q_s8(q + i));
  return vaddvq_s32(vaddq_s32(acc0, acc1)) + qref::dot_u8_i8_from(code, q, i, d);
}

// |c - q| (vabd), squared into uint16 (at most 255^2 = 65025), pairwise-accumulated into uint32.
std::int32_t l2sq_u8_u8(const std::uint8_t* code, const std::uint8_t* q, std::size_t d) {
  uint32x4_t acc0 = vdupq_n_u32(0), acc1 = vdupq_n_u32(0);
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const uint8x16_t ad = vabdq_u8(vld1q_u8(code + i), vld1q_u8(q + i));
    acc0 = vpadalq_u16(acc0, vmull_u8(vget_low_u8(ad), vget_low_u8(ad)));
    acc1 = vpadalq_u16(acc1, vmull_high_u8(ad, ad));
  }
  return static_cast<std::int32_t>(vaddvq_u32(vaddq_u32(acc0, acc1))) + qref::l2sq_u8_u8_from(code, q, i, d);
}

// 8 packed bytes -> 16 codes in dimension order (low nibble first).
inline uint8x16_t u4x16(uint8x8_t p) {
  const uint8x8_t lo = vand_u8(p, vdup_n_u8(0x0F)), hi = vshr_n_u8(p, 4);
  return vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
}

// Codes 0..15 fit int8, so vmull_s8 gives exact int16 products (at most 15 * 128).
std::int32_t dot_u4_i8(const std::uint8_t* packed, const std::int8_t* q, std::size_t d) {
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const int8x16_t c = vreinterpretq_s8_u8(u4x16(vld1_u8(packed + i / 2)));
    const int8x16_t qv = vld1q_s8(q + i);
    acc0 = vpadalq_s16(acc0, vmull_s8(vget_low_s8(c), vget_low_s8(qv)));
    acc1 = vpadalq_s16(acc1, vmull_high_s8(c, qv));
  }
  return vaddvq_s32(vaddq_s32(acc0, acc1)) + qref::dot_u4_i8_from(packed, q, i, d);
}

float dot_u4_f32(const float* w, const std::uint8_t* packed, std::size_t d) {
  float32x4_t s[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) fma_u8x16(s, w + i, u4x16(vld1_u8(packed + i / 2)));
  float r = sum4(s);
  for (; i < d; ++i) r += w[i] * float(qref::sq4_code(packed, i));
  return r;
}
float l2sq_u4_f32(const float* b, const float* scale, const std::uint8_t* packed, std::size_t d) {
  float32x4_t s[4] = {vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f), vdupq_n_f32(0.f)};
  std::size_t i = 0;
  for (; i + 16 <= d; i += 16) l2_u8x16(s, b + i, scale + i, u4x16(vld1_u8(packed + i / 2)));
  float r = sum4(s);
  for (; i < d; ++i) {
    const float t = b[i] - scale[i] * float(qref::sq4_code(packed, i));
    r += t * t;
  }
  return r;
}

const QuantKernels kTable = {
    SimdLevel::Neon, "neon",
    dot_f16,         l2sq_f16,    dot_bf16,  l2sq_bf16,  f32_to_f16, f16_to_f32, f32_to_bf16, bf16_to_f32,
    dot_u8_f32,      l2sq_u8_f32, dot_u8_i8, l2sq_u8_u8, dot_u4_i8,  dot_u4_f32, l2sq_u4_f32,
};

}  // namespace

const QuantKernels* quant_table() { return &kTable; }

}  // namespace neon
}  // namespace vecdex
