#include "vecdex/cur/cur_index.h"

#include <cmath>
#include <mutex>

#include "vecdex/io/file_format.h"
#include "vecdex/search/topk.h"
#include "vecdex/simd/dispatch.h"
#include "vecdex/simd/quant_kernels.h"
#include "vecdex/threading.h"

namespace vecdex {
namespace cur {
namespace {

constexpr std::uint32_t kScoresF32 = fourcc('C', 'U', 'R', 'F');  // f32 rows x anchors
constexpr std::uint32_t kScoresF16 = fourcc('C', 'U', 'R', 'H');  // f16 rows x anchors
constexpr std::uint32_t kSideVectors = fourcc('C', 'U', 'R', 'V');  // f32 rows x side_dim
constexpr float kF16Max = 65504.0f;
// Below this many multiply-adds one thread scores every item faster than a team would start.
constexpr std::size_t kParallelWork = std::size_t(1) << 22;

bool f16_finite(std::uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

}  // namespace

const char* score_storage_name(ScoreStorage s) { return s == ScoreStorage::F16 ? "float16" : "float32"; }

ScoreStorage score_storage_from_name(const std::string& name) {
  if (name == "float32") return ScoreStorage::F32;
  if (name == "float16") return ScoreStorage::F16;
  throw InvalidArgument("unknown score storage '" + name + "': expected 'float32' or 'float16'");
}

CurIndex::CurIndex(std::size_t anchor_count, ScoreStorage storage, std::size_t side_dim)
    : anchor_count_(anchor_count), storage_(storage), side_dim_(side_dim) {
  if (anchor_count == 0 || anchor_count > (1u << 16)) throw InvalidArgument("anchor_count must be in [1, 65536]");
  if (side_dim > (1u << 16)) throw InvalidArgument("side_dim must be at most 65536");
}

std::size_t CurIndex::size() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  return rows() - deleted_count_;
}

std::vector<label_t> CurIndex::ids() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  std::vector<label_t> out;
  out.reserve(rows() - deleted_count_);
  for (std::size_t r = 0; r < rows(); ++r)
    if (!deleted_count_ || !deleted_.test(r)) out.push_back(labels_.label(static_cast<node_t>(r)));
  return out;
}

bool CurIndex::contains(label_t id) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  return labels_.contains(id);
}

label_t CurIndex::next_default_id() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  return labels_.next_default();
}

void CurIndex::add(const label_t* ids, std::size_t m, const float* scores, const float* side) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (m == 0) return;
  if (side_dim_ && !side) throw InvalidArgument("this index keeps dual-encoder vectors: give one per item");
  if (!side_dim_ && side) throw InvalidArgument("this index keeps no dual-encoder vectors");
  if (rows() + m > kMaxNodes) throw InvalidArgument("too many items");
  const std::size_t k = anchor_count_;
  for (std::size_t i = 0; i < m * k; ++i) {
    if (!std::isfinite(scores[i]))
      throw InvalidArgument("the score of item " + std::to_string(i / k) + " from anchor query " +
                            std::to_string(i % k) + " is NaN or infinite");
    if (storage_ == ScoreStorage::F16 && std::fabs(scores[i]) > kF16Max)
      throw InvalidArgument("score " + std::to_string(scores[i]) + " is outside the float16 range; use float32");
  }
  for (std::size_t i = 0; i < m * side_dim_; ++i)
    if (!std::isfinite(side[i]))
      throw InvalidArgument("the dual-encoder vector of item " + std::to_string(i / side_dim_) + " holds NaN or infinity");
  std::vector<label_t> assigned;
  if (!ids) {
    assigned.resize(m);
    for (std::size_t i = 0; i < m; ++i) assigned[i] = labels_.next_default() + i;
    ids = assigned.data();
  }
  labels_.check_new(ids, m);

  if (storage_ == ScoreStorage::F32) {
    scores_f32_.append(scores, m * k);
  } else {
    std::vector<std::uint16_t> half(m * k);
    quant_kernels().f32_to_f16(scores, half.data(), m * k);
    scores_f16_.append(half.data(), m * k);
  }
  if (side_dim_) side_.append(side, m * side_dim_);
  labels_.append(ids, m);
  if (deleted_count_) deleted_.grow(rows());
}

void CurIndex::remove(const label_t* ids, std::size_t n) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (n == 0) return;
  const std::vector<node_t> rs = labels_.distinct_rows_of(ids, n);
  deleted_.grow(rows());
  for (std::size_t i = 0; i < n; ++i) {
    deleted_.set(rs[i]);
    labels_.remove(ids[i]);
  }
  deleted_count_ += n;
}

void CurIndex::embedding_row(node_t row, float* out) const {
  const std::size_t k = anchor_count_;
  if (storage_ == ScoreStorage::F32) {
    const float* src = scores_f32_.data() + std::size_t(row) * k;
    std::copy(src, src + k, out);
  } else {
    quant_kernels().f16_to_f32(scores_f16_.data() + std::size_t(row) * k, out, k);
  }
}

void CurIndex::embeddings(const label_t* ids, std::size_t n, float* out) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  const std::vector<node_t> rs = labels_.rows_of(ids, n);
  for (std::size_t i = 0; i < n; ++i) embedding_row(rs[i], out + i * anchor_count_);
}

void CurIndex::side_vectors(const label_t* ids, std::size_t n, float* out) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  const std::vector<node_t> rs = labels_.rows_of(ids, n);
  for (std::size_t i = 0; i < n; ++i) {
    const float* src = side_.data() + std::size_t(rs[i]) * side_dim_;
    std::copy(src, src + side_dim_, out + i * side_dim_);
  }
}

float CurIndex::side_score(const float* side_query, node_t row) const {
  return kernels().dot(side_query, side_.data() + std::size_t(row) * side_dim_, side_dim_);
}

void CurIndex::check_side_query(const float* side_query) const {
  if (!side_dim_) throw InvalidArgument("this index keeps no dual-encoder vectors to blend with");
  for (std::size_t i = 0; i < side_dim_; ++i)
    if (!std::isfinite(side_query[i])) throw InvalidArgument("the dual-encoder query vector holds NaN or infinity");
}

void CurIndex::check_fit(const QueryFit& f, const float* side_query) const {
  if (f.coefficients.size() != anchor_count_) throw InvalidArgument("the fit does not belong to this index");
  if (!f.uses_side) return;
  if (!side_query) throw InvalidArgument("this fit blends the dual encoder: give the same query vector");
  check_side_query(side_query);
}

QueryFit CurIndex::fit(const label_t* scored, const float* scores, std::size_t m, const float* side_query,
                       const SolveOptions& options) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  QueryFit out;
  out.uses_side = side_query != nullptr;
  if (side_query) check_side_query(side_query);
  const std::vector<node_t> rs = labels_.distinct_rows_of(scored, m);
  const std::size_t k = anchor_count_, width = k + (out.uses_side ? 1 : 0);
  std::vector<float> a(m * width);
  double emb2 = 0, side2 = 0;
  for (std::size_t i = 0; i < m; ++i) {
    float* row = a.data() + i * width;
    embedding_row(rs[i], row);
    for (std::size_t c = 0; c < k; ++c) emb2 += double(row[c]) * row[c];
    if (out.uses_side) {
      row[k] = side_score(side_query, rs[i]);
      side2 += double(row[k]) * row[k];
    }
  }
  // The similarity feature is rescaled to the embeddings' magnitude, so the rcond cut-off and the
  // ridge penalty treat it like any other feature.
  double scale = 0;
  if (out.uses_side && side2 > 0) {
    scale = std::sqrt((emb2 / double(m * k)) / (side2 / double(m)));
    if (!std::isfinite(scale) || scale == 0) scale = 1;
    for (std::size_t i = 0; i < m; ++i) a[i * width + k] = float(a[i * width + k] * scale);
  }
  const std::vector<double> w = solve_least_squares(a.data(), m, width, scores, options);
  out.coefficients.assign(w.begin(), w.begin() + k);
  if (out.uses_side) out.side_weight = float(w[k] * scale);
  return out;
}

void CurIndex::score_rows(const QueryFit& f, const float* side_query, float* out, int num_threads) const {
  const std::size_t n = rows(), k = anchor_count_;
  const int threads = (n * (k + (f.uses_side ? side_dim_ : 0)) >= kParallelWork) ? resolve_num_threads(num_threads) : 1;
  const std::size_t chunk = 4096, chunks = (n + chunk - 1) / chunk;
  const float* w = f.coefficients.data();
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t begin = c * chunk, end = std::min(n, begin + chunk);
    if (storage_ == ScoreStorage::F32) {
      kernels().dot_block(w, scores_f32_.data() + begin * k, end - begin, k, out + begin);
    } else {
      const QuantKernels& qk = quant_kernels();
      for (std::size_t r = begin; r < end; ++r) out[r] = qk.dot_f16(w, scores_f16_.data() + r * k, k);
    }
    if (f.uses_side) {
      std::vector<float> sims(end - begin);
      kernels().dot_block(side_query, side_.data() + begin * side_dim_, end - begin, side_dim_, sims.data());
      for (std::size_t r = begin; r < end; ++r) out[r] += f.side_weight * sims[r - begin];
    }
  }
}

void CurIndex::approximate(const QueryFit& f, const float* side_query, const label_t* ids, std::size_t n,
                           float* out) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  check_fit(f, side_query);
  const std::vector<node_t> rs = labels_.rows_of(ids, n);
  std::vector<float> row(anchor_count_);
  for (std::size_t i = 0; i < n; ++i) {
    embedding_row(rs[i], row.data());
    out[i] = kernels().dot(f.coefficients.data(), row.data(), anchor_count_);
    if (f.uses_side) out[i] += f.side_weight * side_score(side_query, rs[i]);
  }
}

void CurIndex::best(const QueryFit& f, const float* side_query, const label_t* exclude, std::size_t n_exclude,
                    std::size_t count, std::vector<label_t>* ids, std::vector<float>* scores, int num_threads) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  check_fit(f, side_query);
  ids->clear();
  scores->clear();
  const std::size_t n = rows();
  if (count == 0 || n == 0) return;
  Bitset skip(n);
  if (deleted_count_) skip.or_with(deleted_);
  for (std::size_t i = 0; i < n_exclude; ++i) {
    node_t r;
    if (labels_.find(exclude[i], &r)) skip.set(r);
  }
  std::vector<float> approx(n);
  score_rows(f, side_query, approx.data(), num_threads);
  TopK top(count);
  for (std::size_t r = 0; r < n; ++r)
    if (!skip.test(r)) top.push(-approx[r], static_cast<node_t>(r));
  for (const Neighbor& nb : top.sorted()) {
    ids->push_back(labels_.label(nb.id));
    scores->push_back(-nb.distance);
  }
}

std::size_t CurIndex::memory_bytes() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  return scores_f32_.bytes() + scores_f16_.bytes() + side_.bytes() + labels_.memory_bytes() + deleted_.memory_bytes();
}

void CurIndex::save(const std::string& path) const {
  std::shared_lock<std::shared_mutex> g(rw_);
  FileInfo info;
  info.kind = IndexKind::Cur;
  info.metric = Metric::InnerProduct;
  info.dim = anchor_count_;
  info.count = rows();
  IndexFileWriter w(path, info);
  Params p;
  p.set("storage", std::uint64_t(storage_));
  p.set("side_dim", std::uint64_t(side_dim_));
  const std::string text = p.serialize();
  w.add_section(section::kParams, text.data(), text.size());
  w.add_array(section::kLabels, labels_.labels());
  if (storage_ == ScoreStorage::F32)
    w.add_array(kScoresF32, scores_f32_);
  else
    w.add_array(kScoresF16, scores_f16_);
  if (side_dim_) w.add_array(kSideVectors, side_);
  if (deleted_count_) w.add_section(section::kDeleted, deleted_.words(), deleted_.word_count() * sizeof(std::uint64_t));
  w.commit();
}

std::unique_ptr<CurIndex> CurIndex::load(const std::string& path) {
  IndexFileReader r(path);
  const FileInfo& info = r.info();
  if (info.kind != IndexKind::Cur)
    throw InvalidArgument("'" + path + "' holds a " + index_kind_name(info.kind) + " index, not a CUR index");
  const Params p = r.params();
  const std::uint64_t storage = p.get_u64("storage"), side_dim = p.get_u64("side_dim");
  if (storage > 1) throw FormatError("corrupt index file: unknown score storage");
  if (info.dim > (1u << 16) || side_dim > (1u << 16)) throw FormatError("corrupt index file: bad dimensions");
  auto index = std::make_unique<CurIndex>(static_cast<std::size_t>(info.dim), static_cast<ScoreStorage>(storage),
                                          static_cast<std::size_t>(side_dim));
  const std::size_t n = static_cast<std::size_t>(info.count), k = index->anchor_count_;
  if (index->storage_ == ScoreStorage::F32) {
    index->scores_f32_ = r.array<float>(kScoresF32, n * k, false);
    for (std::size_t i = 0; i < n * k; ++i)
      if (!std::isfinite(index->scores_f32_[i])) throw FormatError("corrupt index file: a stored score is not finite");
  } else {
    index->scores_f16_ = r.array<std::uint16_t>(kScoresF16, n * k, false);
    for (std::size_t i = 0; i < n * k; ++i)
      if (!f16_finite(index->scores_f16_[i])) throw FormatError("corrupt index file: a stored score is not finite");
  }
  if (side_dim) {
    index->side_ = r.array<float>(kSideVectors, n * side_dim, false);
    for (std::size_t i = 0; i < n * side_dim; ++i)
      if (!std::isfinite(index->side_[i])) throw FormatError("corrupt index file: a stored vector is not finite");
  }
  Bitset deleted = read_deleted_rows(r, n);
  index->deleted_count_ = deleted.count();
  if (index->deleted_count_) index->deleted_ = std::move(deleted);
  index->labels_ = LabelMap(r.array<label_t>(section::kLabels, n, false),
                            index->deleted_count_ ? &index->deleted_ : nullptr);
  return index;
}

}  // namespace cur
}  // namespace vecdex
