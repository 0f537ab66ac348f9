// Quantised stores: fp16/bf16 rows and scalar quantisation (SQ8, SQ8 uniform, SQ4). Each keeps
// its codes in one aligned array, prepares a query once per search, and measures with the
// QuantKernels of the active SIMD level.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "vecdex/simd/prefetch.h"
#include "vecdex/simd/quant_kernels.h"
#include "vecdex/storage/aligned_array.h"
#include "vecdex/storage/code_store.h"
#include "vecdex/storage/float_store.h"
#include "vecdex/storage/prepared_store.h"
#include "vecdex/storage/pq_store.h"
#include "vecdex/storage/rabitq_store.h"

namespace vecdex {

const char* quantization_name(Quantization q) {
  switch (q) {
    case Quantization::None: return "none";
    case Quantization::FP16: return "fp16";
    case Quantization::BF16: return "bf16";
    case Quantization::SQ8: return "sq8";
    case Quantization::SQ8U: return "sq8u";
    case Quantization::SQ4: return "sq4";
    case Quantization::PQ: return "pq";
    case Quantization::RaBitQ1: return "rabitq1";
    case Quantization::RaBitQ2: return "rabitq2";
    case Quantization::RaBitQ3: return "rabitq3";
    case Quantization::RaBitQ4: return "rabitq4";
    case Quantization::RaBitQ5: return "rabitq5";
    case Quantization::RaBitQ6: return "rabitq6";
    case Quantization::RaBitQ7: return "rabitq7";
    case Quantization::RaBitQ8: return "rabitq8";
  }
  return "unknown";
}

Quantization quantization_from_name(const std::string& name) {
  for (Quantization q : {Quantization::None, Quantization::FP16, Quantization::BF16, Quantization::SQ8,
                         Quantization::SQ8U, Quantization::SQ4, Quantization::PQ,
                         Quantization::RaBitQ1, Quantization::RaBitQ2, Quantization::RaBitQ3, Quantization::RaBitQ4,
                         Quantization::RaBitQ5, Quantization::RaBitQ6, Quantization::RaBitQ7, Quantization::RaBitQ8}) {
    if (name == quantization_name(q)) return q;
  }
  throw InvalidArgument("unknown quantization '" + name + "': expected one of none, fp16, bf16, sq8, sq8u, sq4, pq, rabitq1..rabitq8");
}

namespace {

// ---------------------------------------------------------------------------------------------
// fp16 / bf16: each value rounded to 16 bits, widened in registers while measuring.

class HalfStore final : public PreparedQueryStore<HalfStore> {
 public:
  HalfStore(std::size_t dim, Metric metric, bool bf16) : dim_(dim), metric_(metric), bf16_(bf16) {}

  struct Prepared {
    std::vector<float> q;
  };
  const std::uint16_t* code(node_t i) const { return codes_.data() + std::size_t(i) * dim_; }
  void prefetch(node_t i) const { prefetch_l2_range(code(i), bytes_per_row()); }
  float score(const Prepared& p, node_t i) const {
    const QuantKernels& k = quant_kernels();
    if (metric_ == Metric::L2) return (bf16_ ? k.l2sq_bf16 : k.l2sq_f16)(p.q.data(), code(i), dim_);
    return 1.0f - (bf16_ ? k.dot_bf16 : k.dot_f16)(p.q.data(), code(i), dim_);
  }

  std::size_t dim() const override { return dim_; }
  std::size_t size() const override { return codes_.size() / dim_; }
  Metric metric() const override { return metric_; }
  Prepared prepare(const float* q) const { return Prepared{{q, q + dim_}}; }
  std::size_t memory_bytes() const override { return codes_.bytes(); }

  Quantization quantization() const override { return bf16_ ? Quantization::BF16 : Quantization::FP16; }
  bool trained() const override { return true; }
  void train(const float*, std::size_t) override {}
  void reserve(std::size_t n) override { codes_.reserve(n * dim_); }
  void append(const float* rows, std::size_t n) override {
    const std::size_t old = codes_.size();
    codes_.resize(old + n * dim_);
    const QuantKernels& k = quant_kernels();
    (bf16_ ? k.f32_to_bf16 : k.f32_to_f16)(rows, codes_.mutable_data() + old, n * dim_);
  }
  void decode(node_t i, float* out) const override {
    const QuantKernels& k = quant_kernels();
    (bf16_ ? k.bf16_to_f32 : k.f16_to_f32)(code(i), out, dim_);
  }
  bool is_view() const override { return codes_.is_view(); }
  void write(IndexFileWriter& w) const override { w.add_array(section_id(), codes_); }
  void read(const IndexFileReader& r, std::size_t count, bool view) override {
    codes_ = r.array<std::uint16_t>(section_id(), count * dim_, view);
  }
  std::size_t bytes_per_row() const override { return dim_ * sizeof(std::uint16_t); }

 private:
  std::uint32_t section_id() const { return bf16_ ? section::kCodesBF16 : section::kCodesF16; }
  std::size_t dim_;
  Metric metric_;
  bool bf16_;
  AlignedArray<std::uint16_t> codes_;
};

// ---------------------------------------------------------------------------------------------
// Scalar quantisation with a trained range per dimension: value = offset + scale * code, with
// 255 steps (SQ8) or 15 (SQ4, two codes per byte).
//
// SQ8 measures with float weights. SQ4 rows are small enough that arithmetic, not memory,
// dominates, so SQ4 quantises the query's weights w = q * scale to int8 once per search and
// takes an exact integer dot product with the 4-bit codes: dot(q, x) = sum(q * offset) +
// w_scale * sum(w_code * code), and |q - x|^2 = |q|^2 - 2 dot(q, x) + |x|^2 with |x|^2 (of the
// decoded row) stored per row. The int8 weights cost about 1/254 relative error per term, far
// below the 4-bit codes' own error, and re-ranking removes both.

class ScalarQuantStore final : public PreparedQueryStore<ScalarQuantStore> {
 public:
  ScalarQuantStore(std::size_t dim, Metric metric, int bits)
      : dim_(dim), metric_(metric), bits_(bits), levels_(bits == 8 ? 255 : 15),
        row_bytes_(bits == 8 ? dim : (dim + 1) / 2) {}

  struct Prepared {
    std::vector<float> v;  // SQ8 l2: q - offset; SQ8 ip: q * scale
    float constant = 0.f;  // sum q * offset (SQ8 ip, SQ4)
    std::vector<std::int8_t> w;  // SQ4: q * scale as int8 codes of step w_scale
    float w_scale = 0.f;
    float q_norm = 0.f;  // SQ4 l2: |q|^2
  };
  const std::uint8_t* code(node_t i) const { return codes_.data() + std::size_t(i) * row_bytes_; }
  void prefetch(node_t i) const { prefetch_l2_range(code(i), row_bytes_); }
  float score(const Prepared& p, node_t i) const {
    const QuantKernels& k = quant_kernels();
    if (bits_ == 4) {
      const float dot = p.constant + p.w_scale * float(k.dot_u4_i8(code(i), p.w.data(), dim_));
      if (metric_ == Metric::L2) return std::max(0.f, p.q_norm - 2.f * dot + row_norms_[i]);
      return 1.0f - dot;
    }
    const float* scale = ranges_.data() + dim_;
    if (metric_ == Metric::L2)
      return (bits_ == 8 ? k.l2sq_u8_f32 : k.l2sq_u4_f32)(p.v.data(), scale, code(i), dim_);
    return 1.0f - (p.constant + (bits_ == 8 ? k.dot_u8_f32 : k.dot_u4_f32)(p.v.data(), code(i), dim_));
  }
  Prepared prepare(const float* q) const {
    Prepared p;
    p.v.resize(dim_);
    const float* offset = ranges_.data();
    const float* scale = ranges_.data() + dim_;
    if (bits_ == 4) {
      float wmax = 0.f;
      for (std::size_t j = 0; j < dim_; ++j) {
        p.v[j] = q[j] * scale[j];
        wmax = std::max(wmax, std::fabs(p.v[j]));
        p.constant += q[j] * offset[j];
        p.q_norm += q[j] * q[j];
      }
      p.w_scale = wmax > 0.f ? wmax / 127.f : 0.f;
      p.w.resize(dim_);
      for (std::size_t j = 0; j < dim_; ++j)
        p.w[j] = static_cast<std::int8_t>(p.w_scale > 0.f ? std::nearbyint(p.v[j] / p.w_scale) : 0.f);
      return p;
    }
    for (std::size_t j = 0; j < dim_; ++j) {
      if (metric_ == Metric::L2) {
        p.v[j] = q[j] - offset[j];
      } else {
        p.v[j] = q[j] * scale[j];
        p.constant += q[j] * offset[j];
      }
    }
    return p;
  }

  std::size_t dim() const override { return dim_; }
  std::size_t size() const override { return row_bytes_ ? codes_.size() / row_bytes_ : 0; }
  Metric metric() const override { return metric_; }
  std::size_t memory_bytes() const override { return codes_.bytes() + ranges_.bytes() + row_norms_.bytes(); }

  Quantization quantization() const override { return bits_ == 8 ? Quantization::SQ8 : Quantization::SQ4; }
  bool trained() const override { return ranges_.size() == 2 * dim_; }
  void train(const float* rows, std::size_t n) override {
    if (n == 0) throw InvalidArgument("training needs at least one vector");
    std::vector<float> lo(dim_, std::numeric_limits<float>::infinity()), hi(dim_, -std::numeric_limits<float>::infinity());
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < dim_; ++j) {
        lo[j] = std::min(lo[j], rows[i * dim_ + j]);
        hi[j] = std::max(hi[j], rows[i * dim_ + j]);
      }
    }
    AlignedArray<float> r;
    r.resize(2 * dim_);
    for (std::size_t j = 0; j < dim_; ++j) {
      r[j] = lo[j];
      r[dim_ + j] = (hi[j] - lo[j]) / float(levels_);
    }
    ranges_ = std::move(r);
  }
  void reserve(std::size_t n) override {
    codes_.reserve(n * row_bytes_);
    if (bits_ == 4) row_norms_.reserve(n);
  }
  void append(const float* rows, std::size_t n) override {
    const std::size_t first = size();
    codes_.resize((first + n) * row_bytes_, 0);
    std::uint8_t* out = codes_.mutable_data() + first * row_bytes_;
    for (std::size_t i = 0; i < n; ++i) encode(rows + i * dim_, out + i * row_bytes_);
    if (bits_ == 4) {
      row_norms_.resize(first + n);
      std::vector<float> x(dim_);
      for (std::size_t i = 0; i < n; ++i) {
        decode(static_cast<node_t>(first + i), x.data());
        float norm = 0.f;
        for (float v : x) norm += v * v;
        row_norms_[first + i] = norm;
      }
    }
  }
  void decode(node_t i, float* out) const override {
    const std::uint8_t* c = code(i);
    const float* offset = ranges_.data();
    const float* scale = ranges_.data() + dim_;
    for (std::size_t j = 0; j < dim_; ++j) out[j] = offset[j] + scale[j] * float(code_at(c, j));
  }
  bool is_view() const override { return codes_.is_view(); }
  void write(IndexFileWriter& w) const override {
    w.add_array(section::kSQRanges, ranges_);
    w.add_array(section::kCodesSQ, codes_);
    if (bits_ == 4) w.add_array(section::kSQRowTerms, row_norms_);
  }
  void read(const IndexFileReader& r, std::size_t count, bool view) override {
    ranges_ = r.array<float>(section::kSQRanges, 2 * dim_, view);
    for (std::size_t j = 0; j < 2 * dim_; ++j) {
      if (!std::isfinite(ranges_[j]) || (j >= dim_ && ranges_[j] < 0.f))
        throw FormatError("corrupt index file: invalid quantisation ranges");
    }
    codes_ = r.array<std::uint8_t>(section::kCodesSQ, count * row_bytes_, view);
    if (bits_ == 4) row_norms_ = r.array<float>(section::kSQRowTerms, count, view);
  }
  std::size_t bytes_per_row() const override { return row_bytes_; }

 private:
  unsigned code_at(const std::uint8_t* c, std::size_t j) const {
    if (bits_ == 8) return c[j];
    return (j & 1) ? (c[j >> 1] >> 4) : (c[j >> 1] & 0xF);
  }
  void encode(const float* x, std::uint8_t* out) const {
    const float* offset = ranges_.data();
    const float* scale = ranges_.data() + dim_;
    for (std::size_t j = 0; j < dim_; ++j) {
      float t = scale[j] > 0.f ? (x[j] - offset[j]) / scale[j] : 0.f;
      // Values outside the trained range (rows added after training) saturate.
      t = std::min(std::max(std::nearbyint(t), 0.f), float(levels_));
      const unsigned c = static_cast<unsigned>(t);
      if (bits_ == 8) {
        out[j] = static_cast<std::uint8_t>(c);
      } else {
        out[j >> 1] = static_cast<std::uint8_t>((j & 1) ? (out[j >> 1] | (c << 4)) : (out[j >> 1] | c));
      }
    }
  }

  std::size_t dim_;
  Metric metric_;
  int bits_;
  unsigned levels_;
  std::size_t row_bytes_;
  AlignedArray<float> ranges_;  // dim offsets, then dim scales
  AlignedArray<std::uint8_t> codes_;
  AlignedArray<float> row_norms_;  // SQ4: |decoded row|^2
};

// ---------------------------------------------------------------------------------------------
// SQ8 with one range for every dimension: value = offset + scale * code. The query is quantised
// to int8 once, and a distance is one exact integer dot product (vpdpbusd with VNNI) plus
// per-row terms: dot(q, x) ~ offset * sum(q) + scale * q_scale * sum(code * q_code), and
// |q - x|^2 = |q|^2 - 2 dot(q, x) + |x|^2 with |x|^2 stored per row.

class UniformSQ8Store final : public PreparedQueryStore<UniformSQ8Store> {
 public:
  UniformSQ8Store(std::size_t dim, Metric metric) : dim_(dim), metric_(metric) {}

  struct Prepared {
    std::vector<std::int8_t> q;
    float q_scale = 0.f;
    float q_sum = 0.f;
    float q_norm = 0.f;
  };
  const std::uint8_t* code(node_t i) const { return codes_.data() + std::size_t(i) * dim_; }
  void prefetch(node_t i) const { prefetch_l2_range(code(i), dim_); }
  float score(const Prepared& p, node_t i) const {
    const std::int32_t raw = quant_kernels().dot_u8_i8(code(i), p.q.data(), dim_);
    const float dot = range_[0] * p.q_sum + range_[1] * p.q_scale * float(raw);
    if (metric_ == Metric::L2) return std::max(0.f, p.q_norm - 2.f * dot + row_norms_[i]);
    return 1.0f - dot;
  }
  Prepared prepare(const float* q) const {
    Prepared p;
    p.q.resize(dim_);
    float amax = 0.f;
    for (std::size_t j = 0; j < dim_; ++j) {
      amax = std::max(amax, std::fabs(q[j]));
      p.q_sum += q[j];
      p.q_norm += q[j] * q[j];
    }
    p.q_scale = amax > 0.f ? amax / 127.f : 0.f;
    for (std::size_t j = 0; j < dim_; ++j)
      p.q[j] = static_cast<std::int8_t>(p.q_scale > 0.f ? std::nearbyint(q[j] / p.q_scale) : 0.f);
    return p;
  }

  std::size_t dim() const override { return dim_; }
  std::size_t size() const override { return row_norms_.size(); }
  Metric metric() const override { return metric_; }
  std::size_t memory_bytes() const override { return codes_.bytes() + row_norms_.bytes() + range_.bytes(); }

  Quantization quantization() const override { return Quantization::SQ8U; }
  bool trained() const override { return range_.size() == 2; }
  void train(const float* rows, std::size_t n) override {
    if (n == 0) throw InvalidArgument("training needs at least one vector");
    const auto mm = std::minmax_element(rows, rows + n * dim_);
    AlignedArray<float> r;
    r.resize(2);
    r[0] = *mm.first;
    r[1] = (*mm.second - *mm.first) / 255.f;
    range_ = std::move(r);
  }
  void reserve(std::size_t n) override {
    codes_.reserve(n * dim_);
    row_norms_.reserve(n);
  }
  void append(const float* rows, std::size_t n) override {
    const std::size_t old = size();
    codes_.resize((old + n) * dim_);
    row_norms_.resize(old + n);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint8_t* c = codes_.mutable_data() + (old + i) * dim_;
      float norm = 0.f;
      for (std::size_t j = 0; j < dim_; ++j) {
        float t = range_[1] > 0.f ? (rows[i * dim_ + j] - range_[0]) / range_[1] : 0.f;
        t = std::min(std::max(std::nearbyint(t), 0.f), 255.f);
        c[j] = static_cast<std::uint8_t>(t);
        const float v = range_[0] + range_[1] * t;
        norm += v * v;
      }
      row_norms_[old + i] = norm;
    }
  }
  void decode(node_t i, float* out) const override {
    const std::uint8_t* c = code(i);
    for (std::size_t j = 0; j < dim_; ++j) out[j] = range_[0] + range_[1] * float(c[j]);
  }
  bool is_view() const override { return codes_.is_view(); }
  void write(IndexFileWriter& w) const override {
    w.add_array(section::kSQRanges, range_);
    w.add_array(section::kCodesSQ, codes_);
    w.add_array(section::kSQRowTerms, row_norms_);
  }
  void read(const IndexFileReader& r, std::size_t count, bool view) override {
    range_ = r.array<float>(section::kSQRanges, 2, view);
    if (!std::isfinite(range_[0]) || !std::isfinite(range_[1]) || range_[1] < 0.f)
      throw FormatError("corrupt index file: invalid quantisation range");
    codes_ = r.array<std::uint8_t>(section::kCodesSQ, count * dim_, view);
    row_norms_ = r.array<float>(section::kSQRowTerms, count, view);
  }
  std::size_t bytes_per_row() const override { return dim_; }

 private:
  std::size_t dim_;
  Metric metric_;
  AlignedArray<float> range_;  // offset, scale
  AlignedArray<std::uint8_t> codes_;
  AlignedArray<float> row_norms_;
};

}  // namespace

std::unique_ptr<CodeStore> make_code_store(Quantization q, std::size_t dim, Metric metric,
                                           const QuantizerParams& params) {
  switch (q) {
    case Quantization::None: return std::make_unique<FloatStore>(dim, metric);
    case Quantization::FP16: return std::make_unique<HalfStore>(dim, metric, false);
    case Quantization::BF16: return std::make_unique<HalfStore>(dim, metric, true);
    case Quantization::SQ8: return std::make_unique<ScalarQuantStore>(dim, metric, 8);
    case Quantization::SQ8U: return std::make_unique<UniformSQ8Store>(dim, metric);
    case Quantization::SQ4: return std::make_unique<ScalarQuantStore>(dim, metric, 4);
    case Quantization::PQ: {
      if (params.pq_bits != 4 && params.pq_bits != 8)
        throw InvalidArgument("pq_bits must be 4 or 8, got " + std::to_string(params.pq_bits));
      const std::size_t m = params.pq_subquantizers ? params.pq_subquantizers
                                                    : pq_default_subquantizers(dim, params.pq_bits);
      return make_pq_store(dim, metric, m, params.pq_bits);
    }
    case Quantization::RaBitQ1:
    case Quantization::RaBitQ2:
    case Quantization::RaBitQ3:
    case Quantization::RaBitQ4:
    case Quantization::RaBitQ5:
    case Quantization::RaBitQ6:
    case Quantization::RaBitQ7:
    case Quantization::RaBitQ8:
      return make_rabitq_store(dim, metric, static_cast<int>(q) - 6, params.rabitq_centroids);
  }
  throw InvalidArgument("unknown quantization");
}

}  // namespace vecdex
