#include "vecdex/range/range_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <queue>
#include <random>

#include "vecdex/hnsw/neighbor_selection.h"
#include "vecdex/simd/prefetch.h"
#include "vecdex/threading.h"

namespace vecdex {
namespace {

constexpr std::uint64_t kRangeFormatVersion = 1;
constexpr std::uint64_t kRangeSeed = 0x52616e6765496478ull;  // "RangeIdx"

// Spans under this many leaf segments have their ragged ends (pieces smaller than a leaf) scored
// row by row: there those rows are a good share of the range.
constexpr std::size_t kSmallSpanLeaves = 4;

using MinHeap = std::priority_queue<Neighbor, std::vector<Neighbor>, std::greater<Neighbor>>;

std::uint32_t section_id(char kind, std::size_t i) { return fourcc('R', 'N', kind, char('0' + i)); }

// Marks over one segment's positions, reset in O(1) per use.
class SegmentMarks {
 public:
  void prepare(std::size_t n) {
    if (marks_.size() < n) marks_.assign(n, 0);
    if (++epoch_ == 0) {
      std::fill(marks_.begin(), marks_.end(), 0);
      epoch_ = 1;
    }
  }
  bool first_visit(std::size_t i) {
    if (marks_[i] == epoch_) return false;
    marks_[i] = epoch_;
    return true;
  }

 private:
  std::vector<std::uint32_t> marks_;
  std::uint32_t epoch_ = 0;
};

}  // namespace

std::size_t RangeIndex::memory_bytes() const {
  return order_.bytes() + keys_.bytes() + narrow_links_.bytes() + wide_links_.bytes() + position_.bytes() +
         stale_.word_count() * 8 +
         field_.size();
}

std::size_t RangeIndex::read_links(int level, std::uint32_t p, std::uint32_t* out) const {
  const std::size_t n = order_.size();
  if (level < kRangeNarrowLevelEnd) {
    const std::uint16_t* l = narrow_links_.data() + (std::size_t(level - kRangeLeafLog2) * n + p) * (M_ + 1);
    const std::uint32_t base = (p >> level) << level;
    for (std::uint16_t i = 0; i < l[0]; ++i) out[i] = base + l[1 + i];
    return l[0];
  }
  const std::uint32_t* l = wide_links_.data() + (std::size_t(level - kRangeNarrowLevelEnd) * n + p) * (M_ + 1);
  std::copy(l + 1, l + 1 + l[0], out);
  return l[0];
}

void RangeIndex::write_links(int level, std::uint32_t p, const std::uint32_t* positions, std::size_t count) {
  const std::size_t n = order_.size();
  if (level < kRangeNarrowLevelEnd) {
    std::uint16_t* l = narrow_links_.mutable_data() + (std::size_t(level - kRangeLeafLog2) * n + p) * (M_ + 1);
    const std::uint32_t base = (p >> level) << level;
    l[0] = static_cast<std::uint16_t>(count);
    for (std::size_t i = 0; i < count; ++i) l[1 + i] = static_cast<std::uint16_t>(positions[i] - base);
    return;
  }
  std::uint32_t* l = wide_links_.mutable_data() + (std::size_t(level - kRangeNarrowLevelEnd) * n + p) * (M_ + 1);
  l[0] = static_cast<std::uint32_t>(count);
  std::copy(positions, positions + count, l + 1);
}

int RangeIndex::compare_key(std::uint32_t p, const AttributeValue& v) const {
  const std::uint64_t bits = keys_[p];
  if (is_int_) return compare_attribute(static_cast<std::int64_t>(bits), v);
  double d;
  std::memcpy(&d, &bits, 8);
  return compare_attribute(d, v);
}

RangeSpan RangeIndex::span_of(const FilterNode& range) const {
  const std::uint32_t n = static_cast<std::uint32_t>(order_.size());
  std::uint32_t lo = 0, hi = n;
  // partition_point over positions: keys are sorted, so each predicate is true on a prefix.
  auto first_false = [&](auto pred) {
    std::uint32_t a = 0, b = n;
    while (a < b) {
      const std::uint32_t m = a + (b - a) / 2;
      if (pred(m)) a = m + 1;
      else b = m;
    }
    return a;
  };
  if (range.has_lo)
    lo = first_false([&](std::uint32_t p) {
      const int c = compare_key(p, range.lo);
      return range.lo_inclusive ? c < 0 : c <= 0;
    });
  if (range.has_hi)
    hi = first_false([&](std::uint32_t p) {
      const int c = compare_key(p, range.hi);
      return range.hi_inclusive ? c <= 0 : c < 0;
    });
  if (hi < lo) hi = lo;
  return {lo, hi};
}

void RangeIndex::mark_stale(const node_t* rows, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (rows[i] < built_rows_ && !stale_.test(rows[i])) {
      stale_.set(rows[i]);
      ++stale_count_;
    }
}

int RangeIndex::covering_level(std::uint32_t p, RangeSpan s) const {
  const std::size_t n = order_.size();
  if (s.lo == 0 && s.hi >= n) return top_log2_;
  for (int j = top_log2_ - 1; j > kRangeLeafLog2; --j) {
    const std::size_t a = (std::size_t(p) >> j) << j;
    const std::size_t b = std::min(n, a + (std::size_t(1) << j));
    if (a >= s.lo && b <= s.hi) return j;
  }
  return kRangeLeafLog2;
}

void RangeIndex::derive_positions(std::size_t rows) {
  position_.resize(rows);
  std::fill(position_.mutable_data(), position_.mutable_data() + rows, kNoNode);
  for (std::size_t p = 0; p < order_.size(); ++p) position_[order_[p]] = static_cast<std::uint32_t>(p);
}

RangeIndex RangeIndex::build(const Source& src) {
  RangeIndex ri;
  ri.field_ = src.field;
  ri.built_rows_ = src.rows;
  ri.M_ = src.M;
  ri.ef_construction_ = src.ef_construction;
  ri.is_int_ = src.column->type() == FieldType::Int;
  std::vector<node_t> rows;
  std::vector<std::int64_t> ints;
  std::vector<double> floats;
  src.column->sorted_values(rows, ints, floats);
  const std::size_t n = rows.size();
  ri.order_.resize(n);
  ri.keys_.resize(n);
  for (std::size_t p = 0; p < n; ++p) {
    ri.order_[p] = rows[p];
    std::uint64_t bits;
    if (ri.is_int_) bits = static_cast<std::uint64_t>(ints[p]);
    else std::memcpy(&bits, &floats[p], 8);
    ri.keys_[p] = bits;
  }
  while ((std::size_t(1) << ri.top_log2_) < n) ++ri.top_log2_;
  ri.narrow_links_.resize(std::size_t(ri.narrow_end() - kRangeLeafLog2) * n * (ri.M_ + 1), 0);
  ri.wide_links_.resize(std::size_t(ri.top_log2_ - ri.narrow_end()) * n * (ri.M_ + 1), 0);
  ri.derive_positions(src.rows);
  ri.stale_ = Bitset(src.rows);
  // Top-down, so each insertion can start from its links one level up, which are close.
  for (int level = ri.top_log2_ - 1; level >= kRangeLeafLog2; --level) ri.build_level(level, src);
  return ri;
}

// Builds the graph of every segment at `level` (segments in parallel, each by one thread, so no
// locks): rows inserted in a shuffled order, each linked to the best of a beam search over the
// rows already in, chosen by HNSW's diversity heuristic, and linked back (re-pruned when full).
void RangeIndex::build_level(int level, const Source& src) {
  const std::size_t n = order_.size();
  const std::size_t seg = std::size_t(1) << level;
  const std::size_t segments = (n + seg - 1) / seg;
  const std::size_t M = M_;
  const std::size_t ef = std::max(src.ef_construction, M);
  const VectorStore& store = *src.store;
  const int threads = static_cast<int>(std::min<std::size_t>(resolve_num_threads(src.threads), segments));
  FirstError err;
#pragma omp parallel num_threads(threads)
  {
    err.run([&] {
      std::vector<float> scratch(store.dim());
      std::vector<std::uint8_t> inserted;
      std::vector<std::uint32_t> perm, fresh, buf(M + 1);
      std::vector<node_t> fresh_rows;
      std::vector<float> d;
      std::vector<Neighbor> found, pool;
      SegmentMarks marks;
      // HNSW's heuristic on positions (candidates' ids here are positions, not rows).
      auto select = [&](std::vector<Neighbor>& cand) {
        select_diverse(cand, M, [&](const Neighbor& c, const std::vector<Neighbor>& kept) {
          for (const Neighbor& k : kept)
            if (store.pair_distance(order_[c.id], order_[k.id]) < c.distance) return false;
          return true;
        });
      };
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t s = 0; s < static_cast<std::int64_t>(segments); ++s) {
        const std::size_t a = std::size_t(s) * seg, b = std::min(n, a + seg), len = b - a;
        inserted.assign(len, 0);
        perm.resize(len);
        for (std::size_t i = 0; i < len; ++i) perm[i] = static_cast<std::uint32_t>(a + i);
        std::mt19937_64 gen(kRangeSeed ^ (std::uint64_t(level) << 48) ^ std::uint64_t(s));
        std::shuffle(perm.begin(), perm.end(), gen);
        const std::uint32_t first = perm[0];
        inserted[first - a] = 1;
        for (std::size_t t = 1; t < len; ++t) {
          const std::uint32_t p = perm[t];
          const node_t row = order_[p];
          auto qd = store.query_distance(src.row_vector(row, scratch.data()));
          marks.prepare(len);
          // Seeds: the row's links one level up that lie in this segment and are in already.
          fresh.clear();
          if (level + 1 < top_log2_) {
            const std::size_t nu = read_links(level + 1, p, buf.data());
            for (std::size_t i = 0; i < nu; ++i)
              if (buf[i] >= a && buf[i] < b && inserted[buf[i] - a]) fresh.push_back(buf[i]);
          }
          fresh.push_back(first);
          MinHeap cand;
          TopK best(ef);
          fresh_rows.resize(fresh.size());
          d.resize(std::max(d.size(), std::max<std::size_t>(fresh.size(), M)));
          std::size_t m = 0;
          for (std::uint32_t q : fresh)
            if (marks.first_visit(q - a)) fresh_rows[m++] = order_[q], fresh[m - 1] = q;
          qd->distances(fresh_rows.data(), m, d.data());
          for (std::size_t i = 0; i < m; ++i) {
            cand.push({d[i], fresh[i]});
            best.push(d[i], fresh[i]);
          }
          while (!cand.empty()) {
            const Neighbor c = cand.top();
            if (c.distance > best.worst()) break;
            cand.pop();
            const std::size_t nl = read_links(level, c.id, buf.data());
            m = 0;
            fresh.resize(M);
            fresh_rows.resize(M);
            for (std::size_t i = 0; i < nl; ++i)
              if (marks.first_visit(buf[i] - a)) {
                fresh[m] = buf[i];
                fresh_rows[m++] = order_[buf[i]];
              }
            if (!m) continue;
            qd->distances(fresh_rows.data(), m, d.data());
            for (std::size_t i = 0; i < m; ++i)
              if (d[i] < best.worst()) {
                cand.push({d[i], fresh[i]});
                best.push(d[i], fresh[i]);
              }
          }
          found = best.sorted();
          select(found);
          for (std::size_t i = 0; i < found.size(); ++i) buf[i] = found[i].id;
          write_links(level, p, buf.data(), found.size());
          for (const Neighbor& nb : found) {
            std::size_t nl = read_links(level, nb.id, buf.data());
            if (nl < M) {
              buf[nl++] = p;
              write_links(level, nb.id, buf.data(), nl);
              continue;
            }
            const node_t nb_row = order_[nb.id];
            pool.clear();
            pool.push_back({nb.distance, p});
            for (std::size_t i = 0; i < nl; ++i) pool.push_back({store.pair_distance(nb_row, order_[buf[i]]), buf[i]});
            select(pool);
            for (std::size_t i = 0; i < pool.size(); ++i) buf[i] = pool[i].id;
            write_links(level, nb.id, buf.data(), pool.size());
          }
          inserted[p - a] = 1;
        }
      }
    });
  }
  err.rethrow();
}

std::vector<Neighbor> RangeIndex::search(QueryDistance& qd, VisitedSet& visited, const HnswGraph& top, node_t entry,
                                         RangeSpan span, const Bitset& accept, std::size_t ef,
                                         QueryPlan& plan) const {
  TopK best(ef);
  if (span.size() == 0) return {};
  const auto take = [&](node_t row) { return accept.accepts(row) && !in_delta(row); };
  const auto in_span = [&](std::uint32_t p) { return p >= span.lo && p < span.hi; };
  std::vector<node_t> fresh;
  std::vector<float> d;
  std::uint32_t buf[256];  // M <= 256
  fresh.reserve(2 * std::max(M_, top.max_links(0)));
  // Seeds: the middle of every piece of the span's decomposition into aligned segments (a piece
  // with a graph is navigable from anywhere in it; the pieces too small for one, under
  // 2^kRangeLeafLog2 rows at each end of the span, are reached through the larger segments'
  // links, or in a span of a few leaves scored whole), and the HNSW entry when it is in range.
  const bool small_span = span.size() < kSmallSpanLeaves << kRangeLeafLog2;
  for (std::size_t p = span.lo; p < span.hi;) {
    int j = top_log2_;
    while (j > 0 && ((p & ((std::size_t(1) << j) - 1)) != 0 || p + (std::size_t(1) << j) > span.hi)) --j;
    const std::size_t len = std::size_t(1) << j;
    const bool every_row = j < kRangeLeafLog2 && small_span;
    for (std::size_t q = every_row ? p : p + len / 2; q < (every_row ? p + len : p + len / 2 + 1); ++q) {
      const node_t row = order_[q];
      if (!visited.visited(row)) {
        visited.mark(row);
        fresh.push_back(row);
      }
    }
    p += len;
  }
  if (entry < built_rows_ && position_[entry] != kNoNode && in_span(position_[entry]) && !visited.visited(entry)) {
    visited.mark(entry);
    fresh.push_back(entry);
  }
  MinHeap cand;
  d.resize(fresh.size());
  qd.distances(fresh.data(), fresh.size(), d.data());
  plan.distances += fresh.size();
  for (std::size_t i = 0; i < fresh.size(); ++i) {
    cand.push({d[i], fresh[i]});
    if (take(fresh[i])) best.push(d[i], fresh[i]);
  }
  while (!cand.empty()) {
    const Neighbor c = cand.top();
    if (c.distance > best.worst()) break;
    cand.pop();
    const std::uint32_t p = position_[c.id];
    const int j = covering_level(p, span);
    fresh.clear();
    ++plan.expansions;
    // Top-down, as iRangeGraph does: the larger segments' links reach across the range (kept when
    // inside it), the covering segment's links are all inside; at most 2M rows per expansion (more
    // changed neither recall nor work at ef 64-1024 on 8,000 clustered rows with spans of 10-50%).
    const std::size_t cap = 2 * M_;
    for (int level = top_log2_; level >= j && fresh.size() < cap; --level) {
      if (level == top_log2_) {  // the root: the HNSW graph's level 0, links by row
        const node_t* l = top.links(c.id, 0);
        plan.filter_checks += l[0];
        for (node_t i = 1; i <= l[0] && fresh.size() < cap; ++i) {
          const node_t r = l[i];
          if (r < built_rows_ && position_[r] != kNoNode && in_span(position_[r]) && !visited.visited(r)) {
            visited.mark(r);
            fresh.push_back(r);
          }
        }
      } else {
        const std::size_t nl = read_links(level, p, buf);
        plan.filter_checks += nl;
        for (std::size_t i = 0; i < nl && fresh.size() < cap; ++i) {
          if (!in_span(buf[i])) continue;
          const node_t r = order_[buf[i]];
          if (!visited.visited(r)) {
            visited.mark(r);
            fresh.push_back(r);
          }
        }
      }
    }
    if (fresh.empty()) continue;
    d.resize(std::max(d.size(), fresh.size()));
    qd.distances(fresh.data(), fresh.size(), d.data());
    plan.distances += fresh.size();
    for (std::size_t i = 0; i < fresh.size(); ++i)
      if (d[i] < best.worst()) {
        cand.push({d[i], fresh[i]});
        if (take(fresh[i])) best.push(d[i], fresh[i]);
      }
  }
  return best.sorted();
}

std::size_t RangeIndex::scan_delta(QueryDistance& qd, const Bitset& accept, TopK& top) const {
  std::vector<node_t> rows;
  const std::size_t words = accept.word_count();
  const std::uint64_t* w = accept.words();
  for (std::size_t i = built_rows_ / 64; i < words; ++i) {
    std::uint64_t bits = w[i];
    if (i == built_rows_ / 64 && built_rows_ % 64) bits &= ~0ull << (built_rows_ % 64);
    for (; bits; bits &= bits - 1) rows.push_back(static_cast<node_t>(i * 64 + std::size_t(__builtin_ctzll(bits))));
  }
  if (stale_count_)
    stale_.for_each_set([&](node_t r) {
      if (accept.accepts(r)) rows.push_back(r);
    });
  std::vector<float> d(rows.size());
  constexpr std::size_t kBlock = 256;
  for (std::size_t i = 0; i < rows.size(); i += kBlock) {
    const std::size_t m = std::min(kBlock, rows.size() - i);
    qd.distances(rows.data() + i, m, d.data() + i);
  }
  for (std::size_t i = 0; i < rows.size(); ++i) top.push(d[i], rows[i]);
  return rows.size();
}

// ---- file sections --------------------------------------------------------------------------

void RangeIndex::write(IndexFileWriter& w, std::size_t i) const {
  Params p;
  p.set("version", kRangeFormatVersion);
  p.set("built_rows", std::uint64_t(built_rows_));
  p.set("positions", std::uint64_t(order_.size()));
  p.set("is_int", std::uint64_t(is_int_));
  p.set("M", std::uint64_t(M_));
  p.set("ef_construction", std::uint64_t(ef_construction_));
  p.set("top_log2", std::uint64_t(top_log2_));
  const std::string text = p.serialize();
  w.add_section(section_id('P', i), text.data(), text.size());
  w.add_section(section_id('F', i), field_.data(), field_.size());
  w.add_array(section_id('O', i), order_);
  w.add_array(section_id('K', i), keys_);
  w.add_array(section_id('L', i), narrow_links_);
  w.add_array(section_id('W', i), wide_links_);
  w.add_section(section_id('S', i), stale_.words(), stale_.word_count() * 8);
}

bool RangeIndex::present(const IndexFileReader& r, std::size_t i) { return r.has(section_id('P', i)); }

RangeIndex RangeIndex::read(const IndexFileReader& r, std::size_t i, std::size_t rows, bool view) {
  const auto fail = [](const std::string& what) -> FormatError {
    return FormatError("corrupt index file: range index " + what);
  };
  const auto pb = r.bytes(section_id('P', i));
  const Params p = Params::parse(pb.first, pb.second);
  RangeIndex ri;
  if (p.get_u64("version") != kRangeFormatVersion) throw fail("version");
  ri.built_rows_ = p.get_u64("built_rows");
  const std::size_t n = p.get_u64("positions");
  ri.is_int_ = p.get_u64("is_int") != 0;
  ri.M_ = p.get_u64("M");
  ri.ef_construction_ = p.get_u64("ef_construction");
  const std::uint64_t top = p.get_u64("top_log2");
  if (ri.built_rows_ > rows || n > ri.built_rows_ || ri.M_ < 2 || ri.M_ > 256 || ri.ef_construction_ == 0 || top > 40 ||
      top < std::uint64_t(kRangeLeafLog2) || (n > 0 && (std::size_t(1) << top) < n) ||
      (top > std::uint64_t(kRangeLeafLog2) && (std::size_t(1) << (top - 1)) >= n))
    throw fail("parameters");
  ri.top_log2_ = static_cast<int>(top);
  const auto fb = r.bytes(section_id('F', i));
  ri.field_.assign(reinterpret_cast<const char*>(fb.first), fb.second);
  ri.order_ = r.array<node_t>(section_id('O', i), n, view);
  ri.keys_ = r.array<std::uint64_t>(section_id('K', i), n, view);
  ri.narrow_links_ =
      r.array<std::uint16_t>(section_id('L', i), std::size_t(ri.narrow_end() - kRangeLeafLog2) * n * (ri.M_ + 1), view);
  ri.wide_links_ =
      r.array<std::uint32_t>(section_id('W', i), std::size_t(ri.top_log2_ - ri.narrow_end()) * n * (ri.M_ + 1), view);
  AlignedArray<std::uint64_t> stale = r.array<std::uint64_t>(section_id('S', i), (ri.built_rows_ + 63) / 64, false);
  // Every row once and below built_rows; (key, row) strictly increasing.
  std::vector<std::uint8_t> seen(ri.built_rows_, 0);
  for (std::size_t q = 0; q < n; ++q) {
    const node_t row = ri.order_[q];
    if (row >= ri.built_rows_ || seen[row]) throw fail("order");
    seen[row] = 1;
    if (q > 0) {
      const std::uint64_t a = ri.keys_[q - 1], b = ri.keys_[q];
      bool less_key, equal_key;
      if (ri.is_int_) {
        less_key = std::int64_t(a) < std::int64_t(b);
        equal_key = a == b;
      } else {
        double x, y;
        std::memcpy(&x, &a, 8);
        std::memcpy(&y, &b, 8);
        if (std::isnan(x) || std::isnan(y)) throw fail("keys");
        less_key = x < y;
        equal_key = x == y;
      }
      if (!(less_key || (equal_key && ri.order_[q - 1] < row))) throw fail("keys");
    }
  }
  // Links: counts within M, targets in the same segment, never the row itself.
  for (int level = kRangeLeafLog2; level < ri.top_log2_; ++level)
    for (std::size_t q = 0; q < n; ++q) {
      const std::size_t count = level < kRangeNarrowLevelEnd
                                    ? ri.narrow_links_[(std::size_t(level - kRangeLeafLog2) * n + q) * (ri.M_ + 1)]
                                    : ri.wide_links_[(std::size_t(level - kRangeNarrowLevelEnd) * n + q) * (ri.M_ + 1)];
      if (count > ri.M_) throw fail("links");
      std::uint32_t buf[256];
      ri.read_links(level, static_cast<std::uint32_t>(q), buf);
      for (std::size_t t = 0; t < count; ++t)
        if (buf[t] >= n || (buf[t] >> level) != (q >> level) || buf[t] == q) throw fail("links");
    }
  ri.stale_ = Bitset(ri.built_rows_);
  std::copy(stale.data(), stale.data() + stale.size(), ri.stale_.mutable_words());
  if (ri.built_rows_ % 64 && !stale.empty() && (stale[stale.size() - 1] >> (ri.built_rows_ % 64)) != 0)
    throw fail("stale rows");
  ri.stale_count_ = ri.stale_.count();
  ri.derive_positions(ri.built_rows_);
  return ri;
}

}  // namespace vecdex
