// RaBitQ / extended RaBitQ codes: see rabitq_store.h for the scheme, the estimator and its bound.
#include "vecdex/storage/prepared_store.h"
#include "vecdex/storage/rabitq_store.h"

#include <algorithm>
#include <cstring>
#include <cmath>
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
// in their own array, the others (read only to re-rank, decode or build) in a third.
constexpr std::uint32_t kFormatVersion = 3;
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
// vectorises (a float max reduction does not without -ffast-math); this is on the query path.
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

// A query prepared once: rotated residual, quantised.
struct Prepared {
  // bits == 1: 4-bit query as bit-planes, q'_i ~ lo + delta * k_i.
  std::vector<std::uint64_t> planes;
  float lo = 0.f, delta = 0.f, sum_k = 0.f;
  // bits >= 2: int8 query, q'_i ~ scale * k_i.
  std::vector<std::int8_t> q8;
  float scale = 0.f, sum_q8 = 0.f;
  float q_offset = 0.f;  // (2^B - 1)/2 * sum_q8: the grid's offset, folded out of the integer dot
  float qc_norm2 = 0.f;  // |q - c|^2
  float cq = 0.f;        // <c, q>
  float qconst = 0.f;    // the query's share of every distance: |q - c|^2 (l2) or -<c, q> (ip)
};

class RaBitQStoreImpl final : public PreparedQueryStore<RaBitQStoreImpl, RaBitQStore> {
 public:
  using Prepared = vecdex::Prepared;
  RaBitQStoreImpl(std::size_t dim, Metric metric, int bits)
      : dim_(dim), D_(padded_dim_for(dim)), metric_(metric), bits_(bits),
        row_bytes_(bits == 1 ? D_ / 8 : bits <= 4 ? D_ / 2 : D_),
        aux_stride_(aux_stride_for(metric, bits)) {
    if (bits < 1 || bits > 8) throw InvalidArgument("rabitq bits must be between 1 and 8, got " + std::to_string(bits));
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
    // (rounding errors uniform in +-step/2 on every rotated coordinate), both divided by o^2.
    const double step = bits_ == 1 ? p.delta : p.scale;
    const double q2 = double(p.qc_norm2), quant2 = step * step / 12.0;
    const double mult = eps0 * (metric_ == Metric::L2 ? 2.0 : 1.0);
    for (std::size_t i = 0; i < n; ++i) {
      dist[i] = score(p, ids[i]);
      if (bound) {
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
    return codes_.bytes() + scoring_.bytes() + aux_.bytes() + centroid_.bytes() + signs_.bytes() +
           rotated_centroid_.size() * sizeof(float);
  }

  // ------------------------------------------------------------------ CodeStore
  Quantization quantization() const override { return quantization_for_bits(bits_); }
  bool trained() const override { return centroid_.size() == dim_; }
  void train(const float* rows, std::size_t n) override {
    if (n == 0) throw InvalidArgument("training needs at least one vector");
    std::vector<double> mean(dim_, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < dim_; ++j) mean[j] += rows[i * dim_ + j];
    AlignedArray<float> c;
    c.resize(dim_);
    for (std::size_t j = 0; j < dim_; ++j) c[j] = static_cast<float>(mean[j] / double(n));
    centroid_ = std::move(c);
    derive_centroid_terms();
  }
  void reserve(std::size_t n) override {
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
    std::uint8_t* out = codes_.mutable_data();
    float* ab = scoring_.mutable_data();
    float* aux = aux_.mutable_data();
#pragma omp parallel for schedule(dynamic, 64) if (n > 512)
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) {
      const std::size_t row = old + std::size_t(i);
      const Factors f = encode(rows + std::size_t(i) * dim_, out + row * row_bytes_);
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
    for (std::size_t j = 0; j < dim_; ++j) out[j] = centroid_[j] + v[j];
  }
  // Pair distances for graph construction: row a's decoding x_hat = c + P^T v, v = s y, is the
  // query, prepared in the rotated space straight from the code, with no transform and (for up
  // to 4 bits) no query quantisation error: 2y is an exact int8 query (|2y| <= 15), and for one
  // bit the 4-bit query grid {-s/2, s/2} is exact too. |v|^2 = s^2 |y|^2 and
  // <c, x_hat> = |c|^2 + s <P c, y>.
  void pair_distances(node_t a, const node_t* b, std::size_t n, float* out) const override {
    thread_local Prepared p;
    prepare_row(a, p);
    for (std::size_t i = 0; i < n; ++i) out[i] = score(p, b[i]);
  }
  void prepare_row(node_t a, Prepared& p) const {
    if (bits_ > 4) {  // 2y does not fit in int8: quantise the decoded residual as a query
      thread_local std::vector<float> v;
      v.resize(D_);
      rotated_residual(a, v.data());
      double qc2 = 0.0, cv = 0.0;
      for (std::size_t j = 0; j < D_; ++j) {
        qc2 += double(v[j]) * v[j];
        cv += double(rotated_centroid_[j]) * v[j];
      }
      finish_prepare(v.data(), qc2, centroid_norm2_ + cv, p);
      return;
    }
    const std::uint8_t* c = code(a);
    double f0, f1;
    row_factors(a, &f0, &f1);
    const double n2 = code_norm2(a, f1);
    const double s = n2 > 0.0 ? f0 * f1 / n2 : 0.0;
    double cy = 0.0;  // <P c, y>, for ip/cosine
    if (bits_ == 1) {
      const std::size_t words = D_ / 64;
      const auto* w = reinterpret_cast<const std::uint64_t*>(c);
      p.planes.resize(4 * words);
      std::uint64_t ones = 0;
      for (std::size_t b = 0; b < 4; ++b) std::copy(w, w + words, p.planes.begin() + b * words);
      for (std::size_t i = 0; i < words; ++i) ones += static_cast<std::uint64_t>(__builtin_popcountll(w[i]));
      p.lo = static_cast<float>(-0.5 * s);
      p.delta = static_cast<float>(s / 15.0);
      p.sum_k = 15.f * float(ones);
      if (metric_ != Metric::L2)
        for (std::size_t j = 0; j < D_; ++j) cy += ((c[j >> 3] >> (j & 7)) & 1u) ? rotated_centroid_[j] : -rotated_centroid_[j];
      cy *= 0.5;
    } else {
      const int top = (1 << bits_) - 1;  // 2y = 2u - top
      p.q8.resize(D_);
      std::int64_t sum = 0;
      for (std::size_t j = 0; j < D_; j += 2) {
        const int lo = 2 * (c[j >> 1] & 15) - top, hi = 2 * (c[j >> 1] >> 4) - top;
        p.q8[j] = static_cast<std::int8_t>(lo);
        p.q8[j + 1] = static_cast<std::int8_t>(hi);
        sum += lo + hi;
      }
      if (metric_ != Metric::L2)
        for (std::size_t j = 0; j < D_; ++j) cy += 0.5 * double(rotated_centroid_[j]) * p.q8[j];
      p.scale = static_cast<float>(0.5 * s);
      p.sum_q8 = static_cast<float>(sum);
      p.q_offset = 0.5f * float(top) * p.sum_q8;
    }
    p.qc_norm2 = static_cast<float>(s * s * n2);
    p.cq = static_cast<float>(centroid_norm2_ + s * cy);
    p.qconst = metric_ == Metric::L2 ? p.qc_norm2 : -p.cq;
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
    params[7] = trained() ? 1u : 0u;
    w.add_array(section::kRaBitQParams, params);
    w.add_array(section::kRaBitQCentroid, centroid_);
    w.add_array(section::kRaBitQSigns, signs_);
    w.add_array(section::kRaBitQCodes, codes_);
    w.add_array(section::kRaBitQScoring, scoring_);
    if (aux_stride_) w.add_array(section::kRaBitQAux, aux_);
  }
  void read(const IndexFileReader& r, std::size_t count, bool view) override {
    AlignedArray<std::uint32_t> params = r.array<std::uint32_t>(section::kRaBitQParams, 8, false);
    const std::uint32_t version = params[0];
    if ((version != 2 && version != kFormatVersion) || params[1] != dim_ || params[2] != D_ ||
        params[3] != std::uint32_t(bits_) || params[4] != std::uint32_t(kRaBitQRounds) || params[7] > 1)
      throw FormatError("corrupt index file: invalid rabitq parameters");
    const bool was_trained = params[7] == 1;
    if (!was_trained && count > 0) throw FormatError("corrupt index file: rabitq rows without a centroid");
    AlignedArray<float> centroid = r.array<float>(section::kRaBitQCentroid, was_trained ? dim_ : 0, false);
    for (std::size_t j = 0; j < centroid.size(); ++j)
      if (!std::isfinite(centroid[j])) throw FormatError("corrupt index file: invalid rabitq centroid");
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
    centroid_ = std::move(centroid);
    signs_ = std::move(signs);
    float_signs_.assign(signs_.data(), signs_.data() + signs_.size());
    codes_ = std::move(codes);
    scoring_ = std::move(scoring);
    aux_ = std::move(aux);
    derive_centroid_terms();
  }
  std::size_t bytes_per_row() const override { return row_bytes_ + (2 + aux_stride_) * sizeof(float); }

  // ------------------------------------------------------------------ scoring
  const std::uint8_t* code(node_t i) const { return codes_.data() + std::size_t(i) * row_bytes_; }
  std::size_t code_bytes() const { return row_bytes_; }
  void prefetch(node_t i) const {
    prefetch_l2_range(code(i), row_bytes_);
    prefetch_l2(scoring_.data() + 2 * std::size_t(i));
  }

  // distance ~ A + qconst + B * <y, q'> (see Factors).
  float score(const Prepared& p, node_t i) const {
    const std::uint8_t* c = code(i);
    const float* ab = scoring_.data() + 2 * std::size_t(i);
    float ydotq;  // <y, q'>
    if (bits_ == 1) {
      std::uint32_t ip, pc;
      rabitq_kernels().ip_bin_u4(reinterpret_cast<const std::uint64_t*>(c), p.planes.data(), D_ / 64, &ip, &pc);
      ydotq = p.lo * (float(pc) - 0.5f * float(D_)) + p.delta * (float(ip) - 0.5f * p.sum_k);
    } else {
      ydotq = p.scale * (float(dot_codes(c, p.q8.data())) - p.q_offset);
    }
    return ab[0] + p.qconst + ab[1] * ydotq;
  }

  Prepared prepare(const float* q) const {
    Prepared p;
    thread_local std::vector<float> v;
    v.assign(D_, 0.f);
    double qc2, cq = 0.0;
    if (trained()) {  // an untrained store has no rows to measure, but stays safe
      const float* c = centroid_.data();
      for (std::size_t j = 0; j < dim_; ++j) v[j] = q[j] - c[j];
      cq = kernels().dot(c, q, dim_);
    } else {
      std::copy(q, q + dim_, v.begin());
    }
    qc2 = kernels().dot(v.data(), v.data(), dim_);
    rotate(v.data());
    finish_prepare(v.data(), qc2, cq, p);
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
  // P c (zero-padded to D) and |c|^2, for preparing rows as queries without rotating them.
  void derive_centroid_terms() {
    rotated_centroid_.assign(D_, 0.f);
    centroid_norm2_ = 0.0;
    if (!trained()) return;
    for (std::size_t j = 0; j < dim_; ++j) {
      rotated_centroid_[j] = centroid_[j];
      centroid_norm2_ += double(centroid_[j]) * centroid_[j];
    }
    rotate(rotated_centroid_.data());
  }
  // Quantises the rotated residual v = P(q - c) into p (reusing p's buffers).
  void finish_prepare(const float* v, double qc2, double cq, Prepared& p) const {
    p.qc_norm2 = static_cast<float>(qc2);
    p.cq = static_cast<float>(cq);
    p.qconst = metric_ == Metric::L2 ? p.qc_norm2 : -p.cq;
    // Rounding by adding 1/2 and truncating (ties away from zero) keeps these loops free of libm
    // calls, so they vectorise; which way a tie goes does not matter for a query grid.
    if (bits_ == 1) {
      const std::size_t words = D_ / 64;
      p.planes.assign(4 * words, 0);
      const std::pair<float, float> mm = float_min_max(v, D_);
      p.lo = mm.first;
      p.delta = (mm.second - mm.first) / 15.f;
      const float inv = p.delta > 0.f ? 1.f / p.delta : 0.f;
      thread_local std::vector<std::uint8_t> levels;
      levels.resize(D_);
      // Locals for the bound and the grid: byte stores may alias anything, and would otherwise
      // make the compiler reload them every step and keep the loop scalar.
      const std::size_t D = D_;
      const float lo = p.lo;
      std::uint8_t* lv = levels.data();
      unsigned sum = 0;
      for (std::size_t j = 0; j < D; ++j) {
        const float t = std::min((v[j] - lo) * inv + 0.5f, 15.f);  // >= 0.5 since v[j] >= lo
        const unsigned k = static_cast<unsigned>(static_cast<int>(t));
        lv[j] = static_cast<std::uint8_t>(k);
        sum += k;
      }
      for (std::size_t w = 0; w < words; ++w)
        for (unsigned b = 0; b < 4; ++b) {
          std::uint64_t bits = 0;
          for (unsigned j = 0; j < 64; ++j) bits |= std::uint64_t((levels[w * 64 + j] >> b) & 1u) << j;
          p.planes[b * words + w] = bits;
        }
      p.sum_k = static_cast<float>(sum);
    } else {
      const float amax = float_abs_max(v, D_);
      p.scale = amax > 0.f ? amax / 127.f : 0.f;
      const float inv = amax > 0.f ? 127.f / amax : 0.f;
      p.q8.resize(D_);
      std::int8_t* q8 = p.q8.data();
      const std::size_t D = D_;  // a local: the int8 stores may alias members (see above)
      int sum = 0;
      for (std::size_t j = 0; j < D; ++j) {
        const float t = v[j] * inv;  // in [-127, 127]; copysign keeps the loop branch-free (ties away from 0)
        const int k = static_cast<int>(t + std::copysign(0.5f, t));
        q8[j] = static_cast<std::int8_t>(k);
        sum += k;
      }
      p.sum_q8 = static_cast<float>(sum);
      p.q_offset = 0.5f * float((1u << bits_) - 1u) * p.sum_q8;
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

  // Writes row x's code to out[0, row_bytes_) and returns its factors.
  Factors encode(const float* x, std::uint8_t* out) const {
    thread_local std::vector<float> v;
    thread_local std::vector<float> a;
    thread_local std::vector<unsigned> lv;
    v.assign(D_, 0.f);
    double n2 = 0.0, xc = 0.0;
    for (std::size_t j = 0; j < dim_; ++j) {
      v[j] = x[j] - centroid_[j];
      n2 += double(v[j]) * v[j];
      xc += double(v[j]) * centroid_[j];
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
  std::size_t row_bytes_;  // code bytes per row
  AlignedArray<float> centroid_;     // dim (empty until trained)
  AlignedArray<std::int8_t> signs_;  // kRaBitQRounds * D, +-1
  AlignedArray<std::uint8_t> codes_;  // row_bytes_ per row
  AlignedArray<float> scoring_;       // A, B per row (see Factors)
  std::size_t aux_stride_;           // floats per row in aux_
  AlignedArray<float> aux_;          // see Factors
  std::vector<float> rotated_centroid_;  // P c, D floats
  std::vector<float> float_signs_;       // signs_ as floats, for the rotation loops
  double centroid_norm2_ = 0.0;
};

}  // namespace

std::unique_ptr<CodeStore> make_rabitq_store(std::size_t dim, Metric metric, int bits) {
  return std::make_unique<RaBitQStoreImpl>(dim, metric, bits);
}

}  // namespace vecdex
