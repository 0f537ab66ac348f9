// Scalar RaBitQ kernels (the reference every SIMD table is tested against) and the dispatch.
#include "vecdex/simd/rabitq_kernels.h"

namespace vecdex {
namespace scalar {
namespace {

inline std::uint32_t popcount64(std::uint64_t v) { return static_cast<std::uint32_t>(__builtin_popcountll(v)); }

void ip_bin_u4(const std::uint64_t* code, const std::uint64_t* planes, std::size_t words, std::uint32_t* ip,
               std::uint32_t* pc) {
  std::uint32_t s[4] = {0, 0, 0, 0};
  std::uint32_t p = 0;
  for (std::size_t w = 0; w < words; ++w) {
    const std::uint64_t c = code[w];
    p += popcount64(c);
    for (int j = 0; j < 4; ++j) s[j] += popcount64(c & planes[j * words + w]);
  }
  *ip = s[0] + 2 * s[1] + 4 * s[2] + 8 * s[3];
  *pc = p;
}

void fwht(float* x, std::size_t n) {
  for (std::size_t h = 1; h < n; h <<= 1) {
    for (std::size_t i = 0; i < n; i += 2 * h) {
      for (std::size_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
}

const RaBitQKernels kTable = {SimdLevel::Scalar, "scalar", ip_bin_u4, fwht};

}  // namespace

const RaBitQKernels* rabitq_table() { return &kTable; }
}  // namespace scalar

namespace {
const RaBitQKernels* built_rabitq_table(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return scalar::rabitq_table();
#if defined(VECDEX_HAVE_X86_KERNELS)
    case SimdLevel::AVX2: return avx2::rabitq_table();
    case SimdLevel::AVX512: return avx512::rabitq_table();
#endif
    default: return nullptr;
  }
}
}  // namespace

const RaBitQKernels& rabitq_kernels() {
  static const RaBitQKernels* k = [] {
    const RaBitQKernels* t = kernels_for(active_simd_level()) ? built_rabitq_table(active_simd_level()) : nullptr;
    return t ? t : scalar::rabitq_table();
  }();
  return *k;
}

std::vector<const RaBitQKernels*> usable_rabitq_kernel_tables() {
  std::vector<const RaBitQKernels*> out;
  for (SimdLevel l : available_simd_levels()) {
    if (const RaBitQKernels* t = built_rabitq_table(l)) out.push_back(t);
  }
  return out;
}

}  // namespace vecdex
