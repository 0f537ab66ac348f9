// Reference PQ kernels (simd/pq_kernels.h): plain loops every SIMD level is tested against.
// Compiled with -ffp-contract=off so the nearest-centroid sums are never fused.
#include "vecdex/simd/pq_kernels.h"

namespace vecdex {
namespace scalar {
namespace {

void fastscan4(const std::uint8_t* codes, std::size_t nblocks, std::size_t m, const std::uint8_t* lut,
               std::uint16_t* out) {
  const std::size_t block_bytes = 16 * m;
  for (std::size_t b = 0; b < nblocks; ++b) {
    const std::uint8_t* blk = codes + b * block_bytes;
    std::uint16_t acc[32] = {0};
    for (std::size_t s = 0; s < m; ++s) {
      const std::uint8_t* c = blk + 16 * s;
      const std::uint8_t* t = lut + 16 * s;
      for (std::size_t j = 0; j < 16; ++j) {
        acc[j] = static_cast<std::uint16_t>(acc[j] + t[c[j] & 0x0F]);
        acc[j + 16] = static_cast<std::uint16_t>(acc[j + 16] + t[c[j] >> 4]);
      }
    }
    for (std::size_t j = 0; j < 32; ++j) out[32 * b + j] = acc[j];
  }
}

void nearest(const float* x, std::size_t n, std::size_t stride, std::size_t dsub, const float* ct,
             const float* cnorm, std::size_t ksub, std::uint32_t* labels) {
  float acc[256];
  for (std::size_t i = 0; i < n; ++i) {
    const float* xi = x + i * stride;
    for (std::size_t k = 0; k < ksub; ++k) acc[k] = cnorm[k];
    for (std::size_t j = 0; j < dsub; ++j) {
      const float xb = -2.f * xi[j];
      const float* c = ct + j * ksub;
      for (std::size_t k = 0; k < ksub; ++k) acc[k] = acc[k] + xb * c[k];
    }
    std::uint32_t best = 0;
    for (std::size_t k = 1; k < ksub; ++k) {
      if (acc[k] < acc[best]) best = static_cast<std::uint32_t>(k);
    }
    labels[i] = best;
  }
}

const PqKernels kTable = {SimdLevel::Scalar, "scalar", fastscan4, nearest};

}  // namespace

const PqKernels* pq_table() { return &kTable; }

}  // namespace scalar
}  // namespace vecdex
