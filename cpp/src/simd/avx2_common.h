// Helpers shared by the AVX2 translation units (compiled with -mavx2 -mfma). Internal linkage
// only: including this from a TU with other target flags must not create a shared symbol.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace vecdex {
namespace avx2 {
namespace {

inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  lo = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, lo);
  lo = _mm_add_ss(lo, sh);
  return _mm_cvtss_f32(lo);
}

// Mask with the first `rem` (0..8) lanes set, for the tail of a row.
inline __m256i tail_mask(std::size_t rem) {
  alignas(32) static const int kMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMask + 8 - rem));
}

}  // namespace
}  // namespace avx2
}  // namespace vecdex
