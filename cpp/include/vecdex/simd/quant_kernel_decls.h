// Per-ISA tables of quantised-row kernels. Each lives in its own translation unit compiled with
// that ISA's flags; only quant_dispatch.cpp may call these getters, after checking the CPU.
#pragma once

#include "vecdex/simd/quant_kernels.h"

namespace vecdex {
namespace scalar { const QuantKernels* quant_table(); }
namespace avx2 { const QuantKernels* quant_table(); }
namespace avx512 { const QuantKernels* quant_table(); }
// AVX-512 + VNNI: the avx512 table with the integer dots replaced (vpdpbusd).
namespace avx512vnni { const QuantKernels* quant_table(); }
namespace neon { const QuantKernels* quant_table(); }
}  // namespace vecdex
