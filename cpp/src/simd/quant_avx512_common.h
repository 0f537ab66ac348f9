// Small AVX-512 helpers shared by quant_avx512.cpp and quant_avx512vnni.cpp. Private to cpp/src/simd
// and included only by translation units compiled with AVX-512 flags; internal linkage throughout.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace vecdex {
namespace q512 {
namespace {

// Masks with the first n lanes set (n below the lane count, except mask16 which also takes 16).
inline __mmask16 mask16(std::size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
inline __mmask32 mask32(std::size_t n) { return static_cast<__mmask32>((std::uint64_t(1) << n) - 1u); }
inline __mmask64 mask64(std::size_t n) { return static_cast<__mmask64>((std::uint64_t(1) << n) - 1u); }

inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// SQ4 unpacking in dimension order: each packed byte b is widened to the 16-bit lane
// (b & 0x0F) | (b >> 4) << 8, i.e. the low nibble lands in the even byte and the high nibble in
// the odd byte. 32 packed bytes -> 64 codes; 16 packed bytes -> 32 codes.
inline __m512i u4x64(__m256i p) {
  const __m512i t = _mm512_cvtepu8_epi16(p);
  return _mm512_or_si512(_mm512_and_si512(t, _mm512_set1_epi16(0x000F)),
                         _mm512_slli_epi16(_mm512_and_si512(t, _mm512_set1_epi16(0x00F0)), 4));
}
inline __m256i u4x32(__m128i p) {
  const __m256i t = _mm256_cvtepu8_epi16(p);
  return _mm256_or_si256(_mm256_and_si256(t, _mm256_set1_epi16(0x000F)),
                         _mm256_slli_epi16(_mm256_and_si256(t, _mm256_set1_epi16(0x00F0)), 4));
}

}  // namespace
}  // namespace q512
}  // namespace vecdex
