// Kernels for quantised rows: half-precision floats (fp16, bf16), 8-bit scalar quantisation
// (SQ8) and 4-bit scalar quantisation (SQ4, two codes per byte). A second dispatch table beside
// DistanceKernels, chosen the same way: one table per ISA, each in its own translation unit with
// its own target flags, picked at run time. Every SIMD kernel is tested against the scalar table:
// integer kernels give exactly the same result, float kernels differ only by the order of the
// float32 additions (and fused multiply-adds).
//
// Conventions shared by all kernels:
// * d is the number of dimensions (codes), never bytes. Nothing past element d-1 of any argument
//   is read (an SQ4 row is (d+1)/2 bytes), and conversions write exactly n outputs.
// * Half-precision values are passed as their raw 16-bit patterns (std::uint16_t).
// * Integer kernels accumulate in int32 with no intermediate saturation; the caller keeps d small
//   enough for the exact result to fit: d <= 65793 for dot_u8_i8 (|255 * -128| per term),
//   d <= 33025 for l2sq_u8_u8 (255^2 per term), d <= 1118481 for dot_u4_i8 (|15 * -128|).
//
// Rounding and special values of the conversions (bit-exact at every level):
// * f32 -> f16: round to nearest, ties to even, with f16 subnormals; magnitudes from 65520 up
//   become infinity. A NaN stays a NaN of the same sign, made quiet, keeping the top 9 bits of
//   its payload: sign | 0x7E00 | ((bits >> 13) & 0x1FF) (what x86 F16C and AArch64 FCVT do).
// * f16 -> f32: exact. A NaN is made quiet and keeps its payload: sign | 0x7FC00000 | (m << 13).
// * f32 -> bf16: round to nearest, ties to even, on the upper 16 bits; subnormals are kept (no
//   flush to zero, unlike AVX512_BF16's vcvtneps2bf16, which is therefore not used). A NaN becomes
//   (bits >> 16) | 0x0040: quiet, same sign, top of the payload kept.
// * bf16 -> f32: exact (bits << 16), NaNs unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vecdex/simd/dispatch.h"

namespace vecdex {

struct QuantKernels {
  SimdLevel level;
  // Unique name of the table: "scalar", "neon", "avx2", "avx512" or "avx512vnni" (AVX-512 with
  // the VNNI extension, used for the integer dots; a CPU feature separate from AVX-512F).
  const char* name;

  // ---- fp16 / bf16 rows: float32 query q against a half-precision row x, converted in registers.
  float (*dot_f16)(const float* q, const std::uint16_t* x, std::size_t d);
  float (*l2sq_f16)(const float* q, const std::uint16_t* x, std::size_t d);
  float (*dot_bf16)(const float* q, const std::uint16_t* x, std::size_t d);
  float (*l2sq_bf16)(const float* q, const std::uint16_t* x, std::size_t d);

  // ---- Bulk conversions (see the rounding rules above).
  void (*f32_to_f16)(const float* in, std::uint16_t* out, std::size_t n);
  void (*f16_to_f32)(const std::uint16_t* in, float* out, std::size_t n);
  void (*f32_to_bf16)(const float* in, std::uint16_t* out, std::size_t n);
  void (*bf16_to_f32)(const std::uint16_t* in, float* out, std::size_t n);

  // ---- SQ8 with per-dimension ranges: row value x_i = offset_i + scale_i * code_i.
  // The caller turns the query into a per-search form once:
  //   dot(q, x)   = sum_i q_i*offset_i  +  dot_u8_f32(w, code)      with w_i = q_i * scale_i
  //   |q - x|^2   = l2sq_u8_f32(b, scale, code)                      with b_i = q_i - offset_i
  // (no division by scale_i, so constant dimensions with scale_i = 0 need no special case).
  // dot_u8_f32 returns sum_i w_i * code_i.
  float (*dot_u8_f32)(const float* w, const std::uint8_t* code, std::size_t d);
  // Returns sum_i (b_i - scale_i * code_i)^2.
  float (*l2sq_u8_f32)(const float* b, const float* scale, const std::uint8_t* code, std::size_t d);

  // ---- SQ8 uniform (one range for all dimensions): exact integer kernels, the query quantised
  // once per search.
  // sum_i code_i * q_i (u8 row codes, i8 query codes), exact. AVX-512 VNNI uses vpdpbusd. Without
  // VNNI, pmaddubsw would saturate (255*127*2 > 32767), so the codes are split as
  // code = (code & 0x7F) + (code & 0x80): each half's pair sums fit int16 exactly
  // ([-32512, 32258] and [-32768, 32512]) and are widened with pmaddwd separately.
  std::int32_t (*dot_u8_i8)(const std::uint8_t* code, const std::int8_t* q, std::size_t d);
  // sum_i (code_i - q_i)^2 with u8 query codes on the same grid as the row, exact.
  std::int32_t (*l2sq_u8_u8)(const std::uint8_t* code, const std::uint8_t* q, std::size_t d);

  // ---- SQ4: codes 0..15, two per byte, code of dimension 2j in the low nibble of byte j and of
  // dimension 2j+1 in the high nibble. A row has (d+1)/2 bytes; when d is odd the high nibble of
  // the last byte is ignored (whatever it holds).
  // sum_i code_i * q_i with i8 query codes, exact (pair sums of pmaddubsw are at most 3840).
  std::int32_t (*dot_u4_i8)(const std::uint8_t* packed, const std::int8_t* q, std::size_t d);
  // sum_i w_i * code_i  (per-dimension SQ4, w_i = q_i * scale_i as for SQ8).
  float (*dot_u4_f32)(const float* w, const std::uint8_t* packed, std::size_t d);
  // sum_i (b_i - scale_i * code_i)^2  (b_i = q_i - offset_i as for SQ8).
  float (*l2sq_u4_f32)(const float* b, const float* scale, const std::uint8_t* packed, std::size_t d);
};

// The table for a level: nullptr when kernels_for(level) is (not built in, or not supported by
// this CPU). For AVX512 this is the VNNI table when the CPU has AVX512_VNNI, else the plain one.
const QuantKernels* quant_kernels_for(SimdLevel level);
// The table of the active level (active_simd_level(), so VECDEX_SIMD applies).
const QuantKernels& quant_kernels();
// Every table usable on this machine, lowest first, including variants that quant_kernels_for()
// would not pick (plain "avx512" on a VNNI machine), so tests can compare all of them.
std::vector<const QuantKernels*> usable_quant_kernel_tables();
// A usable table by its name (QuantKernels::name); nullptr when unknown or not usable here.
const QuantKernels* quant_kernels_named(const std::string& name);
// Whether the CPU (and OS) can run the avx512vnni table.
bool cpu_has_avx512_vnni();

}  // namespace vecdex
