// Scalar element conversions and loops for quantised rows: the reference that every level must
// reproduce. Private to cpp/src/simd. Everything here has internal linkage (anonymous namespace),
// so a copy compiled into a SIMD translation unit (for its tails) with that unit's target flags can
// never be picked by the linker for a caller on an older CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vecdex {
namespace qref {
namespace {

inline std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// IEEE binary32 -> binary16, round to nearest even, integer arithmetic only (independent of the
// FPU rounding mode and of flush-to-zero settings). NaN: quiet, top 9 payload bits kept.
inline std::uint16_t f32_to_f16(float f) {
  const std::uint32_t x = float_bits(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((ax >> 13) & 0x1FFu));
  if (ax >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 (or inf)
  if (ax >= 0x38800000u) {  // result is a normal f16 (|f| >= 2^-14, before rounding)
    const std::uint32_t r = ax + 0xFFFu + ((ax >> 13) & 1u) - 0x38000000u;  // round, rebias 127->15
    return static_cast<std::uint16_t>(sign | (r >> 13));
  }
  const std::uint32_t e = ax >> 23;
  if (e < 102) return static_cast<std::uint16_t>(sign);  // |f| < 2^-25 (or a tie at it): +-0
  // f16 subnormal: k = round(|f| / 2^-24) = round(mant * 2^(e - 126)), shift = 126 - e in 14..24.
  const std::uint32_t mant = (ax & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126 - e;
  std::uint32_t k = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (k & 1u))) ++k;  // may carry into the smallest normal: fine
  return static_cast<std::uint16_t>(sign | k);
}

// binary16 -> binary32, exact. NaN: quiet, payload kept.
inline float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  std::uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  if (e == 0x1F) return bits_float(sign | 0x7F800000u | (m << 13) | (m ? 0x400000u : 0u));
  if (e == 0) {
    if (m == 0) return bits_float(sign);
    e = 1;
    while (!(m & 0x400u)) {
      m <<= 1;
      --e;
    }
    m &= 0x3FFu;
  }
  return bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

// binary32 -> bfloat16, round to nearest even, subnormals kept. NaN: quiet, top payload kept.
inline std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t x = float_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

inline float bf16_to_f32(std::uint16_t h) { return bits_float(std::uint32_t(h) << 16); }

inline std::uint32_t sq4_code(const std::uint8_t* packed, std::size_t i) {
  const std::uint8_t b = packed[i >> 1];
  return (i & 1) ? (b >> 4) : (b & 0x0Fu);
}

// Integer kernels from element i on: SIMD levels finish their rows with these (exact either way).
inline std::int32_t dot_u8_i8_from(const std::uint8_t* code, const std::int8_t* q, std::size_t i, std::size_t d) {
  std::int32_t s = 0;
  for (; i < d; ++i) s += std::int32_t(code[i]) * std::int32_t(q[i]);
  return s;
}
inline std::int32_t l2sq_u8_u8_from(const std::uint8_t* code, const std::uint8_t* q, std::size_t i, std::size_t d) {
  std::int32_t s = 0;
  for (; i < d; ++i) {
    const std::int32_t t = std::int32_t(code[i]) - std::int32_t(q[i]);
    s += t * t;
  }
  return s;
}
// i must be even.
inline std::int32_t dot_u4_i8_from(const std::uint8_t* packed, const std::int8_t* q, std::size_t i, std::size_t d) {
  std::int32_t s = 0;
  for (; i + 2 <= d; i += 2) {
    const std::uint8_t b = packed[i >> 1];
    s += std::int32_t(b & 0x0Fu) * q[i] + std::int32_t(b >> 4) * q[i + 1];
  }
  if (i < d) s += std::int32_t(packed[i >> 1] & 0x0Fu) * q[i];
  return s;
}

}  // namespace
}  // namespace qref
}  // namespace vecdex
