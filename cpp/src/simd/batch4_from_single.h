// Four-query kernels built from a level's one-query kernels, for levels without dedicated ones
// (scalar, NEON). Instantiate with functions from the including file's anonymous namespace: the
// instantiation then has internal linkage, so the linker can never hand one level's copy to
// another level's caller.
#pragma once

#include <cstddef>

namespace vecdex {

template <float (*Distance)(const float*, const float*, std::size_t)>
void batch4_from_single(const float* const* queries, const float* const* rows, std::size_t n, std::size_t d,
                        float* out) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < 4; ++j) out[4 * i + j] = Distance(queries[j], rows[i], d);
}

}  // namespace vecdex
