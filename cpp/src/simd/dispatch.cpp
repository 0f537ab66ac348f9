#include "vecdex/simd/dispatch.h"

#include <cstdlib>

#include "vecdex/simd/kernel_decls.h"

#if defined(VECDEX_HAVE_X86_KERNELS)
#include <cpuid.h>
#endif

namespace vecdex {

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::Neon: return "neon";
    case SimdLevel::AVX2: return "avx2";
    case SimdLevel::AVX512: return "avx512";
  }
  return "unknown";
}

bool simd_level_from_name(const std::string& name, SimdLevel* out) {
  static const SimdLevel kAll[] = {SimdLevel::Scalar, SimdLevel::Neon, SimdLevel::AVX2, SimdLevel::AVX512};
  for (SimdLevel l : kAll) {
    if (name == simd_level_name(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

namespace {

#if defined(VECDEX_HAVE_X86_KERNELS)
std::uint64_t read_xcr0() {
  std::uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (std::uint64_t(edx) << 32) | eax;
}

// The CPU must have the instructions and the OS must save the wider registers on context switch.
SimdLevel probe_x86() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return SimdLevel::Scalar;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29), avx = c & (1u << 28);
  if (!osxsave || !avx) return SimdLevel::Scalar;
  const std::uint64_t xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;
  if (__get_cpuid_max(0, nullptr) < 7) return SimdLevel::Scalar;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31);
  if (!(os_avx && avx2 && fma && f16c)) return SimdLevel::Scalar;
  if (os_avx512 && avx512f && avx512dq && avx512bw && avx512vl) return SimdLevel::AVX512;
  return SimdLevel::AVX2;
}
#endif

const DistanceKernels* table_if_built(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return scalar::kernel_table();
#if defined(VECDEX_HAVE_X86_KERNELS)
    case SimdLevel::AVX2: return avx2::kernel_table();
    case SimdLevel::AVX512: return avx512::kernel_table();
#endif
#if defined(VECDEX_HAVE_NEON_KERNELS)
    case SimdLevel::Neon: return neon::kernel_table();
#endif
    default: return nullptr;
  }
}

SimdLevel probe() {
#if defined(VECDEX_HAVE_X86_KERNELS)
  return probe_x86();
#elif defined(VECDEX_HAVE_NEON_KERNELS)
  return SimdLevel::Neon;
#else
  return SimdLevel::Scalar;
#endif
}

struct Selection {
  SimdLevel detected;
  SimdLevel active;
  std::string warning;
};

Selection select() {
  Selection s;
  s.detected = detected_simd_level();
  s.active = s.detected;
  const char* env = std::getenv("VECDEX_SIMD");
  if (env && *env && std::string(env) != "auto") {
    SimdLevel wanted;
    if (!simd_level_from_name(env, &wanted)) {
      s.warning = std::string("VECDEX_SIMD=") + env +
                  " is not one of scalar, avx2, avx512, neon, auto; using " + simd_level_name(s.detected);
    } else if (!kernels_for(wanted)) {
      s.warning = std::string("VECDEX_SIMD=") + env + " is not supported on this machine; using " +
                  simd_level_name(s.detected);
    } else {
      s.active = wanted;
    }
  }
  return s;
}

const Selection& selection() {
  static const Selection s = select();
  return s;
}

}  // namespace

SimdLevel detected_simd_level() {
  static const SimdLevel level = probe();
  return level;
}
SimdLevel active_simd_level() { return selection().active; }
const std::string& simd_env_warning() { return selection().warning; }

std::vector<SimdLevel> available_simd_levels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::Scalar, SimdLevel::Neon, SimdLevel::AVX2, SimdLevel::AVX512}) {
    if (kernels_for(l)) out.push_back(l);
  }
  return out;
}

const DistanceKernels* kernels_for(SimdLevel level) {
  const DistanceKernels* t = table_if_built(level);
  if (!t) return nullptr;
  // A level is usable when built in and not above what the CPU supports. Neon and the x86
  // levels never coexist in one build, so comparing ranks is enough.
  if (static_cast<int>(level) > static_cast<int>(detected_simd_level())) return nullptr;
  return t;
}

const DistanceKernels& kernels() {
  static const DistanceKernels* k = kernels_for(active_simd_level());
  return *k;
}

}  // namespace vecdex
