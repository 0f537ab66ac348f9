// Run-time choice of the PQ kernels, following the float kernels' level (dispatch.cpp): a level
// is usable here exactly when kernels_for(level) is.
#include "vecdex/simd/pq_kernels.h"

namespace vecdex {

namespace {

const PqKernels* built_table(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return scalar::pq_table();
#if defined(VECDEX_HAVE_X86_KERNELS)
    case SimdLevel::AVX2: return avx2::pq_table();
    case SimdLevel::AVX512: return avx512::pq_table();
#endif
    default: return nullptr;  // NEON: the scalar table serves (see pq_kernels_for)
  }
}

}  // namespace

const PqKernels* pq_kernels_for(SimdLevel level) {
  if (!kernels_for(level)) return nullptr;
  const PqKernels* t = built_table(level);
  return t ? t : scalar::pq_table();
}

const PqKernels& pq_kernels() {
  static const PqKernels* k = pq_kernels_for(active_simd_level());
  return *k;
}

std::vector<const PqKernels*> usable_pq_kernel_tables() {
  std::vector<const PqKernels*> out;
  for (SimdLevel l : available_simd_levels()) {
    const PqKernels* t = built_table(l);
    if (t) out.push_back(t);
  }
  return out;
}

const PqKernels* pq_kernels_named(const std::string& name) {
  for (const PqKernels* t : usable_pq_kernel_tables()) {
    if (name == t->name) return t;
  }
  return nullptr;
}

}  // namespace vecdex
