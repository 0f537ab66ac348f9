// RaBitQ / extended RaBitQ codes: see rabitq_store.h for the scheme, the estimator and its bound.
#include "vecdex/storage/prepared_store.h"
#include "vecdex/storage/rabitq_store.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <utility>
#include <vector>

#include "vecdex/simd/dispatch.h"
#include "vecdex/simd/prefetch.h"
#include "vecdex/simd/quant_kernels.h"
#include "vecdex/simd/rabitq_kernels.h"
#include "vecdex/storage/aligned_array.h"

namespace vecdex {

namespace {

// 2: rotated dimension a multiple of 64, block Hadamard; 3: two scoring factors per row (A, B)
// in their own array, the others (read only to re-rank, decode or build) in a third; 4: up to
// kMaxRaBitQCentroids k-means centroids (params[7] = their count) and a centroid id per row (QRBI).
constexpr std::uint32_t kFormatVersion = 4;
// Centroids, when left to the store (1-bit codes only): clamp(n / kRowsPerCentroid, 1,
// kAutoCentroids) for n training rows. Learnt by kKMeansIters Lloyd iterations (k-means++
// seeding) on at most kKMeansSample rows. Multi-bit codes keep one centroid unless asked: their
// estimates are already close (rabitq4 on the clustered synthetic768 re-ranks to the same
// recall with one centroid or 14), and each centroid a walk meets costs one more query
// quantisation (rabitq4 lost 20% QPS with 14).
constexpr std::size_t kRowsPerCentroid = 2048;
constexpr std::size_t kAutoCentroids = 16;
constexpr std::size_t kKMeansSample = 20000;
constexpr int kKMeansIters = 10;
// The centroids are kept only when they leave at most this share of the sample's squared
// residual to its mean (the estimator's error scales with |x - c| |q - c|); otherwise one
// centroid, the mean. Weakly clustered data gain little from several centroids and lose to the
// cross-centroid terms of pair_distances: real MiniLM embeddings (debian, 384-d) keep 0.86 at 16
// centroids and lost recall with them; the clustered synthetic768 keeps 0.75 and gains.
constexpr double kMaxResidualRatio = 0.8;
constexpr std::size_t kOldFactors = 4;  // version 2: f32 |x-c|, <y,r>, <x-c,c>, <o_bar,r> per row
// Where the rescale sweep starts, as a fraction of its end, by extra bits (B - 1): the window of
// the RaBitQ library (outside it the best rescale factor is not found in practice).
constexpr double kTightStart[9] = {0, 0.15, 0.20, 0.52, 0.59, 0.71, 0.75, 0.77, 0.81};

// The rotated dimension: dim rounded up to whole 64-bit code words. Padding to a power of two
// instead would cost a third more code bits at dim 384 (512) for nothing.
std::size_t padded_dim_for(std::size_t dim) { return std::max<std::size_t>(64, (dim + 63) / 64 * 64); }

// The largest power of two not above n: the size of the Hadamard blocks of the rotation.
std::size_t hadamard_block(std::size_t n) {
  std::size_t h = 1;
  while (2 * h <= n) h <<= 1;
  return h;
}

// The Quantization value of a RaBitQ store with `bits` bits: 6 + bits (rabitq1 = 7 ... rabitq8 =
// 14, after PQ = 6), matching Quantization::RaBitQ1..RaBitQ8 once those are in code_store.h. If
// other values are chosen there, change only this function (and the factory's mapping to bits).
Quantization quantization_for_bits(int bits) { return static_cast<Quantization>(6 + bits); }

// min and max of v[0, n) (finite floats), on order-preserving integer keys so the loop
// vectorises (a float max reduction does not without -ffast-math); a query is quantised once per
// centroid, so this is on the query path.
inline std::int32_t float_key(float x) {
  std::int32_t u;
  std::memcpy(&u, &x, 4);
  return u ^ ((u >> 31) & 0x7FFFFFFF);
}
inline float key_float(std::int32_t k) {
  const std::int32_t u = k ^ ((k >> 31) & 0x7FFFFFFF);
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
inline std::pair<float, float> float_min_max(const float* v, std::size_t n) {
  std::int32_t lo = float_key(v[0]), hi = lo;
  for (std::size_t j = 0; j < n; ++j) {
    const std::int32_t k = float_key(v[j]);
    lo = k < lo ? k : lo;
    hi = k > hi ? k : hi;
  }
  return {key_float(lo), key_float(hi)};
}
// max |v_j| of v[0, n): the bits of |x| order as unsigned integers.
inline float float_abs_max(const float* v, std::size_t n) {
  std::uint32_t m = 0;
  for (std::size_t j = 0; j < n; ++j) {
    std::uint32_t u;
    std::memcpy(&u, v + j, 4);
    u &= 0x7FFFFFFFu;
    m = u > m ? u : m;
  }
  float x;
  std::memcpy(&x, &m, 4);
  return x;
}

// The scalars of a query prepared against one centroid c_j (its quantised rotated residual
// P(q - c_j) lives in Prepared's planes / q8, at slot j).
struct QueryTerms {
  // bits == 1: 4-bit query as bit-planes, q'_i ~ lo + delta * k_i.
  float lo = 0.f, delta = 0.f, sum_k = 0.f;
  // bits >= 2: int8 query, q'_i ~ scale * k_i.
  float scale = 0.f, sum_q8 = 0.f;
  float q_offset = 0.f;  // (2^B - 1)/2 * sum_q8: the grid's offset, folded out of the integer dot
  float qc_norm2 = 0.f;  // |q - c_j|^2
  float cq = 0.f;        // <c_j, q>
  float qconst = 0.f;    // the query's share of every distance: |q - c_j|^2 (l2) or -<c_j, q> (ip)
};

// A query prepared once: one quantised rotated residual per centroid (slot j for centroid j).
// With several centroids the slots are filled on the first row of their centroid that is
// scored (a graph walk meets few of them), from P q and the per-centroid terms; a Prepared is
// used by one thread at a time, so the lazily filled members are mutable.
struct Prepared {
  mutable std::vector<QueryTerms> terms;      // one per centroid
  mutable std::vector<std::uint64_t> planes;  // bits == 1: 4 * D/64 words per centroid
  mutable std::vector<std::int8_t> q8;        // bits >= 2: D per centroid
  mutable std::vector<std::uint8_t> ready;    // several centroids: slot j filled
  std::vector<float> pq;                      // several centroids: P q (D floats)
  std::vector<float> qc2, cq;                 // several centroids: |q - c_j|^2, <c_j, q>
};

class RaBitQStoreImpl final : public PreparedQueryStore<RaBitQStoreImpl, RaBitQStore> {
 public:
  using Prepared = vecdex::Prepared;
  RaBitQStoreImpl(std::size_t dim, Metric metric, int bits, std::size_t centroids)
      : dim_(dim), D_(padded_dim_for(dim)), metric_(metric), bits_(bits), requested_centroids_(centroids),
        row_bytes_(bits == 1 ? D_ / 8 : bits <= 4 ? D_ / 2 : D_),
        aux_stride_(aux_stride_for(metric, bits)) {
    if (bits < 1 || bits > 8) throw InvalidArgument("rabitq bits must be between 1 and 8, got " + std::to_string(bits));
    if (centroids > kMaxRaBitQCentroids)
      throw InvalidArgument("rabitq_centroids must be at most " + std::to_string(kMaxRaBitQCentroids) + ", got " +
                            std::to_string(centroids));
    std::mt19937_64 gen(kRaBitQSeed);
    signs_.resize(std::size_t(kRaBitQRounds) * D_);
    for (std::size_t i = 0; i < signs_.size(); ++i) signs_[i] = (gen() >> 63) ? std::int8_t(-1) : std::int8_t(1);
    float_signs_.assign(signs_.data(), signs_.data() + signs_.size());
  }

  // ------------------------------------------------------------------ RaBitQStore
  int bits() const override { return bits_; }
  std::size_t padded_dim() const override { return D_; }
  void estimate(const float* query, const node_t* ids, std::size_t n, float* dist, float* bound,
                double eps0) const override {
    estimate_prepared(prepare(query), ids, n, dist, bound, eps0);
  }
  void estimate_prepared(const Prepared& p, const node_t* ids, std::size_t n, float* dist, float* bound,
                         double eps0) const {
    // Rotation term |q - c|^2 (1 - o^2) / (D - 1) plus the query-quantisation term step^2 / 12
    // (rounding errors uniform in +-step/2 on every rotated coordinate), both divided by o^2;
    // c is the row's own centroid.
    const double mult = eps0 * (metric_ == Metric::L2 ? 2.0 : 1.0);
    for (std::size_t i = 0; i < n; ++i) {
      dist[i] = score(p, ids[i]);
      if (bound) {
        const QueryTerms& t = p.terms[centroid_of(ids[i])];
        const double step = bits_ == 1 ? t.delta : t.scale;
        const double q2 = double(t.qc_norm2), quant2 = step * step / 12.0;
        double f0, f1;
        row_factors(ids[i], &f0, &f1);
        const double o = std::min(1.0, std::max(1e-6, code_alignment(ids[i], f1)));
        bound[i] = static_cast<float>(mult * f0 / o * std::sqrt(q2 * (1.0 - o * o) / double(D_ - 1) + quant2));
      }
    }
  }

  // ------------------------------------------------------------------ VectorStore
  std::size_t dim() const override { return dim_; }
  std::size_t size() const override { return scoring_.size() / 2; }
  Metric metric() const override { return metric_; }

  std::size_t memory_bytes() const override {
    return codes_.bytes() + scoring_.bytes() + aux_.bytes() + cid_.bytes() + centroids_.bytes() + signs_.bytes() +
           rotated_centroids_.size() * sizeof(float) + pair_.planes.size() * 8 + pair_.q8.size() +
           pair_.terms.size() * sizeof(QueryTerms);
  }

  // ------------------------------------------------------------------ CodeStore
  Quantization quantization() const override { return quantization_for_bits(bits_); }
  bool trained() const override { return nc_ > 0; }
  // One centroid: the mean of all rows. More: k-means on a sample; when the count is the
  // store's choice, kept only if they leave at most kMaxResidualRatio of the residual.
  void train(const float* rows, std::size_t n) override {
    if (n == 0) throw InvalidArgument("training needs at least one vector");
    const bool automatic = requested_centroids_ == 0;
    std::size_t nc = !automatic ? std::min(requested_centroids_, n)
                     : bits_ == 1 ? std::min(kAutoCentroids, std::max<std::size_t>(1, n / kRowsPerCentroid))
                                  : 1;
    AlignedArray<float> c;
    c.resize(nc * dim_);
    if (nc > 1 && kmeans(rows, n, nc, c.mutable_data()) > kMaxResidualRatio && automatic) {
      nc = 1;
      c = AlignedArray<float>();  // (not resize: that would keep the capacity of nc rows)
      c.resize(dim_);
    }
    if (nc == 1) {
      std::vector<double> mean(dim_, 0.0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < dim_; ++j) mean[j] += rows[i * dim_ + j];
      for (std::size_t j = 0; j < dim_; ++j) c[j] = static_cast<float>(mean[j] / double(n));
    }
    centroids_ = std::move(c);
    nc_ = nc;
    derive_centroid_terms();
  }
  std::size_t centroids() const { return nc_; }
  void reserve(std::size_t n) override {
    if (nc_ > 1) cid_.reserve(n);
    codes_.reserve(n * row_bytes_);
    scoring_.reserve(2 * n);
    aux_.reserve(n * aux_stride_);
  }
  void append(const float* rows, std::size_t n) override {
    if (!trained()) throw InvalidArgument("rabitq store: train() before append()");
    const std::size_t old = size();
    codes_.resize((old + n) * row_bytes_, 0);
    scoring_.resize(2 * (old + n));
    aux_.resize((old + n) * aux_stride_);
    if (nc_ > 1) cid_.resize(old + n, 0);
    std::uint8_t* out = codes_.mutable_data();
    float* ab = scoring_.mutable_data();
    float* aux = aux_.mutable_data();
    std::uint8_t* ids = nc_ > 1 ? cid_.mutable_data() : nullptr;
#pragma omp parallel for schedule(dynamic, 64) if (n > 512)
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) {
      const std::size_t row = old + std::size_t(i);
      const float* x = rows + std::size_t(i) * dim_;
      const std::size_t j = nearest_centroid(x);
      if (ids) ids[row] = static_cast<std::uint8_t>(j);
      const Factors f = encode(x, j, out + row * row_bytes_);
      ab[2 * row] = f.a;
      ab[2 * row + 1] = f.b;
      store_aux(aux + row * aux_stride_, f);
    }
  }
  void decode(node_t i, float* out) const override {
    thread_local std::vector<float> v;
    v.resize(D_);
    rotated_residual(i, v.data());
    unrotate(v.data());
    const float* c = centroid(centroid_of(i));
    for (std::size_t j = 0; j < dim_; ++j) out[j] = c[j] + v[j];
  }
  // Pair distances for graph construction: row a's decoding x_hat = c + P^T v, v = s y, is the
  // query, prepared in the rotated space straight from the code, with no transform and (for up
  // to 4 bits) no query quantisation error: 2y is an exact int8 query (|2y| <= 15), and for one
  // bit the 4-bit query grid {-s/2, s/2} is exact too. |v|^2 = s^2 |y|^2 and
  // <c, x_hat> = |c|^2 + s <P c, y>. That holds for rows b of a's own centroid c_a; for a row
  // of another centroid c_j, x_hat is prepared as a generic query against c_j in the rotated
  // space, P(x_hat - c_j) = v + P c_a - P c_j (once per distinct centroid in the call).
  void pair_distances(node_t a, const node_t* b, std::size_t n, float* out) const override {
    thread_local Prepared p;
    size_prepared(p, 1);
    prepare_row(a, p, 0);
    if (nc_ <= 1) {
      for (std::size_t i = 0; i < n; ++i) out[i] = score_at(p, 0, b[i]);
      return;
    }
    // Row b of another centroid c_j: <y_b, P(x_hat - c_j)> = <y_b, v> + <y_b, P(c_a - c_j)>, the
    // first from a's prepared code as above, the second from the quantised centroid difference
    // prepared at train / load (pair_); the query term |x_hat - c_j|^2 or <c_j, x_hat> once per
    // distinct c_j, from P x_hat = v + P c_a.
    thread_local std::vector<std::uint8_t> ready;
    thread_local std::vector<float> qconst;
    thread_local std::vector<float> xa;
    const std::size_t ca = centroid_of(a);
    const float own = p.terms[0].qconst;
    ready.assign(nc_, 0);
    qconst.resize(nc_);
    bool have_xa = false;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t j = cid_[b[i]];
      const std::uint8_t* c = code(b[i]);
      const float* ab = scoring_.data() + 2 * std::size_t(b[i]);
      float y = ydot(p, 0, c);
      float q0 = own;
      if (j != ca) {
        if (!ready[j]) {
          if (!have_xa) {
            xa.resize(D_);
            rotated_residual(a, xa.data());
            const float* rc = rotated_centroids_.data() + ca * D_;
            for (std::size_t t = 0; t < D_; ++t) xa[t] += rc[t];
            have_xa = true;
          }
          const float* rc = rotated_centroids_.data() + j * D_;
          qconst[j] = metric_ == Metric::L2 ? kernels().l2sq(xa.data(), rc, D_) : -kernels().dot(xa.data(), rc, D_);
          ready[j] = 1;
        }
        y += ydot(pair_, ca * nc_ + j, c);
        q0 = qconst[j];
      }
      out[i] = ab[0] + q0 + ab[1] * y;
    }
  }
  // Slot `slot` of p (sized) <- row a's decoding as a query against a's own centroid.
  void prepare_row(node_t a, Prepared& p, std::size_t slot) const {
    const std::size_t ca = centroid_of(a);
    const float* rotated_centroid = rotated_centroids_.data() + ca * D_;
    if (bits_ > 4) {  // 2y does not fit in int8: quantise the decoded residual as a query
      thread_local std::vector<float> v;
      v.resize(D_);
      rotated_residual(a, v.data());
      double qc2 = 0.0, cv = 0.0;
      for (std::size_t j = 0; j < D_; ++j) {
        qc2 += double(v[j]) * v[j];
        cv += double(rotated_centroid[j]) * v[j];
      }
      finish_prepare(v.data(), qc2, centroid_norm2_[ca] + cv, p, slot);
      return;
    }
    QueryTerms& t = p.terms[slot];
    const std::uint8_t* c = code(a);
    double f0, f1;
    row_factors(a, &f0, &f1);
    const double n2 = code_norm2(a, f1);
    const double s = n2 > 0.0 ? f0 * f1 / n2 : 0.0;
    double cy = 0.0;  // <P c, y>, for ip/cosine
    if (bits_ == 1) {
      const std::size_t words = D_ / 64;
      const auto* w = reinterpret_cast<const std::uint64_t*>(c);
      std::uint64_t* planes = p.planes.data() + slot * 4 * words;
      std::uint64_t ones = 0;
      for (std::size_t b = 0; b < 4; ++b) std::copy(w, w + words, planes + b * words);
      for (std::size_t i = 0; i < words; ++i) ones += static_cast<std::uint64_t>(__builtin_popcountll(w[i]));
      t.lo = static_cast<float>(-0.5 * s);
      t.delta = static_cast<float>(s / 15.0);
      t.sum_k = 15.f * float(ones);
      if (metric_ != Metric::L2)
        for (std::size_t j = 0; j < D_; ++j) cy += ((c[j >> 3] >> (j & 7)) & 1u) ? rotated_centroid[j] : -rotated_centroid[j];
      cy *= 0.5;
    } else {
      const int top = (1 << bits_) - 1;  // 2y = 2u - top
      std::int8_t* q8 = p.q8.data() + slot * D_;
      std::int64_t sum = 0;
      for (std::size_t j = 0; j < D_; j += 2) {
        const int lo = 2 * (c[j >> 1] & 15) - top, hi = 2 * (c[j >> 1] >> 4) - top;
        q8[j] = static_cast<std::int8_t>(lo);
        q8[j + 1] = static_cast<std::int8_t>(hi);
        sum += lo + hi;
      }
      if (metric_ != Metric::L2)
        for (std::size_t j = 0; j < D_; ++j) cy += 0.5 * double(rotated_centroid[j]) * q8[j];
      t.scale = static_cast<float>(0.5 * s);
      t.sum_q8 = static_cast<float>(sum);
      t.q_offset = 0.5f * float(top) * t.sum_q8;
    }
    t.qc_norm2 = static_cast<float>(s * s * n2);
    t.cq = static_cast<float>(centroid_norm2_[ca] + s * cy);
    t.qconst = metric_ == Metric::L2 ? t.qc_norm2 : -t.cq;
  }
  bool is_view() const override { return codes_.is_view(); }
  void write(IndexFileWriter& w) const override {
    AlignedArray<std::uint32_t> params;
    params.resize(8);
    params[0] = kFormatVersion;
    params[1] = static_cast<std::uint32_t>(dim_);
    params[2] = static_cast<std::uint32_t>(D_);
    params[3] = static_cast<std::uint32_t>(bits_);
    params[4] = static_cast<std::uint32_t>(kRaBitQRounds);
    params[5] = static_cast<std::uint32_t>(kRaBitQSeed & 0xFFFFFFFFu);
    params[6] = static_cast<std::uint32_t>(kRaBitQSeed >> 32);
    params[7] = static_cast<std::uint32_t>(nc_);
    w.add_array(section::kRaBitQParams, params);
    w.add_array(section::kRaBitQCentroid, centroids_);
    w.add_array(section::kRaBitQSigns, signs_);
    w.add_array(section::kRaBitQCodes, codes_);
    w.add_array(section::kRaBitQScoring, scoring_);
    if (aux_stride_) w.add_array(section::kRaBitQAux, aux_);
    if (nc_ > 1) w.add_array(section::kRaBitQCentroidIds, cid_);
  }
  void read(const IndexFileReader& r, std::size_t count, bool view) override {
    AlignedArray<std::uint32_t> params = r.array<std::uint32_t>(section::kRaBitQParams, 8, false);
    const std::uint32_t version = params[0];
    // params[7]: the number of centroids (version 4; up to version 3, 0 or 1: trained or not).
    const std::uint32_t max_nc = version >= 4 ? std::uint32_t(kMaxRaBitQCentroids) : 1u;
    if ((version < 2 || version > kFormatVersion) || params[1] != dim_ || params[2] != D_ ||
        params[3] != std::uint32_t(bits_) || params[4] != std::uint32_t(kRaBitQRounds) || params[7] > max_nc)
      throw FormatError("corrupt index file: invalid rabitq parameters");
    const std::size_t nc = params[7];
    if (nc == 0 && count > 0) throw FormatError("corrupt index file: rabitq rows without a centroid");
    AlignedArray<float> centroids = r.array<float>(section::kRaBitQCentroid, nc * dim_, false);
    for (std::size_t j = 0; j < centroids.size(); ++j)
      if (!std::isfinite(centroids[j])) throw FormatError("corrupt index file: invalid rabitq centroid");
    AlignedArray<std::uint8_t> ids;
    if (nc > 1) {
      ids = r.array<std::uint8_t>(section::kRaBitQCentroidIds, count, view);
      for (std::size_t i = 0; i < count; ++i)
        if (ids[i] >= nc) throw FormatError("corrupt index file: invalid rabitq centroid id");
    }
    AlignedArray<std::int8_t> signs = r.array<std::int8_t>(section::kRaBitQSigns, std::size_t(kRaBitQRounds) * D_, false);
    for (std::size_t j = 0; j < signs.size(); ++j)
      if (signs[j] != 1 && signs[j] != -1) throw FormatError("corrupt index file: invalid rabitq rotation");
    AlignedArray<std::uint8_t> codes = r.array<std::uint8_t>(section::kRaBitQCodes, count * row_bytes_, view);
    AlignedArray<float> scoring, aux;
    if (version == 2) {
      // Four factors per row: converted to this version's (so those arrays are never views).
      AlignedArray<float> old = r.array<float>(section::kRaBitQFactors, count * kOldFactors, false);
      scoring.resize(2 * count);
      aux.resize(count * aux_stride_);
      for (std::size_t i = 0; i < count; ++i) {
        const float* f = old.data() + i * kOldFactors;
        const Factors fac = factors_from(f[0], f[1], f[2], f[3]);
        scoring[2 * i] = fac.a;
        scoring[2 * i + 1] = fac.b;
        store_aux(aux.mutable_data() + i * aux_stride_, fac);
      }
    } else {
      scoring = r.array<float>(section::kRaBitQScoring, 2 * count, view);
      if (aux_stride_) aux = r.array<float>(section::kRaBitQAux, count * aux_stride_, view);
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (!std::isfinite(scoring[2 * i]) || !std::isfinite(scoring[2 * i + 1]))
        throw FormatError("corrupt index file: invalid rabitq factors");
      for (std::size_t j = 0; j < aux_stride_; ++j) {
        const float v = aux[i * aux_stride_ + j];
        if (!(v >= 0.f && v <= (j + 1 == aux_stride_ && bits_ > 1 ? 1.f : 3.0e38f)))
          throw FormatError("corrupt index file: invalid rabitq row factors");
      }
    }
    centroids_ = std::move(centroids);
    nc_ = nc;
    cid_ = std::move(ids);
    signs_ = std::move(signs);
    float_signs_.assign(signs_.data(), signs_.data() + signs_.size());
    codes_ = std::move(codes);
    scoring_ = std::move(scoring);
    aux_ = std::move(aux);
    derive_centroid_terms();
  }
  // (+1 byte, the centroid id, with more than one centroid)
  std::size_t bytes_per_row() const override {
    return row_bytes_ + (2 + aux_stride_) * sizeof(float) + (nc_ > 1 ? 1 : 0);
  }

  // ------------------------------------------------------------------ scoring
  const std::uint8_t* code(node_t i) const { return codes_.data() + std::size_t(i) * row_bytes_; }
  std::size_t code_bytes() const { return row_bytes_; }
  void prefetch(node_t i) const {
    prefetch_l2_range(code(i), row_bytes_);
    prefetch_l2(scoring_.data() + 2 * std::size_t(i));
    if (nc_ > 1) prefetch_l2(cid_.data() + std::size_t(i));
  }

  // Row i's centroid (0 with a single centroid, whose rows keep no ids).
  std::size_t centroid_of(node_t i) const { return nc_ > 1 ? cid_.data()[i] : 0; }
  const float* centroid(std::size_t j) const { return centroids_.data() + j * dim_; }

  // distance ~ A + qconst + B * <y, q'> (see Factors), with the query prepared against the
  // row's centroid.
  float score(const Prepared& p, node_t i) const {
    const std::size_t j = centroid_of(i);
    if (nc_ > 1 && !p.ready[j]) fill_slot(p, j);
    return score_at(p, j, i);
  }
  float score_at(const Prepared& p, std::size_t slot, node_t i) const {
    const float* ab = scoring_.data() + 2 * std::size_t(i);
    return ab[0] + p.terms[slot].qconst + ab[1] * ydot(p, slot, code(i));
  }
  // <y, q'> for code c and the query in slot `slot` of p.
  float ydot(const Prepared& p, std::size_t slot, const std::uint8_t* c) const {
    const QueryTerms& t = p.terms[slot];
    if (bits_ == 1) {
      std::uint32_t ip, pc;
      const std::size_t words = D_ / 64;
      rabitq_kernels().ip_bin_u4(reinterpret_cast<const std::uint64_t*>(c), p.planes.data() + slot * 4 * words,
                                 words, &ip, &pc);
      return t.lo * (float(pc) - 0.5f * float(D_)) + t.delta * (float(ip) - 0.5f * t.sum_k);
    }
    return t.scale * (float(dot_codes(c, p.q8.data() + slot * D_)) - t.q_offset);
  }
  // Slot j of p <- P q - P c_j, quantised.
  void fill_slot(const Prepared& p, std::size_t j) const {
    thread_local std::vector<float> w;
    w.resize(D_);
    const float* rc = rotated_centroids_.data() + j * D_;
    for (std::size_t t = 0; t < D_; ++t) w[t] = p.pq[t] - rc[t];
    finish_prepare(w.data(), p.qc2[j], p.cq[j], p, j);
    p.ready[j] = 1;
  }

  // One centroid: P(q - c), as up to version 3. More: P q once, then P q - P c_j per centroid.
  Prepared prepare(const float* q) const {
    Prepared p;
    size_prepared(p, std::max<std::size_t>(nc_, 1));
    thread_local std::vector<float> v;
    v.assign(D_, 0.f);
    if (nc_ > 1) {  // the slots are filled on first use (fill_slot)
      p.pq.assign(D_, 0.f);
      std::copy(q, q + dim_, p.pq.begin());
      rotate(p.pq.data());
      p.ready.assign(nc_, 0);
      p.qc2.resize(nc_);
      p.cq.resize(nc_);
      for (std::size_t j = 0; j < nc_; ++j) {
        const float* c = centroid(j);
        p.qc2[j] = kernels().l2sq(q, c, dim_);
        p.cq[j] = kernels().dot(c, q, dim_);
      }
      return p;
    }
    double qc2, cq = 0.0;
    if (trained()) {  // an untrained store has no rows to measure, but stays safe
      const float* c = centroids_.data();
      for (std::size_t j = 0; j < dim_; ++j) v[j] = q[j] - c[j];
      cq = kernels().dot(c, q, dim_);
    } else {
      std::copy(q, q + dim_, v.begin());
    }
    qc2 = kernels().dot(v.data(), v.data(), dim_);
    rotate(v.data());
    finish_prepare(v.data(), qc2, cq, p, 0);
    return p;
  }

 private:
  // A row's factors: with f0 = |x - c|, f1 = <y, r>, f2 = <x - c, c>, the estimate
  // <r, q'> ~ <y, q'> / f1 gives
  //   l2:        |x - q|^2 ~ f0^2 + |q - c|^2 - 2 f0 <y, q'> / f1  ->  A = f0^2,    B = -2 f0 / f1
  //   ip/cosine: 1 - <x, q> ~ 1 - f2 - <c, q> - f0 <y, q'> / f1   ->  A = 1 - f2,  B = -f0 / f1
  // so scoring reads two floats beside the code. f0 is kept apart for ip/cosine (the bound and
  // decode need it; for l2 it is sqrt(A)), and f1 follows from f0 and B.
  // A and B live apart from the codes: a code row of D/2 bytes (4 bits) is whole cache lines for
  // D a multiple of 128, and eight rows' factors share one line that stays cached, where factors
  // beside the codes made a graph walk touch a fifth line per row (measured 20% slower at D = 384).
  // Besides A and B, rows keep in aux_ (read only when re-ranking, decoding or building):
  // |x - c| for ip/cosine, and o = <o_bar, r> = <y, r> / |y| for B >= 2 (for one bit
  // |y| = sqrt(D) / 2 is fixed).
  struct Factors {
    float a = 0.f, b = 0.f, norm = 0.f, alignment = 1.f;
  };
  bool keeps_norms() const { return metric_ != Metric::L2; }
  static std::size_t aux_stride_for(Metric metric, int bits) {
    return (metric != Metric::L2 ? 1 : 0) + (bits > 1 ? 1 : 0);
  }
  void store_aux(float* aux, const Factors& f) const {
    if (keeps_norms()) *aux++ = f.norm;
    if (bits_ > 1) *aux = f.alignment;
  }
  Factors factors_from(double f0, double f1, double f2, double alignment) const {
    Factors f;
    f.norm = static_cast<float>(f0);
    f.alignment = static_cast<float>(std::min(1.0, std::max(0.0, alignment)));
    const double slope = f1 > 0.0 ? f0 / f1 : 0.0;
    if (metric_ == Metric::L2) {
      f.a = static_cast<float>(f0 * f0);
      f.b = static_cast<float>(-2.0 * slope);
    } else {
      f.a = static_cast<float>(1.0 - f2);
      f.b = static_cast<float>(-slope);
    }
    return f;
  }
  // f0 = |x - c| and f1 = <y, r> of row i, back from A, B (and the norm for ip/cosine).
  void row_factors(node_t i, double* f0, double* f1) const {
    const float* ab = scoring_.data() + 2 * std::size_t(i);
    *f0 = keeps_norms() ? double(aux_[std::size_t(i) * aux_stride_]) : std::sqrt(std::max(0.0, double(ab[0])));
    const double slope = -double(ab[1]) / (metric_ == Metric::L2 ? 2.0 : 1.0);  // f0 / f1
    *f1 = slope > 0.0 ? *f0 / slope : 0.0;
  }
  // o = <o_bar, r> of row i, given f1 = <y, r>.
  double code_alignment(node_t i, double f1) const {
    if (bits_ == 1) return f1 / std::sqrt(0.25 * double(D_));
    return aux_[std::size_t(i) * aux_stride_ + aux_stride_ - 1];
  }
  // |y|^2 of row i's code, given f1 = <y, r>: (f1 / o)^2.
  double code_norm2(node_t i, double f1) const {
    if (bits_ == 1) return 0.25 * double(D_);
    const double o = code_alignment(i, f1);
    return o > 0.0 ? (f1 / o) * (f1 / o) : 0.0;
  }
  // v <- P(x_hat - c) for the decoding x_hat of row i: the projection of r on the code direction,
  // y <y, r> / |y|^2, times |x - c|.
  void rotated_residual(node_t i, float* v) const {
    const std::uint8_t* c = code(i);
    double f0, f1;
    row_factors(i, &f0, &f1);
    const double n2 = code_norm2(i, f1);
    const float s = n2 > 0.0 ? static_cast<float>(f0 * f1 / n2) : 0.f;
    for (std::size_t j = 0; j < D_; ++j) v[j] = s * grid_value(c, j);
  }
  // P c_j (zero-padded to D) and |c_j|^2 per centroid, for preparing queries and rows.
  void derive_centroid_terms() {
    const std::size_t nc = std::max<std::size_t>(nc_, 1);
    rotated_centroids_.assign(nc * D_, 0.f);
    centroid_norm2_.assign(nc, 0.0);
    if (!trained()) return;
    for (std::size_t k = 0; k < nc_; ++k) {
      float* rc = rotated_centroids_.data() + k * D_;
      const float* c = centroid(k);
      for (std::size_t j = 0; j < dim_; ++j) {
        rc[j] = c[j];
        centroid_norm2_[k] += double(c[j]) * c[j];
      }
      rotate(rc);
    }
    // pair_ slot i * nc + j: P(c_i - c_j) quantised as a query (for pair_distances).
    pair_ = Prepared();
    if (nc_ <= 1) return;
    size_prepared(pair_, nc_ * nc_);
    std::vector<float> d(D_);
    for (std::size_t i = 0; i < nc_; ++i)
      for (std::size_t j = 0; j < nc_; ++j) {
        const float* ri = rotated_centroids_.data() + i * D_;
        const float* rj = rotated_centroids_.data() + j * D_;
        for (std::size_t t = 0; t < D_; ++t) d[t] = ri[t] - rj[t];
        finish_prepare(d.data(), 0.0, 0.0, pair_, i * nc_ + j);
      }
  }
  // The centroid nearest to x (l2; the first of equals).
  std::size_t nearest_centroid(const float* x) const {
    if (nc_ <= 1) return 0;
    std::size_t best = 0;
    float bd = kernels().l2sq(x, centroid(0), dim_);
    for (std::size_t j = 1; j < nc_; ++j) {
      const float d = kernels().l2sq(x, centroid(j), dim_);
      if (d < bd) bd = d, best = j;
    }
    return best;
  }
  // k-means with nc centroids into c (nc * dim): k-means++ seeding (mt19937_64, kRaBitQSeed),
  // then up to kKMeansIters Lloyd iterations, on at most kKMeansSample rows (evenly strided).
  // A centroid left without rows keeps its previous place. Returns the sample's mean squared
  // distance to its nearest centroid over that to the sample mean.
  double kmeans(const float* rows, std::size_t n, std::size_t nc, float* c) const {
    const std::size_t m = std::min(n, kKMeansSample);
    std::vector<const float*> s(m);
    for (std::size_t i = 0; i < m; ++i) s[i] = rows + (i * n / m) * dim_;
    std::mt19937_64 gen(kRaBitQSeed);
    const auto uniform = [&gen] { return double(gen() >> 11) * (1.0 / 9007199254740992.0); };
    const DistanceKernels& k = kernels();
    // k-means++: each next centroid drawn with probability proportional to d^2.
    std::vector<double> d2(m);
    const float* first = s[gen() % m];
    std::copy(first, first + dim_, c);
    for (std::size_t i = 0; i < m; ++i) d2[i] = k.l2sq(s[i], c, dim_);
    for (std::size_t j = 1; j < nc; ++j) {
      double total = 0.0;
      for (std::size_t i = 0; i < m; ++i) total += d2[i];
      std::size_t pick = gen() % m;
      if (total > 0.0) {
        double u = uniform() * total;
        for (std::size_t i = 0; i < m; ++i) {
          u -= d2[i];
          if (u < 0.0 || i + 1 == m) { pick = i; break; }
        }
      }
      std::copy(s[pick], s[pick] + dim_, c + j * dim_);
      for (std::size_t i = 0; i < m; ++i) d2[i] = std::min<double>(d2[i], k.l2sq(s[i], c + j * dim_, dim_));
    }
    // Lloyd iterations.
    std::vector<std::uint32_t> assign(m, 0);
    std::vector<double> sum(nc * dim_);
    std::vector<std::size_t> cnt(nc);
    for (int it = 0; it < kKMeansIters; ++it) {
      std::int64_t changed = 0;
#pragma omp parallel for schedule(static) reduction(+ : changed) if (m * nc * dim_ > (1u << 20))
      for (std::int64_t i = 0; i < static_cast<std::int64_t>(m); ++i) {
        std::uint32_t best = 0;
        float bd = k.l2sq(s[i], c, dim_);
        for (std::size_t j = 1; j < nc; ++j) {
          const float d = k.l2sq(s[i], c + j * dim_, dim_);
          if (d < bd) bd = d, best = static_cast<std::uint32_t>(j);
        }
        if (it == 0 || assign[i] != best) ++changed;
        assign[i] = best;
      }
      if (changed == 0) break;
      std::fill(sum.begin(), sum.end(), 0.0);
      std::fill(cnt.begin(), cnt.end(), 0);
      for (std::size_t i = 0; i < m; ++i) {
        double* acc = sum.data() + assign[i] * dim_;
        for (std::size_t t = 0; t < dim_; ++t) acc[t] += s[i][t];
        ++cnt[assign[i]];
      }
      for (std::size_t j = 0; j < nc; ++j)
        if (cnt[j] > 0)
          for (std::size_t t = 0; t < dim_; ++t) c[j * dim_ + t] = static_cast<float>(sum[j * dim_ + t] / double(cnt[j]));
    }
    std::vector<double> mean(dim_, 0.0);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t t = 0; t < dim_; ++t) mean[t] += s[i][t];
    for (std::size_t t = 0; t < dim_; ++t) mean[t] /= double(m);
    double to_mean = 0.0, to_centroid = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : to_mean, to_centroid) if (m * nc * dim_ > (1u << 20))
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(m); ++i) {
      float bd = k.l2sq(s[i], c, dim_);
      for (std::size_t j = 1; j < nc; ++j) bd = std::min(bd, k.l2sq(s[i], c + j * dim_, dim_));
      to_centroid += bd;
      double d = 0.0;
      for (std::size_t t = 0; t < dim_; ++t) d += (s[i][t] - mean[t]) * (s[i][t] - mean[t]);
      to_mean += d;
    }
    return to_mean > 0.0 ? to_centroid / to_mean : 1.0;
  }
  // p's buffers sized for nv centroids (kept when already so).
  void size_prepared(const Prepared& p, std::size_t nv) const {
    p.terms.resize(nv);
    if (bits_ == 1) p.planes.resize(nv * 4 * (D_ / 64));
    else p.q8.resize(nv * D_);
  }
  // Quantises the rotated residual v = P(q - c_j) into slot j of p (sized by size_prepared).
  void finish_prepare(const float* v, double qc2, double cq, const Prepared& p, std::size_t slot) const {
    QueryTerms& t = p.terms[slot];
    t.qc_norm2 = static_cast<float>(qc2);
    t.cq = static_cast<float>(cq);
    t.qconst = metric_ == Metric::L2 ? t.qc_norm2 : -t.cq;
    // Rounding by adding 1/2 and truncating (ties away from zero) keeps these loops free of libm
    // calls, so they vectorise; which way a tie goes does not matter for a query grid.
    if (bits_ == 1) {
      const std::size_t words = D_ / 64;
      std::uint64_t* planes = p.planes.data() + slot * 4 * words;
      const std::pair<float, float> mm = float_min_max(v, D_);
      t.lo = mm.first;
      t.delta = (mm.second - mm.first) / 15.f;
      const float inv = t.delta > 0.f ? 1.f / t.delta : 0.f;
      thread_local std::vector<std::uint8_t> levels;
      levels.resize(D_);
      // Locals for the bound and the grid: byte stores may alias anything, and would otherwise
      // reload them every step and keep the loop scalar.
      const std::size_t D = D_;
      const float lo = t.lo;
      std::uint8_t* lv = levels.data();
      unsigned sum = 0;
      for (std::size_t j = 0; j < D; ++j) {
        const float x = std::min((v[j] - lo) * inv + 0.5f, 15.f);  // >= 0.5 since v[j] >= lo
        const unsigned k = static_cast<unsigned>(static_cast<int>(x));
        lv[j] = static_cast<std::uint8_t>(k);
        sum += k;
      }
      // Bit b of eight levels at a time: the multiply gathers bit 8k into bit 56 + k.
      for (std::size_t w = 0; w < words; ++w)
        for (unsigned b = 0; b < 4; ++b) {
          std::uint64_t bits = 0;
          for (unsigned k = 0; k < 8; ++k) {
            std::uint64_t x;
            std::memcpy(&x, levels.data() + w * 64 + 8 * k, 8);
            bits |= ((((x >> b) & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56) << (8 * k);
          }
          planes[b * words + w] = bits;
        }
      t.sum_k = static_cast<float>(sum);
    } else {
      const float amax = float_abs_max(v, D_);
      t.scale = amax > 0.f ? amax / 127.f : 0.f;
      const float inv = amax > 0.f ? 127.f / amax : 0.f;
      std::int8_t* q8 = p.q8.data() + slot * D_;
      const std::size_t D = D_;  // a local: the int8 stores may alias members (see above)
      int sum = 0;
      for (std::size_t j = 0; j < D; ++j) {
        const float x = v[j] * inv;  // in [-127, 127]; copysign keeps the loop branch-free (ties away from 0)
        const int k = static_cast<int>(x + std::copysign(0.5f, x));
        q8[j] = static_cast<std::int8_t>(k);
        sum += k;
      }
      t.sum_q8 = static_cast<float>(sum);
      t.q_offset = 0.5f * float((1u << bits_) - 1u) * t.sum_q8;
    }
  }
  // sum_i u_i * q8_i over the D codes (exact integer kernels; u8 rows in blocks that cannot overflow).
  std::int64_t dot_codes(const std::uint8_t* c, const std::int8_t* q) const {
    const QuantKernels& k = quant_kernels();
    if (bits_ <= 4) return k.dot_u4_i8(c, q, D_);
    std::int64_t s = 0;
    for (std::size_t off = 0; off < D_; off += 65536) s += k.dot_u8_i8(c + off, q + off, std::min<std::size_t>(65536, D_ - off));
    return s;
  }

  // The grid value y_j = u_j - (2^B - 1)/2 of code j.
  float grid_value(const std::uint8_t* c, std::size_t j) const {
    unsigned u;
    if (bits_ == 1) u = (c[j >> 3] >> (j & 7)) & 1u;
    else if (bits_ <= 4) u = (j & 1) ? (c[j >> 1] >> 4) : (c[j >> 1] & 0xFu);
    else u = c[j];
    return float(u) - 0.5f * float((1u << bits_) - 1u);
  }

  // Normalised Walsh-Hadamard transform of v[first, first + h): orthogonal and its own inverse.
  static void block_hadamard(const RaBitQKernels& k, float* v, std::size_t first, std::size_t h) {
    k.fwht(v + first, h);
    const float norm = static_cast<float>(1.0 / std::sqrt(double(h)));
    for (std::size_t j = first; j < first + h; ++j) v[j] *= norm;
  }
  // v (D floats, zero-padded) <- P v: 3 rounds of random signs, then a normalised Hadamard
  // transform of the first and of the last H coordinates (H the largest power of two <= D; the
  // two blocks overlap and cover all D, and equal one transform when D is a power of two). Each
  // step is orthogonal, so P is, on D rather than on D rounded up to a power of two.
  void rotate(float* v) const {
    const RaBitQKernels& k = rabitq_kernels();
    const std::size_t h = hadamard_block(D_);
    for (int r = 0; r < kRaBitQRounds; ++r) {
      const float* s = float_signs_.data() + std::size_t(r) * D_;
      for (std::size_t j = 0; j < D_; ++j) v[j] *= s[j];
      block_hadamard(k, v, 0, h);
      if (h < D_) block_hadamard(k, v, D_ - h, h);
    }
  }
  // v <- P^T v: the steps of rotate() undone in reverse order.
  void unrotate(float* v) const {
    const RaBitQKernels& k = rabitq_kernels();
    const std::size_t h = hadamard_block(D_);
    for (int r = kRaBitQRounds - 1; r >= 0; --r) {
      if (h < D_) block_hadamard(k, v, D_ - h, h);
      block_hadamard(k, v, 0, h);
      const float* s = float_signs_.data() + std::size_t(r) * D_;
      for (std::size_t j = 0; j < D_; ++j) v[j] *= s[j];
    }
  }

  // Magnitude levels k_j in [0, L] for |r| = a at the rescale factor that maximises
  // <y, a> / |y| with |y_j| = k_j + 1/2 (extended RaBitQ): a sweep in increasing t over the
  // critical points t = k / a_j in [t_start, t_end] (a min-heap holds each dimension's next one).
  // The levels are then those at the middle of the best interval between two critical points.
  void best_levels(const std::vector<float>& a, std::vector<unsigned>& k) const {
    const unsigned L = (1u << (bits_ - 1)) - 1u;
    const float amax = *std::max_element(a.begin(), a.end());
    k.assign(D_, 0);
    if (!(amax > 0.f)) return;
    const double t_end = double(L + 1) / amax;
    const double t_start = t_end * kTightStart[bits_ - 1];
    using Event = std::pair<double, std::size_t>;
    thread_local std::vector<Event> heap;
    heap.clear();
    double dot = 0.0, n2 = 0.0;
    for (std::size_t j = 0; j < D_; ++j) {
      k[j] = std::min<unsigned>(static_cast<unsigned>(t_start * a[j]), L);
      dot += a[j] * (k[j] + 0.5);
      n2 += (k[j] + 0.5) * (k[j] + 0.5);
      if (k[j] < L && a[j] > 0.f) heap.push_back({double(k[j] + 1) / a[j], j});
    }
    const auto later = std::greater<Event>();
    std::make_heap(heap.begin(), heap.end(), later);
    double best = dot / std::sqrt(n2);
    double best_lo = t_start, best_hi = heap.empty() ? t_end : std::min(t_end, heap.front().first);
    while (!heap.empty() && heap.front().first <= t_end) {
      std::pop_heap(heap.begin(), heap.end(), later);
      const Event e = heap.back();
      heap.pop_back();
      const std::size_t j = e.second;
      ++k[j];
      dot += a[j];
      n2 += 2.0 * k[j];
      if (k[j] < L) {
        heap.push_back({double(k[j] + 1) / a[j], j});
        std::push_heap(heap.begin(), heap.end(), later);
      }
      const double v = dot / std::sqrt(n2);
      if (v > best) {
        best = v;
        best_lo = e.first;
        best_hi = heap.empty() ? t_end : std::min(t_end, heap.front().first);
      }
    }
    // Any t strictly inside (best_lo, best_hi) gives the best levels; the interval is empty only
    // when two critical points coincide, and then t = best_lo is as good as its neighbours.
    const double t = best_hi > best_lo ? 0.5 * (best_lo + best_hi) : best_lo;
    for (std::size_t j = 0; j < D_; ++j) k[j] = std::min<unsigned>(static_cast<unsigned>(t * a[j]), L);
  }

  // Writes row x's code against centroid cj to out[0, row_bytes_) and returns its factors.
  Factors encode(const float* x, std::size_t cj, std::uint8_t* out) const {
    const float* centroid = this->centroid(cj);
    thread_local std::vector<float> v;
    thread_local std::vector<float> a;
    thread_local std::vector<unsigned> lv;
    v.assign(D_, 0.f);
    double n2 = 0.0, xc = 0.0;
    for (std::size_t j = 0; j < dim_; ++j) {
      v[j] = x[j] - centroid[j];
      n2 += double(v[j]) * v[j];
      xc += double(v[j]) * centroid[j];
    }
    const double norm = std::sqrt(n2);
    std::fill(out, out + row_bytes_, std::uint8_t(0));
    // x == c: any code; the estimate is multiplied by |x - c| = 0.
    if (!(norm > 0.0)) return factors_from(0.0, 1.0, xc, 1.0);
    rotate(v.data());
    const float inv = static_cast<float>(1.0 / norm);
    for (std::size_t j = 0; j < D_; ++j) v[j] *= inv;  // r, a unit vector
    double yr = 0.0, y2 = bits_ == 1 ? 0.25 * double(D_) : 0.0;
    if (bits_ == 1) {
      for (std::size_t j = 0; j < D_; ++j) {
        if (v[j] >= 0.f) out[j >> 3] |= static_cast<std::uint8_t>(1u << (j & 7));
        yr += 0.5 * std::fabs(double(v[j]));
      }
    } else {
      a.resize(D_);
      for (std::size_t j = 0; j < D_; ++j) a[j] = std::fabs(v[j]);
      best_levels(a, lv);
      const unsigned half = 1u << (bits_ - 1);
      for (std::size_t j = 0; j < D_; ++j) {
        const unsigned u = v[j] >= 0.f ? half + lv[j] : half - 1u - lv[j];
        const double y = double(u) - 0.5 * double((1u << bits_) - 1u);
        yr += y * v[j];
        y2 += y * y;
        if (bits_ <= 4) out[j >> 1] = static_cast<std::uint8_t>(out[j >> 1] | ((j & 1) ? (u << 4) : u));
        else out[j] = static_cast<std::uint8_t>(u);
      }
    }
    return factors_from(norm, yr, xc, yr / std::sqrt(y2));
  }

  std::size_t dim_, D_;
  Metric metric_;
  int bits_;
  std::size_t requested_centroids_;  // 0: the store chooses at train()
  std::size_t row_bytes_;  // code bytes per row
  std::size_t nc_ = 0;               // centroids (0 until trained)
  AlignedArray<float> centroids_;    // nc_ * dim
  AlignedArray<std::uint8_t> cid_;   // the centroid of each row; empty when nc_ <= 1
  AlignedArray<std::int8_t> signs_;  // kRaBitQRounds * D, +-1
  AlignedArray<std::uint8_t> codes_;  // row_bytes_ per row
  AlignedArray<float> scoring_;       // A, B per row (see Factors)
  std::size_t aux_stride_;           // floats per row in aux_
  AlignedArray<float> aux_;          // see Factors
  std::vector<float> rotated_centroids_;  // P c_j, D floats per centroid
  std::vector<float> float_signs_;       // signs_ as floats, for the rotation loops
  std::vector<double> centroid_norm2_;   // |c_j|^2
  Prepared pair_;                         // P(c_i - c_j) as quantised queries, slot i * nc + j
};

}  // namespace

std::unique_ptr<CodeStore> make_rabitq_store(std::size_t dim, Metric metric, int bits, std::size_t centroids) {
  return std::make_unique<RaBitQStoreImpl>(dim, metric, bits, centroids);
}

}  // namespace vecdex
