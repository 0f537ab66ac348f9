// Run-time choice of the quantised-row kernels, following the float kernels' level (dispatch.cpp):
// a level is usable here exactly when kernels_for(level) is. AVX-512 VNNI is a CPU feature of its
// own, probed here (CPUID leaf 7, ECX bit 11); the OS-side state (ZMM registers saved) is already
// implied by the AVX512 level being supported.
#include "vecdex/simd/quant_kernels.h"

#include "vecdex/simd/quant_kernel_decls.h"

#if defined(VECDEX_HAVE_X86_KERNELS)
#include <cpuid.h>
#endif

namespace vecdex {

namespace {

bool probe_avx512_vnni() {
#if defined(VECDEX_HAVE_X86_KERNELS)
  if (!kernels_for(SimdLevel::AVX512)) return false;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  unsigned a, b, c, d;
  __cpuid_count(7, 0, a, b, c, d);
  return (c & (1u << 11)) != 0;
#else
  return false;
#endif
}

// The table built into this binary for a level (nullptr when none); the caller checks the level
// against the CPU. allow_vnni=false gives the plain AVX-512 table even on a VNNI machine.
const QuantKernels* built_table(SimdLevel level, bool allow_vnni) {
  (void)allow_vnni;  // only x86 builds have a VNNI table
  switch (level) {
    case SimdLevel::Scalar: return scalar::quant_table();
#if defined(VECDEX_HAVE_X86_KERNELS)
    case SimdLevel::AVX2: return avx2::quant_table();
    case SimdLevel::AVX512:
      return (allow_vnni && cpu_has_avx512_vnni()) ? avx512vnni::quant_table() : avx512::quant_table();
#endif
#if defined(VECDEX_HAVE_NEON_KERNELS)
    case SimdLevel::Neon: return neon::quant_table();
#endif
    default: return nullptr;
  }
}

}  // namespace

bool cpu_has_avx512_vnni() {
  static const bool has = probe_avx512_vnni();
  return has;
}

const QuantKernels* quant_kernels_for(SimdLevel level) {
  if (!kernels_for(level)) return nullptr;
  return built_table(level, true);
}

const QuantKernels& quant_kernels() {
  static const QuantKernels* k = quant_kernels_for(active_simd_level());
  return *k;
}

std::vector<const QuantKernels*> usable_quant_kernel_tables() {
  std::vector<const QuantKernels*> out;
  for (SimdLevel l : available_simd_levels()) {
    const QuantKernels* plain = built_table(l, false);
    if (plain) out.push_back(plain);
    const QuantKernels* best = built_table(l, true);
    if (best && best != plain) out.push_back(best);
  }
  return out;
}

const QuantKernels* quant_kernels_named(const std::string& name) {
  for (const QuantKernels* t : usable_quant_kernel_tables()) {
    if (name == t->name) return t;
  }
  return nullptr;
}

}  // namespace vecdex
