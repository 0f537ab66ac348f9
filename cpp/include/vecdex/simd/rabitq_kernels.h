// Kernels of the RaBitQ store (rabitq_store.cpp): one table per ISA in its own translation unit
// (rabitq_scalar.cpp, rabitq_avx2.cpp with -mavx2 -mpopcnt, rabitq_avx512.cpp with AVX-512BW),
// picked at run time by the active SIMD level like the other tables. Everything here is exact:
// the integer kernels give the same result at every level, and the Walsh-Hadamard transform does
// the same float additions in the same order (butterflies are independent), so it is bit-exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vecdex/simd/dispatch.h"

namespace vecdex {

struct RaBitQKernels {
  SimdLevel level;
  const char* name;  // "scalar", "avx2", "avx512"
  // 1-bit codes against a 4-bit query held as bit-planes: `planes` holds 4 arrays of `words`
  // 64-bit words (plane j = bit j of every query code). Writes
  //   *ip = sum_j 2^j popcount(code & plane_j)  (= sum_i code_i * qcode_i)
  //   *pc = popcount(code)
  void (*ip_bin_u4)(const std::uint64_t* code, const std::uint64_t* planes, std::size_t words, std::uint32_t* ip,
                    std::uint32_t* pc);
  // In-place unnormalised Walsh-Hadamard transform of x[0..n), n a power of two.
  void (*fwht)(float* x, std::size_t n);
};

// The table of the active level (falls back to scalar where no table is built for it).
const RaBitQKernels& rabitq_kernels();
// Every table usable on this machine, lowest first (for tests).
std::vector<const RaBitQKernels*> usable_rabitq_kernel_tables();

namespace scalar { const RaBitQKernels* rabitq_table(); }
namespace avx2 { const RaBitQKernels* rabitq_table(); }
namespace avx512 { const RaBitQKernels* rabitq_table(); }

}  // namespace vecdex
