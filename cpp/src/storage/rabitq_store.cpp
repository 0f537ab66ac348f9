// RaBitQ / extended RaBitQ codes: see rabitq_store.h for the scheme, the estimator and its bound.
#include "vecdex/storage/prepared_store.h"
#include "vecdex/storage/rabitq_store.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <utility>
#include <vector>

#include "vecdex/simd/prefetch.h"
#include "vecdex/simd/quant_kernels.h"
#include "vecdex/simd/rabitq_kernels.h"
#include "vecdex/storage/aligned_array.h"

namespace vecdex {

namespace {

constexpr std::uint32_t kFormatVersion = 2;  // 2: rotated dimension a multiple of 64, block Hadamard
constexpr std::size_t kFactors = 4;  // |x-c|, <y,r>, <x-c,c>, <o_bar,r>
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

// A query prepared once: rotated residual, quantised.
struct Prepared {
  // bits == 1: 4-bit query as bit-planes, q'_i ~ lo + delta * k_i.
  std::vector<std::uint64_t> planes;
  float lo = 0.f, delta = 0.f, sum_k = 0.f;
  // bits >= 2: int8 query, q'_i ~ scale * k_i.
  std::vector<std::int8_t> q8;
  float scale = 0.f, sum_q8 = 0.f;
  float qc_norm2 = 0.f;  // |q - c|^2
  float cq = 0.f;        // <c, q>
};

class RaBitQStoreImpl final : public PreparedQueryStore<RaBitQStoreImpl, RaBitQStore> {
 public:
  using Prepared = vecdex::Prepared;
  RaBitQStoreImpl(std::size_t dim, Metric metric, int bits)
      : dim_(dim), D_(padded_dim_for(dim)), metric_(metric), bits_(bits),
        row_bytes_(bits == 1 ? D_ / 8 : bits <= 4 ? D_ / 2 : D_) {
    if (bits < 1 || bits > 8) throw InvalidArgument("rabitq bits must be between 1 and 8, got " + std::to_string(bits));
    std::mt19937_64 gen(kRaBitQSeed);
    signs_.resize(std::size_t(kRaBitQRounds) * D_);
    for (std::size_t i = 0; i < signs_.size(); ++i) signs_[i] = (gen() >> 63) ? std::int8_t(-1) : std::int8_t(1);
  }

  // ------------------------------------------------------------------ RaBitQStore
  int bits() const override { return bits_; }
  std::size_t padded_dim() const override { return D_; }
  void estimate(const float* query, const node_t* ids, std::size_t n, float* dist, float* bound,
                double eps0) const override {
    const Prepared p = prepare(query);
    // Rotation term |q - c|^2 (1 - o^2) / (D - 1) plus the query-quantisation term step^2 / 12
    // (rounding errors uniform in +-step/2 on every rotated coordinate), both divided by o^2.
    const double step = bits_ == 1 ? p.delta : p.scale;
    const double q2 = double(p.qc_norm2), quant2 = step * step / 12.0;
    const double mult = eps0 * (metric_ == Metric::L2 ? 2.0 : 1.0);
    for (std::size_t i = 0; i < n; ++i) {
      dist[i] = score(p, ids[i]);
      if (bound) {
        const float* f = factor(ids[i]);
        const double o = std::min(1.0, std::max(1e-6, double(f[3])));
        bound[i] = static_cast<float>(mult * f[0] / o * std::sqrt(q2 * (1.0 - o * o) / double(D_ - 1) + quant2));
      }
    }
  }

  // ------------------------------------------------------------------ VectorStore
  std::size_t dim() const override { return dim_; }
  std::size_t size() const override { return factors_.size() / kFactors; }
  Metric metric() const override { return metric_; }

  std::size_t memory_bytes() const override {
    return codes_.bytes() + factors_.bytes() + centroid_.bytes() + signs_.bytes();
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
  }
  void reserve(std::size_t n) override {
    codes_.reserve(n * row_bytes_);
    factors_.reserve(n * kFactors);
  }
  void append(const float* rows, std::size_t n) override {
    if (!trained()) throw InvalidArgument("rabitq store: train() before append()");
    const std::size_t old = size();
    codes_.resize((old + n) * row_bytes_, 0);
    factors_.resize((old + n) * kFactors);
    std::uint8_t* codes = codes_.mutable_data();
    float* factors = factors_.mutable_data();
#pragma omp parallel for schedule(dynamic, 64) if (n > 512)
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) {
      const std::size_t row = old + std::size_t(i);
      encode(rows + std::size_t(i) * dim_, codes + row * row_bytes_, factors + row * kFactors);
    }
  }
  void decode(node_t i, float* out) const override {
    thread_local std::vector<float> v;
    v.assign(D_, 0.f);
    const float* f = factor(i);
    const std::uint8_t* c = code(i);
    double n2 = 0.0;
    for (std::size_t j = 0; j < D_; ++j) {
      v[j] = grid_value(c, j);
      n2 += double(v[j]) * v[j];
    }
    // The projection of r on the code direction: y <y, r> / |y|^2, times |x - c|.
    const float s = n2 > 0.0 ? static_cast<float>(double(f[0]) * f[1] / n2) : 0.f;
    for (std::size_t j = 0; j < D_; ++j) v[j] *= s;
    unrotate(v.data());
    for (std::size_t j = 0; j < dim_; ++j) out[j] = centroid_[j] + v[j];
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
    w.add_array(section::kRaBitQFactors, factors_);
  }
  void read(const IndexFileReader& r, std::size_t count, bool view) override {
    AlignedArray<std::uint32_t> params = r.array<std::uint32_t>(section::kRaBitQParams, 8, false);
    if (params[0] != kFormatVersion || params[1] != dim_ || params[2] != D_ || params[3] != std::uint32_t(bits_) ||
        params[4] != std::uint32_t(kRaBitQRounds) || params[7] > 1)
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
    AlignedArray<float> factors = r.array<float>(section::kRaBitQFactors, count * kFactors, view);
    for (std::size_t j = 0; j < factors.size(); ++j)
      if (!std::isfinite(factors[j])) throw FormatError("corrupt index file: invalid rabitq factors");
    centroid_ = std::move(centroid);
    signs_ = std::move(signs);
    codes_ = std::move(codes);
    factors_ = std::move(factors);
  }
  std::size_t bytes_per_row() const override { return row_bytes_ + kFactors * sizeof(float); }

  // ------------------------------------------------------------------ scoring
  const std::uint8_t* code(node_t i) const { return codes_.data() + std::size_t(i) * row_bytes_; }
  const float* factor(node_t i) const { return factors_.data() + std::size_t(i) * kFactors; }
  std::size_t code_bytes() const { return row_bytes_; }
  void prefetch(node_t i) const {
    prefetch_l2_range(code(i), row_bytes_);
    prefetch_l2(factor(i));
  }

  float score(const Prepared& p, node_t i) const {
    const float* f = factor(i);
    float ydotq;  // <y, q'>
    if (bits_ == 1) {
      std::uint32_t ip, pc;
      rabitq_kernels().ip_bin_u4(reinterpret_cast<const std::uint64_t*>(code(i)), p.planes.data(), D_ / 64, &ip, &pc);
      ydotq = p.lo * (float(pc) - 0.5f * float(D_)) + p.delta * (float(ip) - 0.5f * p.sum_k);
    } else {
      const float m = 0.5f * float((1u << bits_) - 1u);
      ydotq = p.scale * (float(dot_codes(code(i), p.q8.data())) - m * p.sum_q8);
    }
    const float est = ydotq / f[1];  // ~ <r, q'>
    if (metric_ == Metric::L2) return f[0] * f[0] + p.qc_norm2 - 2.f * f[0] * est;
    return 1.0f - (f[0] * est + f[2] + p.cq);
  }

  Prepared prepare(const float* q) const {
    Prepared p;
    thread_local std::vector<float> v;
    v.assign(D_, 0.f);
    double qc2 = 0.0, cq = 0.0;
    const bool have_c = trained();  // an untrained store has no rows to measure, but stays safe
    for (std::size_t j = 0; j < dim_; ++j) {
      const float cj = have_c ? centroid_[j] : 0.f;
      v[j] = q[j] - cj;
      qc2 += double(v[j]) * v[j];
      cq += double(cj) * q[j];
    }
    p.qc_norm2 = static_cast<float>(qc2);
    p.cq = static_cast<float>(cq);
    rotate(v.data());
    if (bits_ == 1) {
      const std::size_t words = D_ / 64;
      p.planes.assign(4 * words, 0);
      const auto mm = std::minmax_element(v.begin(), v.end());
      p.lo = *mm.first;
      p.delta = (*mm.second - *mm.first) / 15.f;
      double sum = 0.0;
      for (std::size_t j = 0; j < D_; ++j) {
        float t = p.delta > 0.f ? std::nearbyint((v[j] - p.lo) / p.delta) : 0.f;
        t = std::min(std::max(t, 0.f), 15.f);
        const unsigned k = static_cast<unsigned>(t);
        sum += k;
        for (unsigned b = 0; b < 4; ++b)
          if (k & (1u << b)) p.planes[b * words + j / 64] |= std::uint64_t(1) << (j % 64);
      }
      p.sum_k = static_cast<float>(sum);
    } else {
      float amax = 0.f;
      for (std::size_t j = 0; j < D_; ++j) amax = std::max(amax, std::fabs(v[j]));
      p.scale = amax > 0.f ? amax / 127.f : 0.f;
      p.q8.resize(D_);
      std::int64_t sum = 0;
      for (std::size_t j = 0; j < D_; ++j) {
        const float t = p.scale > 0.f ? std::nearbyint(v[j] / p.scale) : 0.f;
        p.q8[j] = static_cast<std::int8_t>(std::min(std::max(t, -127.f), 127.f));
        sum += p.q8[j];
      }
      p.sum_q8 = static_cast<float>(sum);
    }
    return p;
  }

 private:
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
      const std::int8_t* s = signs_.data() + std::size_t(r) * D_;
      for (std::size_t j = 0; j < D_; ++j) v[j] *= float(s[j]);
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
      const std::int8_t* s = signs_.data() + std::size_t(r) * D_;
      for (std::size_t j = 0; j < D_; ++j) v[j] *= float(s[j]);
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

  void encode(const float* x, std::uint8_t* out, float* f) const {
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
    f[0] = static_cast<float>(norm);
    f[2] = static_cast<float>(xc);
    if (!(norm > 0.0)) {  // x == c: any code; the estimate is multiplied by |x - c| = 0
      f[1] = 1.f;
      f[3] = 1.f;
      return;
    }
    rotate(v.data());
    const float inv = static_cast<float>(1.0 / norm);
    for (std::size_t j = 0; j < D_; ++j) v[j] *= inv;  // r, a unit vector
    double yr = 0.0, y2 = 0.0;
    if (bits_ == 1) {
      for (std::size_t j = 0; j < D_; ++j) {
        if (v[j] >= 0.f) out[j >> 3] |= static_cast<std::uint8_t>(1u << (j & 7));
        yr += 0.5 * std::fabs(double(v[j]));
      }
      y2 = 0.25 * double(D_);
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
    f[1] = static_cast<float>(yr);
    f[3] = static_cast<float>(yr / std::sqrt(y2));
  }

  std::size_t dim_, D_;
  Metric metric_;
  int bits_;
  std::size_t row_bytes_;
  AlignedArray<float> centroid_;     // dim (empty until trained)
  AlignedArray<std::int8_t> signs_;  // kRaBitQRounds * D, +-1
  AlignedArray<std::uint8_t> codes_;
  AlignedArray<float> factors_;      // kFactors per row
};

}  // namespace

std::unique_ptr<CodeStore> make_rabitq_store(std::size_t dim, Metric metric, int bits) {
  return std::make_unique<RaBitQStoreImpl>(dim, metric, bits);
}

}  // namespace vecdex
