// RaBitQ codes (Gao & Long, SIGMOD 2024) and extended multi-bit RaBitQ (SIGMOD 2025) as a
// CodeStore.
//
// Training learns C centroids (IVF-RaBitQ): the count asked for (1 to kMaxRaBitQCentroids), or by
// default C = clamp(n / 2048, 1, 16) for n training rows with 1-bit codes and C = 1 with more
// bits. C = 1 is the mean of the rows; otherwise k-means (k-means++ seeding from
// std::mt19937_64 with kRaBitQSeed, then up to 10 Lloyd iterations) on at most 20,000 rows
// (evenly strided). A default C > 1 is kept only if it leaves at most 80% of the sample's squared
// residual to its mean (else C = 1: weakly clustered data such as real sentence embeddings gain
// too little to pay for it). Each row
// is coded against its nearest centroid c (l2), whose id (u8) is kept per row when C > 1; below,
// c always means the row's own centroid. Clustered data gain the most: the estimator's error
// scales with |x - c| |q - c|, which a global centroid leaves dominated by the cluster offsets.
// Training also fixes a random orthogonal rotation P (one for all centroids) on the
// dimension zero-padded to D = a multiple of 64 (at least 64): three rounds of (random +-1
// diagonal, then normalised Walsh-Hadamard transforms of the first and of the last H coordinates,
// H the largest power of two <= D; the blocks overlap and cover all D, and are one transform when
// D is a power of two), the signs drawn from std::mt19937_64 with a fixed seed (kRaBitQSeed) and
// saved in the file.
//
// A row x is stored as r = P(x - c) / |x - c| (a unit vector in D dimensions) quantised to a grid
// of B bits per dimension: y_i = sign(r_i) * (min(floor(t |r_i|), 2^(B-1) - 1) + 1/2), i.e. code
// u_i = y_i + (2^B - 1)/2 in [0, 2^B), with the per-row rescale t chosen to maximise
// <o_bar, r>, o_bar = y / |y| (exactly, by sweeping the critical points of t in the window the
// RaBitQ library uses). B = 1 is the original RaBitQ: u_i = [r_i >= 0], o_bar = (2u - 1)/sqrt(D).
// Per row two float32 scoring factors, in an array of their own: A and B with distance ~ A + (query term) + B <y, q'> (A = |x-c|^2, B = -2|x-c|/<y,r> for
// l2; A = 1 - <x-c,c>, B = -|x-c|/<y,r> for ip/cosine); and in a separate array, read only to
// re-rank, decode or build, |x - c| for ip/cosine (for l2 it is sqrt(A)) and <o_bar, r> for
// B >= 2 (for B = 1 it follows from <y, r>, |y| = sqrt(D)/2).
// Code layout per row: B = 1, D/8 bytes, bit i of byte j is dimension 8j + i (so little-endian
// 64-bit words hold dimensions 64w..64w+63 from bit 0 up); B = 2..4, D/2 bytes, dimension 2j in
// the low nibble of byte j and 2j+1 in the high one (the SQ4 layout); B = 5..8, D bytes.
// bytes_per_row() = those bytes + 8 (A, B), + 4 for ip/cosine, + 4 for B >= 2, + 1 (centroid id) for C > 1. Encoding costs 3 FWHTs per row for B = 1, plus
// the rescale sweep for B >= 2 (O(D log D) heap operations, ~10 us at D = 256, B = 4; ~100 us at B = 8).
// decode(i) = c + |x - c| P^T(y <y, r> / |y|^2) (the projection of r on the code direction), cut
// to dim; pair_distances(a, .) measures row a's decoding as a prepared query, built in the
// rotated space straight from the code (no transform: <c, c + P^T v> = |c|^2 + <P c, v>), for
// rows b of a's centroid c_a; for a row b of another centroid c_b, <y_b, v + P(c_a - c_b)> adds
// to that the dot of y_b with P(c_a - c_b), quantised like a query once per centroid pair at
// train / load, and the query term |x_hat - c_b|^2 (or <c_b, x_hat>) is computed once per
// distinct c_b in the call.
//
// Estimator for a query q (prepared once per centroid c_j: q' = P q - P c_j, P c_j computed at
// train / load, then quantised; with C > 1 each centroid's variant is prepared on the first row
// of that centroid scored, and row i uses the variant of its own centroid):
//   <r, q'> ~ <o_bar, q'> / <o_bar, r> = <y, q'> / <y, r>
//   l2:        |x - q|^2 ~ |x - c|^2 + |q - c|^2 - 2 |x - c| est
//   ip/cosine: <x, q> = |x - c| est + <x - c, c> + <c, q>,  distance 1 - <x, q>
// Estimated l2 distances are not clamped at 0, so the ranking between close rows is kept.
// Query quantisation: B = 1 quantises q' to 4 bits per dimension (uniform grid lo + delta * k,
// round to nearest) held as four bit-planes, so <u, q'> is a weighted sum of popcounts (exact
// integer kernel, scalar / AVX2 / AVX-512BW). B >= 2 quantises q' to int8 (symmetric, scale
// max|q'_i| / 127) and uses the exact integer dot kernels of QuantKernels (dot_u4_i8 for B <= 4,
// codes two per byte; dot_u8_i8 for B >= 5, one byte per code).
//
// Error bound (RaBitQ Theorem 3.2): with probability about 1 - 2 exp(-c0 eps0^2),
//   |<o_bar, q_n> / <o_bar, r> - <r, q_n>| <= eps0 * sqrt((1 - <o_bar, r>^2) / <o_bar, r>^2) / sqrt(D - 1)
// for the unit query q_n = q' / |q'|. estimate() returns that bound scaled to distances, plus the
// error of the query's quantisation (rounding errors uniform in +-step/2 per rotated coordinate,
// step = the query grid's step), combined as independent Gaussian terms:
//   bound = eps0 * m * |x - c| / <o_bar, r> * sqrt(|q - c|^2 (1 - <o_bar, r>^2) / (D - 1) + step^2 / 12)
// (c the row's centroid, step that of the query's variant for it)
// with m = 2 for l2 (the estimate enters as -2 |x - c| est) and 1 for ip / cosine. The error is
// close to Gaussian with eps0 = 1 standing for one standard deviation: measured on clustered and
// Gaussian data (D = 64..256, every bit width), |error| <= bound for ~94.5% of pairs at the
// paper's eps0 = 1.9, ~99.2% at eps0 = 2.6 and ~99.8% at eps0 = 3. A reranker that must not lose
// true neighbours should prune with distance - bound at eps0 >= 2.6.
#pragma once

#include <cstdint>
#include <memory>

#include "vecdex/io/file_format.h"
#include "vecdex/storage/code_store.h"

namespace vecdex {

namespace section {
constexpr std::uint32_t kRaBitQParams = fourcc('Q', 'R', 'B', 'P');   // u32[8]: version, dim, D, bits, rounds, seed lo, seed hi, 0
constexpr std::uint32_t kRaBitQCentroid = fourcc('Q', 'R', 'B', 'M'); // f32 centroids (count x dim; one up to v3)
constexpr std::uint32_t kRaBitQSigns = fourcc('Q', 'R', 'B', 'S');    // i8 +-1, rounds * D (round-major)
constexpr std::uint32_t kRaBitQCodes = fourcc('Q', 'R', 'B', 'C');    // u8 codes, D*B/8 bytes per row
constexpr std::uint32_t kRaBitQScoring = fourcc('Q', 'R', 'B', 'H');  // v3: f32 A, B per row
// v3: per row f32 |x-c| (ip/cosine), then f32 <o_bar,r> (bits >= 2); absent when neither applies
constexpr std::uint32_t kRaBitQAux = fourcc('Q', 'R', 'B', 'A');
constexpr std::uint32_t kRaBitQCentroidIds = fourcc('Q', 'R', 'B', 'I');  // v4, > 1 centroid: u8 centroid id per row
constexpr std::uint32_t kRaBitQFactors = fourcc('Q', 'R', 'B', 'F');  // v2 only: f32 |x-c|, <y,r>, <x-c,c>, <o_bar,r>
}  // namespace section

constexpr std::uint64_t kRaBitQSeed = 0x5241426974510001ull;  // "RABitQ" + 1
constexpr int kRaBitQRounds = 3;
constexpr std::size_t kMaxRaBitQCentroids = 64;  // centroid ids are u8; each costs a query quantisation
constexpr double kRaBitQEps0 = 1.9;  // the paper's choice: ~94.5% coverage (see above)

class RaBitQStore : public CodeStore {
 public:
  virtual int bits() const = 0;
  // The padded (rotated) dimension D.
  virtual std::size_t padded_dim() const = 0;
  // Estimated distances from `query` (in the stored space) to rows ids[0..n), and the error
  // bound of each (eps0 as in the header comment); `bound` may be nullptr.
  virtual void estimate(const float* query, const node_t* ids, std::size_t n, float* dist, float* bound,
                        double eps0 = kRaBitQEps0) const = 0;
};

// bits: 1 (RaBitQ) to 8 (extended RaBitQ). Returns a RaBitQStore, whose quantization() is
// Quantization(6 + bits) (rabitq1 = 7 ... rabitq8 = 14; see quantization_for_bits in the .cpp).
// centroids: how many to learn at train(); 0 lets the store choose (see above).
std::unique_ptr<CodeStore> make_rabitq_store(std::size_t dim, Metric metric, int bits, std::size_t centroids = 0);

}  // namespace vecdex
