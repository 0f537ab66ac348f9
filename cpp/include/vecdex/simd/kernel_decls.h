// Per-ISA kernel tables. Each lives in its own translation unit compiled with that ISA's flags;
// only the dispatcher may call these getters, after checking the CPU supports the level.
#pragma once

#include "vecdex/simd/dispatch.h"

namespace vecdex {
namespace scalar { const DistanceKernels* kernel_table(); }
namespace avx2 { const DistanceKernels* kernel_table(); }
namespace avx512 { const DistanceKernels* kernel_table(); }
namespace neon { const DistanceKernels* kernel_table(); }
}  // namespace vecdex
