#include "vecdex/hnsw/hnsw_index.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <queue>

#include "vecdex/hnsw/neighbor_selection.h"
#include "vecdex/search/planner.h"
#include "vecdex/simd/prefetch.h"
#include "vecdex/threading.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define VECDEX_PAUSE() _mm_pause()
#else
#define VECDEX_PAUSE() ((void)0)
#endif

namespace vecdex {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

using MinHeap = std::priority_queue<Neighbor, std::vector<Neighbor>, std::greater<Neighbor>>;
constexpr int kMaxLevel = 32;
constexpr std::size_t kMaxFilterSeeds = 32;  // matching entry points added when the entry does not match

}  // namespace

HnswIndex::HnswIndex(std::size_t dim, Metric metric, const HnswParams& params, Quantization quantization,
                     bool keep_full_vectors, const QuantizerParams& quantizer)
    : IndexBase(dim, metric, quantization, keep_full_vectors, quantizer), params_(params), graph_(params.M) {
  if (params.M < 2 || params.M > 512) throw InvalidArgument("M must be between 2 and 512, got " + std::to_string(params.M));
  if (params.ef_construction < 1)
    throw InvalidArgument("ef_construction must be positive, got " + std::to_string(params.ef_construction));
  level_scale_ = 1.0 / std::log(double(params.M));
}

int HnswIndex::draw_level(node_t i) const {
  const std::uint64_t h = splitmix64(params_.seed * 0x2545F4914F6CDD1Dull ^ splitmix64(i));
  const double u = (double((h >> 11) + 1)) * (1.0 / 9007199254740992.0);  // (0, 1]
  const int level = static_cast<int>(-std::log(u) * level_scale_);
  return std::min(level, kMaxLevel);
}

void HnswIndex::lock(node_t i) const {
  std::atomic<std::uint8_t>& l = node_locks_[i];
  while (l.exchange(1, std::memory_order_acquire)) {
    while (l.load(std::memory_order_relaxed)) VECDEX_PAUSE();
  }
}
void HnswIndex::unlock(node_t i) const { node_locks_[i].store(0, std::memory_order_release); }

std::size_t HnswIndex::copy_links(node_t i, int level, node_t* out, bool locked) const {
  if (locked) lock(i);
  const node_t* l = graph_.links(i, level);
  const std::size_t n = l[0];
  std::copy(l + 1, l + 1 + n, out);
  if (locked) unlock(i);
  return n;
}

template <bool kBuilding>
Neighbor HnswIndex::descend(QueryDistance& qd, Neighbor cur, int top_level, int stop_level,
                            SearchStats* stats) const {
  std::vector<node_t> links(graph_.M() + 1);
  std::vector<float> d(graph_.M() + 1);
  for (int level = top_level; level > stop_level; --level) {
    bool moved = true;
    while (moved) {
      moved = false;
      const std::size_t n = copy_links(cur.id, level, links.data(), kBuilding);
      qd.distances(links.data(), n, d.data());
      if (stats) {
        stats->distances += n;
        ++stats->expansions;
      }
      for (std::size_t j = 0; j < n; ++j) {
        if (d[j] < cur.distance) {
          cur = {d[j], links[j]};
          moved = true;
        }
      }
    }
  }
  return cur;
}

template <bool kBuilding>
std::vector<Neighbor> HnswIndex::search_level(QueryDistance& qd, VisitedSet& visited, Neighbor entry, int level,
                                              std::size_t ef, SearchStats* stats) const {
  const std::size_t max_links = graph_.max_links(level);
  std::vector<node_t> links(max_links), fresh(max_links);
  std::vector<float> d(max_links);
  std::vector<Neighbor> cand_storage;
  cand_storage.reserve(ef * 4);
  MinHeap candidates(std::greater<Neighbor>(), std::move(cand_storage));
  TopK top(ef);

  visited.mark(entry.id);
  candidates.push(entry);
  top.push(entry.distance, entry.id);

  while (!candidates.empty()) {
    const Neighbor c = candidates.top();
    if (c.distance > top.worst()) break;  // worst() is +inf until ef results are held
    candidates.pop();
    if (!kBuilding && !candidates.empty()) prefetch_l1(graph_.links(candidates.top().id, level));

    const std::size_t n = copy_links(c.id, level, links.data(), kBuilding);
    std::size_t m = 0;
    for (std::size_t j = 0; j < n; ++j) {
      if (visited.first_visit(links[j])) fresh[m++] = links[j];
    }
    if (stats) {
      stats->distances += m;
      ++stats->expansions;
    }
    if (m == 0) continue;
    qd.distances(fresh.data(), m, d.data());
    for (std::size_t j = 0; j < m; ++j) {
      if (d[j] < top.worst()) {
        candidates.push({d[j], fresh[j]});
        top.push(d[j], fresh[j]);
      }
    }
  }
  return top.sorted();
}

void HnswIndex::select_neighbors(std::vector<Neighbor>& candidates, std::size_t max_count) const {
  // Quantised stores decode a row before measuring from it, so they score a candidate against
  // all kept rows at once; float rows are cheap per pair and stop at the first closer one.
  const bool batch = codes_->quantization() != Quantization::None;
  std::vector<node_t> kept_ids;
  std::vector<float> d;
  select_diverse(candidates, max_count, [&](const Neighbor& c, const std::vector<Neighbor>& kept) {
    if (!batch) {
      for (const Neighbor& k : kept)
        if (codes_->pair_distance(c.id, k.id) < c.distance) return false;
      return true;
    }
    kept_ids.resize(kept.size());
    d.resize(kept.size());
    for (std::size_t i = 0; i < kept.size(); ++i) kept_ids[i] = kept[i].id;
    codes_->pair_distances(c.id, kept_ids.data(), kept_ids.size(), d.data());
    bool diverse = true;
    for (float x : d) diverse &= !(x < c.distance);
    return diverse;
  });
}

void HnswIndex::link_back(node_t q, const std::vector<Neighbor>& neighbors, int level) {
  const std::size_t max_links = graph_.max_links(level);
  std::vector<Neighbor> pool;
  std::vector<float> d;
  for (const Neighbor& nb : neighbors) {
    lock(nb.id);
    node_t* l = graph_.links(nb.id, level);
    bool present = false;
    for (node_t j = 1; j <= l[0]; ++j) present |= (l[j] == q);
    if (!present) {
      if (l[0] < max_links) {
        l[1 + l[0]] = q;
        ++l[0];
      } else {
        pool.clear();
        pool.push_back({nb.distance, q});
        d.resize(l[0]);
        codes_->pair_distances(nb.id, l + 1, l[0], d.data());
        for (node_t j = 1; j <= l[0]; ++j) pool.push_back({d[j - 1], l[j]});
        select_neighbors(pool, max_links);
        l[0] = static_cast<node_t>(pool.size());
        for (std::size_t j = 0; j < pool.size(); ++j) l[1 + j] = pool[j].id;
      }
    }
    unlock(nb.id);
  }
}

void HnswIndex::insert(node_t q, const float* row) {
  const int level = graph_.level(q);
  std::unique_lock<std::mutex> entry_lock(entry_mu_);
  const node_t entry = graph_.entry();
  const int top = graph_.max_level();
  if (entry == kNoNode) {
    graph_.set_entry(q, level);
    return;
  }
  // A row that becomes the new top keeps the entry lock until it is linked, so no other insert
  // starts from a half-built entry point; that happens for about one row in M.
  if (level <= top) entry_lock.unlock();

  auto qd = codes_->query_distance(row);
  Neighbor cur{qd->distance(entry), entry};
  cur = descend<true>(*qd, cur, top, level, nullptr);
  // Search every level first and link back only once q's own lists are complete at all levels:
  // a concurrent insert that reaches q must find links to follow, or it would settle on q
  // alone and hang its only link on a list that q is about to write.
  const int link_top = std::min(level, top);
  std::vector<std::vector<Neighbor>> chosen(link_top + 1);
  auto visited = visited_.acquire(graph_.size());
  for (int l = link_top; l >= 0; --l) {
    if (l != link_top) visited->prepare(graph_.size());
    std::vector<Neighbor> found = search_level<true>(*qd, *visited, cur, l, params_.ef_construction, nullptr);
    found.erase(std::remove_if(found.begin(), found.end(), [q](const Neighbor& nb) { return nb.id == q; }),
                found.end());
    if (found.empty()) continue;
    cur = found.front();
    select_neighbors(found, params_.M);
    chosen[l] = std::move(found);
  }
  lock(q);
  for (int l = link_top; l >= 0; --l) {
    node_t* own = graph_.links(q, l);
    own[0] = static_cast<node_t>(chosen[l].size());
    for (std::size_t j = 0; j < chosen[l].size(); ++j) own[1 + j] = chosen[l][j].id;
  }
  unlock(q);
  for (int l = link_top; l >= 0; --l) link_back(q, chosen[l], l);
  if (level > top) graph_.set_entry(q, level);
}

void HnswIndex::index_new_rows(node_t first, std::size_t n, const float* rows, int num_threads) {
  std::vector<std::uint8_t> levels(n);
  for (std::size_t i = 0; i < n; ++i) levels[i] = static_cast<std::uint8_t>(draw_level(static_cast<node_t>(first + i)));
  graph_.grow(levels.data(), n);
  const std::size_t total = graph_.size();
  node_locks_.reset(new std::atomic<std::uint8_t>[total]);
  for (std::size_t i = 0; i < total; ++i) node_locks_[i].store(0, std::memory_order_relaxed);

  std::size_t start = 0;
  if (graph_.entry() == kNoNode) {
    insert(first, rows);
    start = 1;
  }
  const int threads = resolve_num_threads(num_threads);
  FirstError err;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 64)
  for (std::int64_t i = static_cast<std::int64_t>(start); i < static_cast<std::int64_t>(n); ++i) {
    err.run([&] { insert(static_cast<node_t>(first + i), rows + std::size_t(i) * dim_); });
  }
  err.rethrow();
  // The walk costs O(rows * M); running it once the batches since the last one add up to 1/16
  // of the index keeps it a small share of insertion even when rows arrive one at a time.
  rows_since_repair_ += n;
  if (rows_since_repair_ * 16 >= total) {
    repair_reachability();
    rows_since_repair_ = 0;
  }
}

void HnswIndex::repair_reachability() {
  const std::size_t n = graph_.size();
  if (n < 2) return;
  std::vector<std::uint8_t> reached(n, 0);
  std::vector<node_t> stack;
  auto walk_from = [&](node_t start) {
    if (reached[start]) return;
    reached[start] = 1;
    stack.push_back(start);
    while (!stack.empty()) {
      const node_t* l = graph_.links(stack.back(), 0);
      stack.pop_back();
      for (node_t j = 1; j <= l[0]; ++j) {
        if (!reached[l[j]]) {
          reached[l[j]] = 1;
          stack.push_back(l[j]);
        }
      }
    }
  };
  const std::size_t max_links = graph_.max_links(0);
  // Incoming links per row: a full host list may give up a link only to a row that keeps another,
  // so attaching one orphan never detaches the next.
  std::vector<std::uint32_t> in_degree(n, 0);
  for (node_t v = 0; v < n; ++v) {
    const node_t* l = graph_.links(v, 0);
    for (node_t j = 1; j <= l[0]; ++j) ++in_degree[l[j]];
  }
  auto attach = [&](node_t u, const std::vector<Neighbor>& hosts) {
    for (const Neighbor& h : hosts) {
      node_t* l = graph_.links(h.id, 0);
      if (l[0] < max_links) {
        l[1 + l[0]] = u;
        ++l[0];
        ++in_degree[u];
        return true;
      }
    }
    for (const Neighbor& h : hosts) {
      node_t* l = graph_.links(h.id, 0);
      node_t slot = 0;
      float worst = -std::numeric_limits<float>::infinity();
      for (node_t j = 1; j <= l[0]; ++j) {
        if (in_degree[l[j]] < 2) continue;
        const float d = codes_->pair_distance(h.id, l[j]);
        if (d > worst) {
          worst = d;
          slot = j;
        }
      }
      if (slot) {
        --in_degree[l[slot]];
        l[slot] = u;
        ++in_degree[u];
        return true;
      }
    }
    return false;
  };
  // A row left behind by one pass may be attachable once others are linked, hence the rounds.
  for (int round = 0; round < 4; ++round) {
    std::fill(reached.begin(), reached.end(), 0);
    walk_from(graph_.entry());
    bool changed = false;
    for (node_t u = 0; u < n; ++u) {
      if (reached[u]) continue;
      std::vector<float> scratch(dim_);
      auto qd = codes_->query_distance(codes_->row_as_float(u, scratch.data()));
      Neighbor cur{qd->distance(graph_.entry()), graph_.entry()};
      cur = descend<false>(*qd, cur, graph_.max_level(), 0, nullptr);
      auto visited = visited_.acquire(n);
      std::vector<Neighbor> hosts =
          search_level<false>(*qd, *visited, cur, 0, params_.ef_construction, nullptr);
      hosts.erase(std::remove_if(hosts.begin(), hosts.end(),
                                 [&](const Neighbor& nb) { return nb.id == u || !reached[nb.id]; }),
                  hosts.end());
      if (attach(u, hosts)) {
        changed = true;
        walk_from(u);
      }
    }
    if (!changed) break;
  }
}

std::vector<Neighbor> HnswIndex::search_level0_filtered(QueryDistance& qd, VisitedSet& visited, Neighbor entry,
                                                        std::size_t ef, const Bitset& allowed, bool score_all,
                                                        QueryPlan& plan) const {
  const std::size_t max_links = graph_.max_links(0);
  // Per expansion at most max_links rows are scored: the direct neighbours that match, then
  // matching neighbours of those that do not (two hops), as ACORN does on its denser graph.
  std::vector<node_t> links(max_links), fresh(max_links), bridges(max_links), second(max_links);
  std::vector<float> d(max_links);
  std::vector<Neighbor> cand_storage;
  cand_storage.reserve(ef * 4);
  MinHeap candidates(std::greater<Neighbor>(), std::move(cand_storage));
  TopK top(ef);

  visited.mark(entry.id);
  candidates.push(entry);  // a non-matching entry still leads the walk
  if (allowed.accepts(entry.id)) {
    top.push(entry.distance, entry.id);
  } else if (!score_all) {
    // The upper levels led to a row the filter rejects: add entry points from the matching set,
    // the first match at or after evenly spaced rows (offset per query), so that a walk whose
    // neighbourhood holds no match (filters anti-correlated with the query) starts in every
    // region of matches rather than climbing out of the query's own.
    const std::size_t want = std::min<std::size_t>(kMaxFilterSeeds, std::max<std::size_t>(4, ef / 4));
    std::vector<node_t> seeds;
    seeds.reserve(want);
    const std::size_t words = allowed.word_count();
    const std::size_t offset = words ? splitmix64(entry.id) % words : 0;
    for (std::size_t i = 0; i < want && words; ++i) {
      const std::size_t start = (offset + i * words / want) % words;
      for (std::size_t w = 0; w < words; ++w) {
        const std::size_t at = (start + w) % words;
        const std::uint64_t bits = allowed.words()[at];
        if (bits) {
          const node_t r = static_cast<node_t>(at * 64 + std::size_t(__builtin_ctzll(bits)));
          if (!visited.visited(r)) {
            visited.mark(r);
            seeds.push_back(r);
          }
          break;
        }
      }
    }
    const std::size_t ns = seeds.size();
    d.resize(std::max(d.size(), ns));
    if (ns) {
      qd.distances(seeds.data(), ns, d.data());
      plan.distances += ns;
      for (std::size_t i = 0; i < ns; ++i) {
        candidates.push({d[i], seeds[i]});
        top.push(d[i], seeds[i]);
      }
    }
  }

  while (!candidates.empty()) {
    const Neighbor c = candidates.top();
    if (c.distance > top.worst()) break;
    candidates.pop();
    if (!candidates.empty()) prefetch_l1(graph_.links(candidates.top().id, 0));
    const std::size_t n = copy_links(c.id, 0, links.data(), false);
    ++plan.expansions;
    plan.filter_checks += n;
    std::size_t m = 0, nb = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const node_t u = links[j];
      if (visited.visited(u)) continue;
      if (score_all || allowed.accepts(u)) {
        visited.mark(u);
        fresh[m++] = u;
      } else {
        bridges[nb++] = u;
      }
    }
    if (!score_all && m < max_links && nb > 0) {
      for (std::size_t j = 0; j < nb; ++j) prefetch_l1(graph_.links(bridges[j], 0));
      for (std::size_t j = 0; j < nb && m < max_links; ++j) {
        visited.mark(bridges[j]);
        const std::size_t n2 = copy_links(bridges[j], 0, second.data(), false);
        plan.filter_checks += n2;
        for (std::size_t t = 0; t < n2 && m < max_links; ++t) {
          const node_t w = second[t];
          if (!visited.visited(w) && allowed.accepts(w)) {
            visited.mark(w);
            fresh[m++] = w;
          }
        }
      }
    }
    if (m == 0) continue;
    qd.distances(fresh.data(), m, d.data());
    plan.distances += m;
    for (std::size_t j = 0; j < m; ++j) {
      if (d[j] < top.worst()) {
        candidates.push({d[j], fresh[j]});
        if (!score_all || allowed.accepts(fresh[j])) top.push(d[j], fresh[j]);
      }
    }
  }
  return top.sorted();
}

void HnswIndex::search_prepared(const float* queries, std::size_t nq, std::size_t k, const SearchParams& params,
                                std::int64_t* ids, float* distances) const {
  const std::size_t pool = candidate_count(k, params);
  const std::size_t ef = std::max(pool, params.ef ? params.ef : kDefaultEf);
  const std::size_t rows = graph_.size();
  const int threads = resolve_num_threads(params.num_threads);
  // Plans first: queries answered by an exact scan are grouped by filter and scanned together
  // (a tile of matching rows serves the whole group), the others walk the graph one by one.
  std::vector<FilterPlan> choice(nq);
  std::map<const Bitset*, std::size_t> task_of;
  std::vector<ScanTask> scans;
  std::vector<std::uint32_t> walks;
  walks.reserve(nq);
  for (std::size_t q = 0; q < nq; ++q) {
    const QueryFilter* f = params.filters ? &params.filters[q] : nullptr;
    choice[q] = FilterPlan{PlanKind::Graph, ef, true};
    if (f && f->range) choice[q] = plan_range_search({rows, f->matches, f->span.size(), ef});
    if (f && choice[q].kind == PlanKind::Graph)
      choice[q] = plan_filtered_search({rows, f->matches, pool, ef, graph_.max_links(0)});
    if (params.forced_plan == PlanKind::RangeGraph) {
      if (!f || !f->range)
        throw InvalidArgument("plan='range_graph' needs a range predicate on a field with a range index");
      if (choice[q].kind != PlanKind::Empty) choice[q] = {PlanKind::RangeGraph, ef, false};
    } else if (params.forced_plan == PlanKind::ExactScan && choice[q].kind != PlanKind::Empty) {
      choice[q] = {PlanKind::ExactScan, 0, false};
    } else if (f && choice[q].kind != PlanKind::Empty &&
               (params.forced_plan == PlanKind::FilteredGraph || params.forced_plan == PlanKind::PostFilter)) {
      const bool all = params.forced_plan == PlanKind::PostFilter;
      choice[q] = {params.forced_plan, ef, all};
    }
    if (params.plans) {
      params.plans[q] = QueryPlan();
      params.plans[q].matches = f ? f->matches : rows;
      params.plans[q].kind = choice[q].kind;
    }
    if (choice[q].kind == PlanKind::ExactScan) {
      const Bitset* key = f ? f->rows : nullptr;  // nullptr: an exact scan of every row
      auto it = task_of.find(key);
      if (it == task_of.end()) {
        it = task_of.emplace(key, scans.size()).first;
        scans.push_back({key, key != nullptr, {}});
      }
      scans[it->second].queries.push_back(static_cast<std::uint32_t>(q));
    } else if (choice[q].kind != PlanKind::Empty) {
      walks.push_back(static_cast<std::uint32_t>(q));
    }
  }
  if (!scans.empty()) run_scan_tasks(queries, scans, k, pool, threads, ids, distances, params.plans, params.stats);
  if (walks.empty()) return;

  const int use_threads = static_cast<int>(std::min<std::size_t>(threads, walks.size()));
  FirstError err;
  std::mutex stats_mu;
#pragma omp parallel num_threads(use_threads)
  {
    err.run([&] {
      SearchStats local;
      auto visited = visited_.acquire(rows);
#pragma omp for schedule(dynamic, 4)
      for (std::int64_t wi = 0; wi < static_cast<std::int64_t>(walks.size()); ++wi) {
        const std::size_t q_index = walks[std::size_t(wi)];
        const float* q = queries + q_index * dim_;
        const QueryFilter* f = params.filters ? &params.filters[q_index] : nullptr;
        const FilterPlan& c = choice[q_index];
        QueryPlan plan;
        plan.kind = c.kind;
        plan.matches = f ? f->matches : rows;
        plan.ef = c.ef;
        auto qd = codes_->query_distance(q);
        SearchStats walk;
        Neighbor cur{qd->distance(graph_.entry()), graph_.entry()};
        cur = descend<false>(*qd, cur, graph_.max_level(), 0, &walk);
        visited->prepare(rows);
        std::vector<Neighbor> best =
            c.kind == PlanKind::Graph        ? search_level<false>(*qd, *visited, cur, 0, c.ef, &walk)
            : c.kind == PlanKind::RangeGraph ? search_range(*qd, *visited, cur.id, *f, c.ef, plan)
                                             : search_level0_filtered(*qd, *visited, cur, c.ef, *f->rows, c.score_all, plan);
        plan.distances += walk.distances + 1;
        plan.expansions += walk.expansions;
        // The walk can strand in a region with too few matches; the exact answer is then a scan.
        if (f && best.size() < std::min(k, f->matches)) {
          plan.fallback = true;
          TopK top(pool);
          plan.distances += scan_rows(*qd, *f->rows, top);
          best = top.sorted();
        }
        if (best.size() > pool) best.resize(pool);
        write_ids(finish_candidates(q, std::move(best), k, qd.get()), k, ids + q_index * k, distances + q_index * k);
        local.distances += plan.distances;
        local.expansions += plan.expansions;
        if (params.plans) params.plans[q_index] = plan;
      }
      if (params.stats) {
        std::lock_guard<std::mutex> g(stats_mu);
        params.stats->distances += local.distances;
        params.stats->expansions += local.expansions;
      }
    });
  }
  err.rethrow();
}

std::map<std::string, std::size_t> HnswIndex::memory_usage() const {
  auto m = IndexBase::memory_usage();
  std::shared_lock<std::shared_mutex> g(rw_);
  m["graph"] = graph_.memory_bytes();
  std::size_t ranges = 0;
  for (const RangeIndex& ri : range_indexes_) ranges += ri.memory_bytes();
  m["range_index"] = ranges;
  return m;
}

// ---- range indexes ------------------------------------------------------------------------------

RangeIndex HnswIndex::make_range_index(const std::string& field, std::size_t M, std::size_t ef_construction,
                                       int num_threads) const {
  const AttributeColumnIndex* column = attributes_.column(field);
  if (!column) throw InvalidArgument("unknown field '" + field + "': declare it or add rows with it first");
  if (column->type() != FieldType::Int && column->type() != FieldType::Float)
    throw InvalidArgument("field '" + field + "' is " + field_type_name(column->type()) +
                          ": a range index needs an int or float field");
  RangeIndex::Source src;
  src.field = field;
  src.column = column;
  src.rows = labels_.size();
  src.store = codes_.get();
  const FloatStore* full = full_vectors();
  src.row_vector = [this, full](node_t row, float* scratch) {
    return full ? full->row(row) : codes_->row_as_float(row, scratch);
  };
  if (M == 1 || M > 256) throw InvalidArgument("range index M must be between 2 and 256, got " + std::to_string(M));
  src.M = M ? M : kDefaultRangeM;
  src.ef_construction = ef_construction ? ef_construction : kDefaultRangeEfConstruction;
  src.threads = num_threads;
  return RangeIndex::build(src);
}

void HnswIndex::build_range_index(const std::string& field, std::size_t M, std::size_t ef_construction,
                                  int num_threads) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (read_only()) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  RangeIndex built = make_range_index(field, M, ef_construction, num_threads);
  for (RangeIndex& ri : range_indexes_)
    if (ri.field() == field) {
      ri = std::move(built);
      return;
    }
  if (range_indexes_.size() >= kMaxRangeIndexes)
    throw InvalidArgument("at most " + std::to_string(kMaxRangeIndexes) + " range indexes");
  range_indexes_.push_back(std::move(built));
}

void HnswIndex::optimize(int num_threads) {
  std::unique_lock<std::shared_mutex> g(rw_);
  if (read_only()) throw InvalidArgument("index is read-only (memory-mapped); load it with mmap=False to modify it");
  for (RangeIndex& ri : range_indexes_) ri = make_range_index(ri.field(), ri.M(), ri.ef_construction(), num_threads);
}

std::vector<std::string> HnswIndex::range_index_fields() const {
  std::shared_lock<std::shared_mutex> g(rw_);
  std::vector<std::string> out;
  for (const RangeIndex& ri : range_indexes_) out.push_back(ri.field());
  return out;
}

void HnswIndex::describe_filter(const FilterNode& node, QueryFilter& filter) const {
  if (range_indexes_.empty()) return;
  // The range is the whole filter or one of the terms of its top-level and (the Python layer
  // merges the ranges on one field of an and into one node); the narrowest span wins.
  auto consider = [&](const FilterNode& n) {
    if (n.op != FilterNode::Op::Range) return;
    for (const RangeIndex& ri : range_indexes_)
      if (ri.field() == n.field) {
        const RangeSpan span = ri.span_of(n);
        if (!filter.range || span.size() < filter.span.size()) {
          filter.range = &ri;
          filter.span = span;
        }
      }
  };
  consider(node);
  if (node.op == FilterNode::Op::And)
    for (const FilterNode& c : node.children) consider(c);
}

void HnswIndex::attributes_updated(const node_t* rows, std::size_t n, const AttributeBatch& batch) {
  for (const AttributeColumn& c : batch.columns)
    for (RangeIndex& ri : range_indexes_)
      if (ri.field() == c.name) ri.mark_stale(rows, n);
}

std::vector<Neighbor> HnswIndex::search_range(QueryDistance& qd, VisitedSet& visited, node_t entry,
                                              const QueryFilter& f, std::size_t ef, QueryPlan& plan) const {
  std::vector<Neighbor> walk = f.range->search(qd, visited, graph_, entry, f.span, *f.rows, ef, plan);
  if (!f.range->has_delta(f.rows->size())) return walk;
  TopK top(ef);
  for (const Neighbor& nb : walk) top.push(nb.distance, nb.id);
  plan.distances += f.range->scan_delta(qd, *f.rows, top);
  return top.sorted();
}

void HnswIndex::write_params(Params& p) const {
  p.set("M", std::uint64_t(params_.M));
  p.set("ef_construction", std::uint64_t(params_.ef_construction));
  p.set("seed", params_.seed);
  p.set("entry", std::uint64_t(graph_.entry()));
  p.set("max_level", std::uint64_t(graph_.max_level() + 1));  // stored +1 so an empty graph is 0
}

void HnswIndex::write_sections(IndexFileWriter& w) const {
  w.add_array(section::kGraphLevels, graph_.levels());
  w.add_array(section::kGraphLevel0, graph_.level0());
  w.add_array(section::kGraphUpperOffsets, graph_.upper_offsets());
  w.add_array(section::kGraphUpper, graph_.upper());
  for (std::size_t i = 0; i < range_indexes_.size(); ++i) range_indexes_[i].write(w, i);
}

std::unique_ptr<HnswIndex> HnswIndex::load(const IndexFileReader& r, bool view) {
  const Params p = r.params();
  HnswParams hp;
  hp.M = p.get_u64("M");
  hp.ef_construction = p.get_u64("ef_construction");
  hp.seed = p.get_u64("seed");
  if (hp.M < 2 || hp.M > 512 || hp.ef_construction < 1) throw FormatError("corrupt index file: bad HNSW parameters");
  const std::uint64_t entry = p.get_u64("entry"), max_level = p.get_u64("max_level");
  if (max_level > kMaxLevel + 1 || (entry > kMaxNodes && entry != kNoNode))
    throw FormatError("corrupt index file: bad HNSW entry point");
  const FileInfo& info = r.info();
  const Quantization q = quantization_in(p);
  auto index = std::make_unique<HnswIndex>(info.dim, info.metric, hp, q, full_vectors_in(r, q));
  index->load_common(r, view);
  const std::uint64_t n = info.count;
  auto levels = r.array<std::uint8_t>(section::kGraphLevels, n, view);
  auto level0 = r.array<node_t>(section::kGraphLevel0, n * (2 * hp.M + 1), view);
  auto offsets = r.array<std::uint64_t>(section::kGraphUpperOffsets, n, view);
  auto ub = r.bytes(section::kGraphUpper);
  auto upper = r.array<node_t>(section::kGraphUpper, ub.second / sizeof(node_t), view);
  index->graph_ = HnswGraph::from_arrays(hp.M, std::move(levels), std::move(level0), std::move(offsets),
                                         std::move(upper), static_cast<node_t>(entry),
                                         static_cast<int>(max_level) - 1);
  for (std::size_t i = 0; i < kMaxRangeIndexes && RangeIndex::present(r, i); ++i) {
    RangeIndex ri = RangeIndex::read(r, i, n, view);
    const AttributeColumnIndex* column = index->attributes_.column(ri.field());
    if (!column || (column->type() != FieldType::Int && column->type() != FieldType::Float))
      throw FormatError("corrupt index file: range index on a field that is not an int or float field");
    index->range_indexes_.push_back(std::move(ri));
  }
  return index;
}

}  // namespace vecdex
