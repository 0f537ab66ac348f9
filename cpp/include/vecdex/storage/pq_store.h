// Product quantisation as a CodeStore. The (stored-space) vector is split into `subquantizers`
// sub-vectors of dsub = ceil(dim / subquantizers) values; when dim is not a multiple, the vector
// is padded with zeros up to subquantizers * dsub (the padding falls in the last sub-space(s),
// is zero in every centroid, and never appears in decode()). Each sub-space has its own codebook
// of 2^bits centroids (bits = 8: 256, one byte per sub-vector, row-major codes; bits = 4: 16,
// codes kept in the fast-scan layout of simd/pq_kernels.h, 32 rows per block), trained by k-means
// (random distinct rows as seeds, fixed seed, up to 20 Lloyd iterations, empty clusters split off
// the largest one) on at most 16384 sampled rows (64 per centroid for 8-bit codes, 1024 for 4-bit).
//
// Distances are asymmetric: per query one table of subquantizers x 2^bits partial distances
// (l2: squared partial distances; ip / cosine: partial dot products, distance = 1 - sum), and a
// row's distance is the sum of its entries.
// * distance() / distances() (random access, HNSW): the float table, read per row.
// * distances_range() (contiguous scan, FlatIndex): bits = 8 sums the float table; bits = 4 uses
//   the fast scan: the table quantised once per query to uint8 per sub-space with one global
//   scale (entry = round((t - min_m) * scale), max entry <= min(255, 65535 / subquantizers), so
//   the uint16 sums are exact; past 257 sub-quantizers the entries get coarser) and the SIMD
//   kernel scores 32 rows at a time. The result is an
//   estimate within subquantizers / (2 * scale) of the float-table distance; exact re-ranking
//   with the full vectors (IndexBase) corrects the order.
// The store's own parameters are saved in its own section, so a file always reopens with the
// subquantizers and bits it was written with.
#pragma once

#include <cstdint>
#include <memory>

#include "vecdex/io/file_format.h"
#include "vecdex/storage/code_store.h"

namespace vecdex {

constexpr Quantization kQuantizationPQ = Quantization::PQ;

namespace section {
constexpr std::uint32_t kPQParams = fourcc('Q', 'P', 'Q', 'P');     // u32: version, dim, subquantizers, bits, dsub
constexpr std::uint32_t kPQCodebooks = fourcc('Q', 'P', 'Q', 'B');  // f32 [subquantizers][2^bits][dsub]
constexpr std::uint32_t kPQCodes = fourcc('Q', 'P', 'Q', 'C');      // u8 codes (8-bit row-major, 4-bit blocked)
}  // namespace section

constexpr int kPQDefaultBits = 4;
// Default subquantizers: dim / 2 for 4-bit codes (2 values per sub-vector, 16x smaller than
// float32 rows), at least 1.
std::size_t pq_default_subquantizers(std::size_t dim, int bits = kPQDefaultBits);

// InvalidArgument unless bits is 4 or 8 and 1 <= subquantizers <= dim.
std::unique_ptr<CodeStore> make_pq_store(std::size_t dim, Metric metric, std::size_t subquantizers, int bits);

}  // namespace vecdex
