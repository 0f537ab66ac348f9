// AVX2 RaBitQ kernels (compiled with -mavx2 -mfma; reached only through rabitq_kernels() after
// the CPU has been checked). Popcounts by nibble lookup (vpshufb); the four query planes are
// weighted per byte (1, 2, 4, 8: at most 8 * 15 = 120 per byte) before one vpsadbw, so a 256-bit
// block costs two vpsadbw. Tails use 128- and 64-bit loads, zero-extended (no POPCNT instruction
// is needed). The Walsh-Hadamard butterflies run 8 lanes at a time. No standard-library templates.
#include <immintrin.h>

#include "vecdex/simd/rabitq_kernels.h"

namespace vecdex {
namespace avx2 {
namespace {

inline __m256i popcnt8(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                       2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
  const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  return _mm256_add_epi8(lo, hi);
}

inline std::uint64_t hsum64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(s)) + static_cast<std::uint64_t>(_mm_extract_epi64(s, 1));
}

// Adds one block: acc_ip += per-lane sum of sum_j 2^j popcount(c & p_j), acc_pc += popcount(c).
inline void accumulate(__m256i c, __m256i p0, __m256i p1, __m256i p2, __m256i p3, __m256i& acc_ip, __m256i& acc_pc) {
  __m256i t = popcnt8(_mm256_and_si256(c, p3));
  t = _mm256_add_epi8(_mm256_add_epi8(t, t), popcnt8(_mm256_and_si256(c, p2)));
  t = _mm256_add_epi8(_mm256_add_epi8(t, t), popcnt8(_mm256_and_si256(c, p1)));
  t = _mm256_add_epi8(_mm256_add_epi8(t, t), popcnt8(_mm256_and_si256(c, p0)));
  acc_ip = _mm256_add_epi64(acc_ip, _mm256_sad_epu8(t, _mm256_setzero_si256()));
  acc_pc = _mm256_add_epi64(acc_pc, _mm256_sad_epu8(popcnt8(c), _mm256_setzero_si256()));
}

inline __m256i ld(const std::uint64_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

void ip_bin_u4(const std::uint64_t* code, const std::uint64_t* planes, std::size_t words, std::uint32_t* ip,
               std::uint32_t* pc) {
  __m256i acc_ip = _mm256_setzero_si256(), acc_pc = acc_ip;
  const std::uint64_t *p0 = planes, *p1 = planes + words, *p2 = planes + 2 * words, *p3 = planes + 3 * words;
  std::size_t w = 0;
  for (; w + 4 <= words; w += 4)
    accumulate(ld(code + w), ld(p0 + w), ld(p1 + w), ld(p2 + w), ld(p3 + w), acc_ip, acc_pc);
  for (; w < words; w += 2) {  // 1..3 words left
    const bool two = w + 2 <= words;
    auto part = [two](const std::uint64_t* p) {
      const __m128i x = two ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p))
                            : _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
      return _mm256_inserti128_si256(_mm256_setzero_si256(), x, 0);
    };
    accumulate(part(code + w), part(p0 + w), part(p1 + w), part(p2 + w), part(p3 + w), acc_ip, acc_pc);
  }
  *ip = static_cast<std::uint32_t>(hsum64(acc_ip));
  *pc = static_cast<std::uint32_t>(hsum64(acc_pc));
}

void fwht(float* x, std::size_t n) {
  std::size_t h = 1;
  for (; h < n && h < 8; h <<= 1) {
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
      for (std::size_t j = i; j < i + h; j += 8) {
        const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
        _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
        _mm256_storeu_ps(x + j + h, _mm256_sub_ps(a, b));
      }
    }
  }
}

const RaBitQKernels kTable = {SimdLevel::AVX2, "avx2", ip_bin_u4, fwht};

}  // namespace
const RaBitQKernels* rabitq_table() { return &kTable; }
}  // namespace avx2
}  // namespace vecdex
