// Run-time choice of SIMD kernels: the CPU and OS are probed once, and every hot loop calls
// through one table of function pointers for the chosen level. Never decided at compile time,
// so one build runs on any machine of the architecture.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace vecdex {

enum class SimdLevel : int { Scalar = 0, Neon = 1, AVX2 = 2, AVX512 = 3 };

const char* simd_level_name(SimdLevel level);
bool simd_level_from_name(const std::string& name, SimdLevel* out);

// Kernels for float32 vectors of length d. Batch forms score one query against many rows given by
// pointers, so a caller can hand over scattered graph neighbours as well as a contiguous block.
struct DistanceKernels {
  SimdLevel level;
  float (*l2sq)(const float* a, const float* b, std::size_t d);
  float (*dot)(const float* a, const float* b, std::size_t d);
  // Cosine similarity in one pass; 0 when either vector is zero.
  float (*cosine)(const float* a, const float* b, std::size_t d);
  void (*l2sq_batch)(const float* q, const float* const* rows, std::size_t n, std::size_t d, float* out);
  void (*dot_batch)(const float* q, const float* const* rows, std::size_t n, std::size_t d, float* out);
  // Contiguous rows (row i at base + i*d): the exact-scan path.
  void (*l2sq_block)(const float* q, const float* base, std::size_t n, std::size_t d, float* out);
  void (*dot_block)(const float* q, const float* base, std::size_t n, std::size_t d, float* out);
  // Four queries against each of n rows: out[4 * i + j] = distance of queries[j] to rows[i]. A
  // scan shared by several queries then loads each row once for four of them, which makes it
  // bound by arithmetic rather than by cache bandwidth.
  void (*l2sq_batch4)(const float* const* queries, const float* const* rows, std::size_t n, std::size_t d, float* out);
  void (*dot_batch4)(const float* const* queries, const float* const* rows, std::size_t n, std::size_t d, float* out);
};

// The best level this CPU and OS support.
SimdLevel detected_simd_level();
// Levels usable here, lowest first.
std::vector<SimdLevel> available_simd_levels();
// The level in use: detected, unless VECDEX_SIMD asked for a lower one.
SimdLevel active_simd_level();
// A warning produced while reading VECDEX_SIMD (empty when none), for the bindings to surface.
const std::string& simd_env_warning();
// Kernels of a given level; nullptr when the level is not built in or not supported here.
const DistanceKernels* kernels_for(SimdLevel level);
// Kernels of the active level.
const DistanceKernels& kernels();

}  // namespace vecdex
