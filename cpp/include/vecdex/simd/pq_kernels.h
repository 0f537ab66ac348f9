// Kernels for product quantisation (storage/pq_store.h): a third dispatch table beside
// DistanceKernels and QuantKernels, chosen the same way (one table per ISA, each in its own
// translation unit with its own target flags, picked at run time from active_simd_level()).
//
// Both kernels give bit-identical results at every level, so codes, codebooks and fast-scan
// scores never depend on the CPU:
// * fastscan4 is integer arithmetic (uint16 sums, modulo 2^16; the store keeps them exact).
// * nearest evaluates every candidate with the same float operations in the same order
//   (a multiply then an add, never fused: the PQ TUs are compiled with -ffp-contract=off), and
//   breaks ties toward the lowest centroid index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vecdex/simd/dispatch.h"

namespace vecdex {

// Fast-scan block layout for 4-bit codes: rows are grouped in blocks of 32. A block holds, for
// each sub-quantizer m in order, 16 bytes at offset 16*m: byte j (0..15) is
// code(row j, m) | code(row j + 16, m) << 4. A block is therefore 16 * M bytes.
constexpr std::size_t kPQBlockRows = 32;

struct PqKernels {
  SimdLevel level;
  const char* name;  // "scalar", "avx2", "avx512"
  // 4-bit fast scan over `nblocks` consecutive blocks of `m` sub-quantizers. lut holds m tables
  // of 16 uint8 entries (table of sub-quantizer s at lut + 16*s). Writes 32 * nblocks sums:
  // out[32*b + j] = sum_s lut[16*s + code(row j of block b, s)], computed modulo 2^16 (exact when
  // m * max(lut) <= 65535).
  void (*fastscan4)(const std::uint8_t* codes, std::size_t nblocks, std::size_t m, const std::uint8_t* lut,
                    std::uint16_t* out);
  // Nearest centroid of each of n rows (row i at x + i*stride, dsub values). Centroids are given
  // transposed, ct[j*ksub + k] = value j of centroid k, with cnorm[k] = |centroid k|^2; ksub is a
  // multiple of 8 and at most 256. labels[i] = argmin_k of
  //   acc = cnorm[k]; for j in 0..dsub: acc = acc + (-2 * x[j]) * ct[j*ksub + k]
  // (unfused, in that order), ties to the lowest k.
  void (*nearest)(const float* x, std::size_t n, std::size_t stride, std::size_t dsub, const float* ct,
                  const float* cnorm, std::size_t ksub, std::uint32_t* labels);
};

// The table for a level: nullptr when kernels_for(level) is (not built in or not supported).
const PqKernels* pq_kernels_for(SimdLevel level);
// The table of the active level (active_simd_level(), so VECDEX_SIMD applies).
const PqKernels& pq_kernels();
// Every table usable on this machine, lowest first.
std::vector<const PqKernels*> usable_pq_kernel_tables();
// A usable table by name; nullptr when unknown or not usable here.
const PqKernels* pq_kernels_named(const std::string& name);

// Per-ISA getters: only pq_dispatch.cpp calls these, after checking the CPU.
namespace scalar { const PqKernels* pq_table(); }
namespace avx2 {
const PqKernels* pq_table();
// Shared with the AVX-512 table (the nearest-centroid loop gains nothing from wider registers).
void pq_nearest(const float* x, std::size_t n, std::size_t stride, std::size_t dsub, const float* ct,
                const float* cnorm, std::size_t ksub, std::uint32_t* labels);
}  // namespace avx2
namespace avx512 { const PqKernels* pq_table(); }

}  // namespace vecdex
