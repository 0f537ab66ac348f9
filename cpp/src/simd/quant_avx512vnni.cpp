// AVX-512 VNNI kernels: the avx512 table with the integer dot products done by vpdpbusd (u8 x s8,
// four adjacent products summed straight into int32, no intermediate saturation: exact). Compiled
// with the AVX-512 flags plus -mavx512vnni; quant_dispatch.cpp picks this table only when CPUID
// reports AVX512_VNNI. No standard-library templates here (see kernels_avx2.cpp).
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
namespace avx512vnni {
namespace {

using namespace q512;

std::int32_t dot_u8_i8(const std::uint8_t* code, const std::int8_t* q, std::size_t d) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  __m512i acc2 = _mm512_setzero_si512(), acc3 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 256 <= d; i += 256) {
    acc0 = _mm512_dpbusd_epi32(acc0, load512(code + i), load512(q + i));
    acc1 = _mm512_dpbusd_epi32(acc1, load512(code + i + 64), load512(q + i + 64));
    acc2 = _mm512_dpbusd_epi32(acc2, load512(code + i + 128), load512(q + i + 128));
    acc3 = _mm512_dpbusd_epi32(acc3, load512(code + i + 192), load512(q + i + 192));
  }
  for (; i + 64 <= d; i += 64) acc0 = _mm512_dpbusd_epi32(acc0, load512(code + i), load512(q + i));
  if (i < d) {
    const __mmask64 m = mask64(d - i);
    acc1 = _mm512_dpbusd_epi32(acc1, _mm512_maskz_loadu_epi8(m, code + i), _mm512_maskz_loadu_epi8(m, q + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(acc0, acc1), _mm512_add_epi32(acc2, acc3)));
}

std::int32_t dot_u4_i8(const std::uint8_t* packed, const std::int8_t* q, std::size_t d) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 128 <= d; i += 128) {
    acc0 = _mm512_dpbusd_epi32(acc0, u4x64(load256(packed + i / 2)), load512(q + i));
    acc1 = _mm512_dpbusd_epi32(acc1, u4x64(load256(packed + i / 2 + 32)), load512(q + i + 64));
  }
  for (; i + 64 <= d; i += 64) acc0 = _mm512_dpbusd_epi32(acc0, u4x64(load256(packed + i / 2)), load512(q + i));
  if (i < d) {
    // The masked query bytes are 0, so an odd row's ignored last high nibble adds code * 0.
    const std::size_t rem = d - i;
    const __m512i c = u4x64(_mm256_maskz_loadu_epi8(mask32((rem + 1) / 2), packed + i / 2));
    acc1 = _mm512_dpbusd_epi32(acc1, c, _mm512_maskz_loadu_epi8(mask64(rem), q + i));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}

QuantKernels make_table() {
  QuantKernels t = *avx512::quant_table();
  t.name = "avx512vnni";
  t.dot_u8_i8 = dot_u8_i8;
  t.dot_u4_i8 = dot_u4_i8;
  return t;
}

}  // namespace

const QuantKernels* quant_table() {
  static const QuantKernels table = make_table();
  return &table;
}

}  // namespace avx512vnni
}  // namespace vecdex
