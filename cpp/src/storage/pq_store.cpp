// Product quantisation store (storage/pq_store.h): k-means codebooks per sub-space, codes as
// bytes (8-bit) or in the 4-bit fast-scan block layout, per-query look-up tables.
#include "vecdex/storage/pq_store.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "vecdex/simd/pq_kernels.h"
#include "vecdex/simd/prefetch.h"
#include "vecdex/storage/aligned_array.h"

namespace vecdex {

std::size_t pq_default_subquantizers(std::size_t dim, int bits) {
  const std::size_t per = bits == 8 ? 4 : 2;
  return std::max<std::size_t>(1, dim / per);
}

namespace {

constexpr std::uint32_t kPQFormatVersion = 1;
constexpr int kKMeansIterations = 20;
constexpr std::uint64_t kSeed = 0x5eed1234abcdULL;
constexpr std::size_t kEncodeChunk = 8192;

// A uniform index below n from a 64-bit generator (the same on every platform, unlike
// std::uniform_int_distribution; the tiny modulo bias does not matter for seeding).
std::size_t rand_below(std::mt19937_64& rng, std::size_t n) { return static_cast<std::size_t>(rng() % n); }

// The first `count` values of a random permutation of 0..n-1 (partial Fisher-Yates).
std::vector<std::size_t> sample_indices(std::size_t n, std::size_t count, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < count; ++i) std::swap(idx[i], idx[i + rand_below(rng, n - i)]);
  idx.resize(count);
  return idx;
}

// Transposed centroids (ct[j*k + c]) and squared norms of one sub-space's codebook.
void transpose_codebook(const float* cb, std::size_t k, std::size_t d, float* ct, float* cnorm) {
  for (std::size_t c = 0; c < k; ++c) {
    float s = 0.f;
    for (std::size_t j = 0; j < d; ++j) {
      ct[j * k + c] = cb[c * d + j];
      s += cb[c * d + j] * cb[c * d + j];
    }
    cnorm[c] = s;
  }
}

// k-means on n rows of d values (row i at x + i*stride) into k centroids (out: k x d).
void kmeans(const float* x, std::size_t n, std::size_t stride, std::size_t d, std::size_t k, float* out,
            std::uint64_t seed) {
  if (n <= k) {
    // Too few rows for distinct centroids: each row is a centroid (repeated; encoding picks the
    // lowest index, so duplicates are never used).
    for (std::size_t c = 0; c < k; ++c) std::copy(x + (c % n) * stride, x + (c % n) * stride + d, out + c * d);
    return;
  }
  const std::vector<std::size_t> seeds = sample_indices(n, k, seed);
  for (std::size_t c = 0; c < k; ++c) std::copy(x + seeds[c] * stride, x + seeds[c] * stride + d, out + c * d);

  const PqKernels& pk = pq_kernels();
  std::vector<float> ct(d * k), cnorm(k);
  std::vector<std::uint32_t> labels(n, 0), prev(n, std::numeric_limits<std::uint32_t>::max());
  std::vector<double> sums(k * d);
  std::vector<std::size_t> counts(k);
  for (int it = 0; it < kKMeansIterations; ++it) {
    transpose_codebook(out, k, d, ct.data(), cnorm.data());
    pk.nearest(x, n, stride, d, ct.data(), cnorm.data(), k, labels.data());
    if (labels == prev) break;
    prev = labels;
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t c = labels[i];
      ++counts[c];
      for (std::size_t j = 0; j < d; ++j) sums[c * d + j] += x[i * stride + j];
    }
    for (std::size_t c = 0; c < k; ++c) {
      if (counts[c] == 0) continue;
      for (std::size_t j = 0; j < d; ++j) out[c * d + j] = static_cast<float>(sums[c * d + j] / double(counts[c]));
    }
    // Empty clusters: split the largest cluster in two slightly perturbed copies.
    for (std::size_t c = 0; c < k; ++c) {
      if (counts[c] != 0) continue;
      std::size_t big = 0;
      for (std::size_t b = 1; b < k; ++b)
        if (counts[b] > counts[big]) big = b;
      if (counts[big] < 2) break;
      constexpr float kEps = 1.f / 1024.f;
      for (std::size_t j = 0; j < d; ++j) {
        const float v = out[big * d + j];
        const float delta = kEps * std::fabs(v) + 1e-7f;
        out[c * d + j] = (j % 2) ? v + delta : v - delta;
        out[big * d + j] = (j % 2) ? v - delta : v + delta;
      }
      counts[c] = counts[big] / 2;
      counts[big] -= counts[c];
    }
  }
}

class PqStore;

// Per-query tables. The float table is built at construction; the 4-bit fast-scan table the
// first time distances_range() needs it.
class PqQueryDistance final : public QueryDistance {
 public:
  PqQueryDistance(const PqStore& store, const float* query);
  float distance(node_t id) override;
  void distances(const node_t* ids, std::size_t n, float* out) override;
  void distances_range(node_t first, std::size_t n, float* out) override;

 private:
  void build_quantized_lut();
  const PqStore& s_;
  std::vector<float> lut_;  // M x ksub
  float c0_;                // 0 (l2) or 1 (ip / cosine); the table holds -dot for ip / cosine
  std::vector<std::uint8_t> qlut_;
  float qbias_ = 0.f, qinv_ = 0.f;
  std::vector<std::uint16_t> sums_;
};

class PqStore final : public CodeStore {
 public:
  PqStore(std::size_t dim, Metric metric, std::size_t m, int bits) : dim_(dim), metric_(metric) {
    if (bits != 4 && bits != 8) throw InvalidArgument("pq bits must be 4 or 8, got " + std::to_string(bits));
    if (m == 0 || m > dim)
      throw InvalidArgument("pq subquantizers must be between 1 and dim (" + std::to_string(dim) + "), got " +
                            std::to_string(m));
    configure(m, bits);
  }

  // ---- accessors used by PqQueryDistance
  std::size_t m() const { return m_; }
  std::size_t ksub() const { return ksub_; }
  std::size_t dsub() const { return dsub_; }
  std::size_t pdim() const { return pdim_; }
  int bits() const { return bits_; }
  const float* ct(std::size_t s) const { return ct_.data() + s * dsub_ * ksub_; }
  std::size_t block_bytes() const { return 16 * m_; }
  const std::uint8_t* codes() const { return codes_.data(); }
  unsigned code_at(node_t r, std::size_t s) const {
    if (bits_ == 8) return codes_[std::size_t(r) * m_ + s];
    const std::uint8_t byte = codes_[(r / kPQBlockRows) * block_bytes() + 16 * s + (r & 15)];
    return (r & 16) ? unsigned(byte >> 4) : unsigned(byte & 0x0F);
  }
  void prefetch_row(node_t r) const {
    if (bits_ == 8) {
      const char* p = reinterpret_cast<const char*>(codes_.data() + std::size_t(r) * m_);
      for (std::size_t off = 0; off < m_; off += 64) prefetch_l2(p + off);
    } else {
      const std::uint8_t* blk = codes_.data() + (r / kPQBlockRows) * block_bytes() + (r & 15);
      for (std::size_t s = 0; s < m_; s += 4) prefetch_l2(blk + 16 * s);
    }
  }
  // Float table for a query already padded to pdim(): l2 partial squared distances, or -dot.
  void build_lut(const float* q, float* lut) const {
    for (std::size_t s = 0; s < m_; ++s) {
      const float* qs = q + s * dsub_;
      const float* c = ct(s);
      float* t = lut + s * ksub_;
      std::fill(t, t + ksub_, 0.f);
      for (std::size_t j = 0; j < dsub_; ++j) {
        const float v = qs[j];
        const float* cj = c + j * ksub_;
        if (metric_ == Metric::L2) {
          for (std::size_t k = 0; k < ksub_; ++k) {
            const float diff = v - cj[k];
            t[k] += diff * diff;
          }
        } else {
          for (std::size_t k = 0; k < ksub_; ++k) t[k] -= v * cj[k];
        }
      }
    }
  }
  float adc(const float* lut, node_t r) const {
    float acc = 0.f;
    if (bits_ == 8) {
      const std::uint8_t* c = codes_.data() + std::size_t(r) * m_;
      for (std::size_t s = 0; s < m_; ++s) acc += lut[s * 256 + c[s]];
    } else {
      const std::uint8_t* blk = codes_.data() + (r / kPQBlockRows) * block_bytes() + (r & 15);
      const unsigned shift = (r & 16) ? 4 : 0;
      for (std::size_t s = 0; s < m_; ++s) acc += lut[s * 16 + ((blk[16 * s] >> shift) & 0x0F)];
    }
    return acc;
  }
  void pad_query(const float* q, float* out) const {
    std::copy(q, q + dim_, out);
    std::fill(out + dim_, out + pdim_, 0.f);
  }

  // ---- VectorStore
  std::size_t dim() const override { return dim_; }
  std::size_t size() const override { return n_; }
  Metric metric() const override { return metric_; }
  std::unique_ptr<QueryDistance> query_distance(const float* query) const override {
    if (!trained()) throw InvalidArgument("pq store is not trained");
    return std::make_unique<PqQueryDistance>(*this, query);
  }
  float pair_distance(node_t a, node_t b) const override {
    float d;
    pair_distances(a, &b, 1, &d);
    return d;
  }
  void pair_distances(node_t a, const node_t* b, std::size_t n, float* out) const override {
    thread_local std::vector<float> row, other, lut;
    row.resize(pdim_);
    decode_padded(a, row.data());
    const float c0 = metric_ == Metric::L2 ? 0.f : 1.f;
    if (2 * n < ksub_) {
      // Few rows: decode each and measure directly (cheaper than a ksub-entry table).
      other.resize(pdim_);
      const DistanceKernels& k = kernels();
      for (std::size_t i = 0; i < n; ++i) {
        decode_padded(b[i], other.data());
        out[i] = metric_ == Metric::L2 ? k.l2sq(row.data(), other.data(), pdim_)
                                       : 1.f - k.dot(row.data(), other.data(), pdim_);
      }
      return;
    }
    lut.resize(m_ * ksub_);
    build_lut(row.data(), lut.data());
    for (std::size_t i = 0; i < n; ++i) out[i] = c0 + adc(lut.data(), b[i]);
  }
  std::size_t memory_bytes() const override {
    return codes_.bytes() + codebooks_.bytes() + ct_.bytes() + cnorm_.bytes();
  }

  // ---- CodeStore
  Quantization quantization() const override { return kQuantizationPQ; }
  bool trained() const override { return codebooks_.size() == m_ * ksub_ * dsub_; }
  void train(const float* rows, std::size_t n) override {
    if (n == 0) throw InvalidArgument("training needs at least one vector");
    // 64 rows per centroid for 8-bit codes, 1024 for 4-bit: plenty for k-means, and training
    // 64k x 384 stays a few seconds on two cores.
    const std::size_t cap = 16384;
    const std::size_t ns = std::min(n, cap);
    std::vector<std::size_t> pick;
    if (ns < n) {
      pick = sample_indices(n, ns, kSeed);
      std::sort(pick.begin(), pick.end());  // sequential reads of the source rows
    }
    std::vector<float> sample(ns * pdim_, 0.f);
    for (std::size_t i = 0; i < ns; ++i) {
      const float* src = rows + (pick.empty() ? i : pick[i]) * dim_;
      std::copy(src, src + dim_, sample.data() + i * pdim_);
    }
    AlignedArray<float> cb;
    cb.resize(m_ * ksub_ * dsub_);
    float* out = cb.mutable_data();
    const std::int64_t m = static_cast<std::int64_t>(m_);
#pragma omp parallel for schedule(dynamic, 1) if (ns * pdim_ * ksub_ > (std::size_t(1) << 20))
    for (std::int64_t s = 0; s < m; ++s) {
      kmeans(sample.data() + std::size_t(s) * dsub_, ns, pdim_, dsub_, ksub_, out + std::size_t(s) * ksub_ * dsub_,
             kSeed + 7919 * std::uint64_t(s));
    }
    codebooks_ = std::move(cb);
    derive();
  }
  void reserve(std::size_t n) override { codes_.reserve(code_bytes_for(n)); }
  void append(const float* rows, std::size_t n) override {
    if (!trained()) throw InvalidArgument("pq store must be trained before rows are added");
    if (n == 0) return;
    const std::size_t old = n_;
    codes_.resize(code_bytes_for(old + n), 0);
    std::uint8_t* codes = codes_.mutable_data();
    std::vector<float> pad;
    std::vector<std::uint32_t> labels;
    const PqKernels& pk = pq_kernels();
    for (std::size_t c0 = 0; c0 < n; c0 += kEncodeChunk) {
      const std::size_t cn = std::min(kEncodeChunk, n - c0);
      const float* x = rows + c0 * dim_;
      std::size_t stride = dim_;
      if (pdim_ != dim_) {
        pad.assign(cn * pdim_, 0.f);
        for (std::size_t i = 0; i < cn; ++i) std::copy(x + i * dim_, x + (i + 1) * dim_, pad.data() + i * pdim_);
        x = pad.data();
        stride = pdim_;
      }
      labels.resize(cn * m_);
      const std::int64_t m = static_cast<std::int64_t>(m_);
#pragma omp parallel for schedule(dynamic, 1) if (cn * pdim_ * ksub_ > (std::size_t(1) << 20))
      for (std::int64_t s = 0; s < m; ++s) {
        pk.nearest(x + std::size_t(s) * dsub_, cn, stride, dsub_, ct(s), cnorm_.data() + std::size_t(s) * ksub_,
                   ksub_, labels.data() + std::size_t(s) * cn);
      }
      for (std::size_t i = 0; i < cn; ++i) {
        const std::size_t r = old + c0 + i;
        for (std::size_t s = 0; s < m_; ++s) {
          const std::uint32_t c = labels[s * cn + i];
          if (bits_ == 8) {
            codes[r * m_ + s] = static_cast<std::uint8_t>(c);
          } else {
            std::uint8_t& byte = codes[(r / kPQBlockRows) * block_bytes() + 16 * s + (r & 15)];
            byte = (r & 16) ? static_cast<std::uint8_t>((byte & 0x0F) | (c << 4))
                            : static_cast<std::uint8_t>((byte & 0xF0) | c);
          }
        }
      }
    }
    n_ = old + n;
  }
  void decode(node_t i, float* out) const override {
    for (std::size_t s = 0; s < m_; ++s) {
      const float* c = codebooks_.data() + (s * ksub_ + code_at(i, s)) * dsub_;
      const std::size_t base = s * dsub_;
      const std::size_t len = base >= dim_ ? 0 : std::min(dsub_, dim_ - base);
      std::copy(c, c + len, out + base);
    }
  }
  bool is_view() const override { return codes_.is_view(); }
  void write(IndexFileWriter& w) const override {
    AlignedArray<std::uint32_t> p;
    p.resize(5);
    p[0] = kPQFormatVersion;
    p[1] = static_cast<std::uint32_t>(dim_);
    p[2] = static_cast<std::uint32_t>(m_);
    p[3] = static_cast<std::uint32_t>(bits_);
    p[4] = static_cast<std::uint32_t>(dsub_);
    w.add_array(section::kPQParams, p);
    w.add_array(section::kPQCodebooks, codebooks_);
    w.add_array(section::kPQCodes, codes_);
  }
  void read(const IndexFileReader& r, std::size_t count, bool view) override {
    const AlignedArray<std::uint32_t> p = r.array<std::uint32_t>(section::kPQParams, 5, false);
    if (p[0] != kPQFormatVersion) throw FormatError("corrupt index file: unknown pq format version");
    const std::size_t m = p[2];
    const int bits = static_cast<int>(p[3]);
    if (p[1] != dim_ || (bits != 4 && bits != 8) || m == 0 || m > dim_ || p[4] != (dim_ + m - 1) / m)
      throw FormatError("corrupt index file: invalid pq parameters");
    configure(m, bits);
    if (r.bytes(section::kPQCodebooks).second == 0) {
      if (count != 0) throw FormatError("corrupt index file: pq codes without codebooks");
      codebooks_ = AlignedArray<float>();
    } else {
      codebooks_ = r.array<float>(section::kPQCodebooks, m_ * ksub_ * dsub_, view);
      for (std::size_t i = 0; i < codebooks_.size(); ++i) {
        if (!std::isfinite(codebooks_[i])) throw FormatError("corrupt index file: invalid pq codebooks");
      }
      derive();
    }
    codes_ = r.array<std::uint8_t>(section::kPQCodes, code_bytes_for(count), view);
    n_ = count;
  }
  std::size_t bytes_per_row() const override { return bits_ == 8 ? m_ : (m_ + 1) / 2; }

 private:
  void configure(std::size_t m, int bits) {
    m_ = m;
    bits_ = bits;
    ksub_ = std::size_t(1) << bits;
    dsub_ = (dim_ + m - 1) / m;
    pdim_ = m_ * dsub_;
  }
  std::size_t code_bytes_for(std::size_t rows) const {
    if (bits_ == 8) return rows * m_;
    return (rows + kPQBlockRows - 1) / kPQBlockRows * block_bytes();
  }
  // The transposed codebooks and centroid norms the kernels use.
  void derive() {
    ct_ = AlignedArray<float>();
    cnorm_ = AlignedArray<float>();
    ct_.resize(m_ * dsub_ * ksub_);
    cnorm_.resize(m_ * ksub_);
    for (std::size_t s = 0; s < m_; ++s)
      transpose_codebook(codebooks_.data() + s * ksub_ * dsub_, ksub_, dsub_, ct_.mutable_data() + s * dsub_ * ksub_,
                         cnorm_.mutable_data() + s * ksub_);
  }
  void decode_padded(node_t i, float* out) const {
    for (std::size_t s = 0; s < m_; ++s) {
      const float* c = codebooks_.data() + (s * ksub_ + code_at(i, s)) * dsub_;
      std::copy(c, c + dsub_, out + s * dsub_);
    }
  }

  std::size_t dim_;
  Metric metric_;
  std::size_t m_ = 0, ksub_ = 0, dsub_ = 0, pdim_ = 0;
  int bits_ = 0;
  std::size_t n_ = 0;
  AlignedArray<float> codebooks_;  // [m][ksub][dsub]
  AlignedArray<float> ct_;         // [m][dsub][ksub]
  AlignedArray<float> cnorm_;      // [m][ksub]
  AlignedArray<std::uint8_t> codes_;
};

PqQueryDistance::PqQueryDistance(const PqStore& store, const float* query)
    : s_(store), c0_(store.metric() == Metric::L2 ? 0.f : 1.f) {
  std::vector<float> q(store.pdim());
  store.pad_query(query, q.data());
  lut_.resize(store.m() * store.ksub());
  store.build_lut(q.data(), lut_.data());
}

float PqQueryDistance::distance(node_t id) { return c0_ + s_.adc(lut_.data(), id); }

void PqQueryDistance::distances(const node_t* ids, std::size_t n, float* out) {
  for (std::size_t i = 0; i < n; ++i) s_.prefetch_row(ids[i]);
  for (std::size_t i = 0; i < n; ++i) out[i] = c0_ + s_.adc(lut_.data(), ids[i]);
}

void PqQueryDistance::build_quantized_lut() {
  const std::size_t m = s_.m();
  const float qmax = static_cast<float>(std::min<std::size_t>(255, 65535 / m));
  std::vector<float> lo(m);
  float range = 0.f;
  double bias = c0_;
  for (std::size_t s = 0; s < m; ++s) {
    const float* t = lut_.data() + s * 16;
    const auto mm = std::minmax_element(t, t + 16);
    lo[s] = *mm.first;
    range = std::max(range, *mm.second - *mm.first);
    bias += *mm.first;
  }
  const float scale = range > 0.f ? qmax / range : 0.f;
  qlut_.resize(m * 16);
  for (std::size_t s = 0; s < m; ++s) {
    for (std::size_t k = 0; k < 16; ++k) {
      const float v = std::nearbyint((lut_[s * 16 + k] - lo[s]) * scale);
      qlut_[s * 16 + k] = static_cast<std::uint8_t>(std::min(std::max(v, 0.f), qmax));
    }
  }
  qbias_ = static_cast<float>(bias);
  qinv_ = scale > 0.f ? 1.f / scale : 0.f;
}

void PqQueryDistance::distances_range(node_t first, std::size_t n, float* out) {
  if (s_.bits() == 8) {
    const float* lut = lut_.data();
    const std::size_t m = s_.m();
    const std::uint8_t* c = s_.codes() + std::size_t(first) * m;
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4, c += 4 * m) {
      float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
      for (std::size_t s = 0; s < m; ++s) {
        const float* t = lut + s * 256;
        a0 += t[c[s]];
        a1 += t[c[m + s]];
        a2 += t[c[2 * m + s]];
        a3 += t[c[3 * m + s]];
      }
      out[i] = c0_ + a0;
      out[i + 1] = c0_ + a1;
      out[i + 2] = c0_ + a2;
      out[i + 3] = c0_ + a3;
    }
    for (; i < n; ++i) out[i] = distance(first + static_cast<node_t>(i));
    return;
  }
  if (n == 0) return;
  if (qlut_.empty()) build_quantized_lut();
  const PqKernels& pk = pq_kernels();
  const std::size_t bb = s_.block_bytes();
  constexpr std::size_t kChunkBlocks = 64;
  sums_.resize(kChunkBlocks * kPQBlockRows);
  std::size_t row = first;
  const std::size_t end = std::size_t(first) + n;
  while (row < end) {
    const std::size_t block = row / kPQBlockRows, j0 = row % kPQBlockRows;
    const std::size_t last_block = (end - 1) / kPQBlockRows;
    const std::size_t nb = std::min(kChunkBlocks, last_block - block + 1);
    pk.fastscan4(s_.codes() + block * bb, nb, s_.m(), qlut_.data(), sums_.data());
    const std::size_t take = std::min(end - row, nb * kPQBlockRows - j0);
    float* o = out + (row - first);
    for (std::size_t i = 0; i < take; ++i) o[i] = qbias_ + qinv_ * float(sums_[j0 + i]);
    row += take;
  }
}

}  // namespace

std::unique_ptr<CodeStore> make_pq_store(std::size_t dim, Metric metric, std::size_t subquantizers, int bits) {
  return std::make_unique<PqStore>(dim, metric, subquantizers, bits);
}

}  // namespace vecdex
