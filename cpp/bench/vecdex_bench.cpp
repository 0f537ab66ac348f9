// vecdex-bench: builds (or loads) an index over a base set, sweeps the HNSW search width ef over
// a query set and prints recall@k, QPS and build time as a table. Run with --help for the options.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "bench_args.h"
#include "bench_io.h"
#include "bench_recall.h"
#include "vecdex/flat/flat_index.h"
#include "vecdex/hnsw/hnsw_index.h"
#include "vecdex/index_base.h"
#include "vecdex/simd/dispatch.h"
#include "vecdex/threading.h"

namespace vecdex_bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kRecallTarget = 0.95;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

std::string human_bytes(std::size_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = double(bytes) / 1024.0;
  int unit = 0;
  for (; value >= 1024.0 && unit < 3; ++unit) value /= 1024.0;
  return fmt("%.1f ", value) + units[unit];
}

std::string threads_text(int threads) {
  return std::to_string(threads) + (threads == 1 ? " thread" : " threads");
}

void print_input(const char* label, const std::string& path, const Matrix<float>& m) {
  std::printf("%-13s%s: %zu x %zu (%s", label, path.c_str(), m.rows, m.cols, m.format.c_str());
  if (m.rows < m.file_rows) std::printf("; first %zu of %zu rows", m.rows, m.file_rows);
  std::printf(")\n");
}

// ---------------------------------------------------------------------------------------------
// Ground truth
// ---------------------------------------------------------------------------------------------

Matrix<std::int64_t> exact_ground_truth(const Matrix<float>& base, const Matrix<float>& queries, std::size_t k,
                                        vecdex::Metric metric, int threads) {
  vecdex::FlatIndex flat(base.cols, metric);
  flat.add(base.data.data(), base.rows, nullptr, threads);
  Matrix<std::int64_t> gt;
  gt.rows = gt.file_rows = queries.rows;
  gt.cols = k;
  gt.data.resize(queries.rows * k);
  std::vector<float> distances(queries.rows * k);
  vecdex::SearchParams params;
  params.num_threads = threads;
  flat.search(queries.data.data(), queries.rows, k, params, gt.data.data(), distances.data());
  return gt;
}

// Uses --gt when it describes this base and query set, otherwise computes the exact answer.
Matrix<std::int64_t> ground_truth(const Options& o, const Matrix<float>& base, const Matrix<float>& queries,
                                  vecdex::Metric metric) {
  std::string why = "no --gt given";
  if (!o.gt.empty()) {
    Matrix<std::int64_t> gt = load_ground_truth(o.gt);
    if (gt.rows != queries.file_rows) {
      throw InputError("'" + o.gt + "': ground truth has " + std::to_string(gt.rows) + " rows but '" + o.queries +
                       "' has " + std::to_string(queries.file_rows) + " queries");
    }
    // Ids of a truncated base would point at rows that are not there (or are not the neighbours).
    if (base.rows == base.file_rows) {
      check_ground_truth(gt, o.gt, queries.rows, o.k, base.rows);
      std::printf("%-13s%s (%s, %zu neighbours per query)\n", "ground truth", o.gt.c_str(), gt.format.c_str(), gt.cols);
      return gt;
    }
    why = "--gt ignored because --max-base cut the base";
  }
  const int threads = vecdex::resolve_num_threads(o.build_threads);
  const auto start = Clock::now();
  Matrix<std::int64_t> gt = exact_ground_truth(base, queries, o.k, metric, threads);
  std::printf("%-13scomputed exactly with FlatIndex in %.2f s, %s (%s)\n", "ground truth", seconds_since(start),
              threads_text(threads).c_str(), why.c_str());
  return gt;
}

// ---------------------------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------------------------

std::unique_ptr<vecdex::IndexBase> build_index(const Options& o, const Matrix<float>& base, vecdex::Metric metric) {
  std::unique_ptr<vecdex::IndexBase> index;
  if (o.index == "flat") {
    index = std::make_unique<vecdex::FlatIndex>(base.cols, metric);
    std::printf("%-13sflat (exact)\n", "index");
  } else {
    vecdex::HnswParams p;
    p.M = o.M;
    p.ef_construction = o.ef_construction;
    p.seed = o.seed;
    index = std::make_unique<vecdex::HnswIndex>(base.cols, metric, p);
    std::printf("%-13shnsw M=%zu ef_construction=%zu seed=%llu\n", "index", p.M, p.ef_construction,
                static_cast<unsigned long long>(p.seed));
  }
  std::fflush(stdout);  // the build can take minutes: show what is being built first

  const int threads = vecdex::resolve_num_threads(o.build_threads);
  const auto start = Clock::now();
  index->add(base.data.data(), base.rows, nullptr, threads);
  const double secs = seconds_since(start);
  std::printf("%-13s%zu vectors in %.2f s (%.0f vectors/s, %s)\n", "build", base.rows, secs,
              double(base.rows) / std::max(secs, 1e-9), threads_text(threads).c_str());
  return index;
}

// Whether `stored` is what vecdex keeps for `row`: the row itself, or its direction for cosine.
bool same_stored_row(vecdex::Metric metric, const float* stored, const float* row, std::size_t dim) {
  double norm_sq = 0;
  for (std::size_t j = 0; j < dim; ++j) norm_sq += double(row[j]) * row[j];
  const double scale = (metric == vecdex::Metric::Cosine && norm_sq > 0) ? 1.0 / std::sqrt(norm_sq) : 1.0;
  double diff_sq = 0;
  for (std::size_t j = 0; j < dim; ++j) {
    const double d = stored[j] - row[j] * scale;
    diff_sq += d * d;
  }
  return diff_sq <= 1e-8 * (1.0 + norm_sq * scale * scale);
}

// A loaded index must hold exactly the --base rows under ids 0..n-1, or recall would be measured
// against the wrong vectors. Ids are checked all; vectors at a few rows, which catches a
// different or reordered base file.
void check_loaded_index(const Options& o, const vecdex::IndexBase& index, const Matrix<float>& base) {
  const std::string where = "'" + o.load + "': ";
  if (index.dim() != base.cols) {
    throw InputError(where + "index has dimension " + std::to_string(index.dim()) + " but the base has " +
                     std::to_string(base.cols));
  }
  if (index.size() != base.rows) {
    throw InputError(where + "index holds " + std::to_string(index.size()) + " vectors but " +
                     std::to_string(base.rows) + " base rows are used");
  }
  for (std::size_t row = 0; row < base.rows; ++row) {
    if (index.labels().label(static_cast<vecdex::node_t>(row)) != row) {
      throw InputError(where + "index ids are not the row numbers 0..n-1 of the base");
    }
  }
  const std::size_t probes[] = {0, base.rows / 2, base.rows - 1};
  std::vector<float> stored(base.cols);
  for (std::size_t row : probes) {
    const vecdex::label_t id = row;
    index.get_vectors(&id, 1, stored.data());
    if (!same_stored_row(index.metric(), stored.data(), base.row(row), base.cols)) {
      throw InputError(where + "stored vector " + std::to_string(row) + " differs from row " + std::to_string(row) +
                       " of '" + o.base + "': the index was built from other data");
    }
  }
}

std::unique_ptr<vecdex::IndexBase> load_index(const Options& o, const Matrix<float>& base) {
  const auto start = Clock::now();
  std::unique_ptr<vecdex::IndexBase> index = vecdex::load_index(o.load, /*mmap=*/false);
  const double secs = seconds_since(start);
  check_loaded_index(o, *index, base);
  std::printf("%-13s%s, %s, loaded from %s in %.2f s\n", "index", vecdex::index_kind_name(index->kind()),
              vecdex::metric_name(index->metric()), o.load.c_str(), secs);
  return index;
}

void print_memory(const vecdex::IndexBase& index) {
  const std::map<std::string, std::size_t> usage = index.memory_usage();
  std::size_t total = 0;
  std::string parts;
  for (const auto& part : usage) {
    if (part.first == "total") continue;
    total += part.second;
    parts += (parts.empty() ? "" : ", ") + part.first + " " + human_bytes(part.second);
  }
  if (usage.count("total")) total = usage.at("total");
  std::printf("%-13s%s (%s)\n", "memory", human_bytes(total).c_str(), parts.c_str());
}

// ---------------------------------------------------------------------------------------------
// Search sweep
// ---------------------------------------------------------------------------------------------

struct SweepPoint {
  std::string ef;  // "exact" for a flat index
  double recall = 0, qps = 0, ms_per_query = 0;
};

struct SweepContext {
  const vecdex::IndexBase& index;
  const Matrix<float>& base;
  const Matrix<float>& queries;
  const std::vector<double>& thresholds;
  vecdex::Metric metric;
  std::size_t k;
  int threads;
  int repeat;
};

// One batch search of all queries per run; the fastest of `repeat` runs counts, since slower
// runs measure interference (other processes, cold caches) rather than the index.
SweepPoint measure(const SweepContext& c, std::size_t ef) {
  const std::size_t nq = c.queries.rows;
  std::vector<std::int64_t> ids(nq * c.k);
  std::vector<float> distances(nq * c.k);
  vecdex::SearchParams params;
  params.ef = ef;
  params.num_threads = c.threads;
  double best = INFINITY;
  for (int r = 0; r < c.repeat; ++r) {
    const auto start = Clock::now();
    c.index.search(c.queries.data.data(), nq, c.k, params, ids.data(), distances.data());
    best = std::min(best, seconds_since(start));
  }
  SweepPoint p;
  p.ef = ef ? std::to_string(ef) : "exact";
  p.recall = recall_at_k(ids, c.base, c.queries, c.thresholds, c.k, c.metric);
  best = std::max(best, 1e-9);
  p.qps = double(nq) / best;
  // Thread time per query: with one thread this is the latency of a query.
  p.ms_per_query = best * 1000.0 * c.threads / double(nq);
  return p;
}

void print_table_header(std::size_t k) {
  const std::string recall = "recall@" + std::to_string(k);
  std::printf("%7s | %10s | %10s | %9s\n", "ef", recall.c_str(), "QPS", "ms/query");
  std::printf("--------+------------+------------+----------\n");
}

void print_table_row(const SweepPoint& p) {
  std::printf("%7s | %10.4f | %10.0f | %9.4f\n", p.ef.c_str(), p.recall, p.qps, p.ms_per_query);
  std::fflush(stdout);  // rows appear as they are measured
}

void print_summary(const std::vector<SweepPoint>& points) {
  const auto hit = std::find_if(points.begin(), points.end(),
                                [](const SweepPoint& p) { return p.recall >= kRecallTarget; });
  if (hit != points.end()) {
    std::printf("QPS at recall>=%.2f: %.0f (ef=%s, recall %.4f)\n", kRecallTarget, hit->qps, hit->ef.c_str(),
                hit->recall);
    return;
  }
  const auto best = std::max_element(points.begin(), points.end(),
                                     [](const SweepPoint& a, const SweepPoint& b) { return a.recall < b.recall; });
  std::printf("QPS at recall>=%.2f: not reached (best recall %.4f at ef=%s)\n", kRecallTarget, best->recall,
              best->ef.c_str());
}

void sweep(const SweepContext& c, const std::vector<std::size_t>& efs) {
  const bool exact = c.index.kind() == vecdex::IndexKind::Flat;
  std::printf("%-13s%zu queries, k=%zu, %s, best of %d run%s\n\n", "search", c.queries.rows, c.k,
              threads_text(c.threads).c_str(), c.repeat, c.repeat == 1 ? "" : "s");
  if (exact) std::printf("(flat index: exact search, --ef does not apply)\n");
  if (!exact && *std::min_element(efs.begin(), efs.end()) < c.k) {
    std::printf("(vecdex raises an ef below k=%zu to k)\n", c.k);
  }
  print_table_header(c.k);
  std::vector<SweepPoint> points;
  for (std::size_t ef : exact ? std::vector<std::size_t>{0} : efs) {
    points.push_back(measure(c, ef));
    print_table_row(points.back());
  }
  std::printf("\n");
  print_summary(points);
}

// ---------------------------------------------------------------------------------------------

vecdex::Metric resolve_metric(const Options& o, const vecdex::IndexBase* loaded) {
  if (!loaded) return vecdex::metric_from_name(o.metric);
  if (o.metric_given && vecdex::metric_from_name(o.metric) != loaded->metric()) {
    throw InputError("'" + o.load + "': the index uses metric " + vecdex::metric_name(loaded->metric()) +
                     ", not --metric " + o.metric);
  }
  return loaded->metric();
}

// Saving comes after a build that can take minutes, so an unwritable place is caught first.
void check_save_path(const std::string& path) {
  if (path.empty()) return;
  const std::filesystem::path parent = std::filesystem::absolute(path).parent_path();
  std::error_code ec;
  if (!std::filesystem::is_directory(parent, ec)) {
    throw InputError("--save '" + path + "': directory '" + parent.string() + "' does not exist");
  }
}

int run(const Options& o) {
  if (!host_is_little_endian()) throw InputError("this build reads little-endian files only; the host is big-endian");
  check_save_path(o.save);
  std::printf("vecdex-bench: SIMD %s, %s available\n", vecdex::simd_level_name(vecdex::active_simd_level()),
              threads_text(vecdex::resolve_num_threads(0)).c_str());

  const Matrix<float> base = load_vectors(o.base, o.max_base);
  const Matrix<float> queries = load_vectors(o.queries, o.max_queries);
  print_input("base", o.base, base);
  print_input("queries", o.queries, queries);
  if (queries.cols != base.cols) {
    throw InputError("queries have dimension " + std::to_string(queries.cols) + " but the base has " +
                     std::to_string(base.cols));
  }
  if (o.k > base.rows) {
    throw InputError("--k " + std::to_string(o.k) + " is more than the " + std::to_string(base.rows) + " base rows");
  }

  // A loaded index fixes the metric, which the ground truth needs; an index to build comes
  // after the ground truth so that a bad --gt fails before minutes of building.
  std::unique_ptr<vecdex::IndexBase> index = o.load.empty() ? nullptr : load_index(o, base);
  const vecdex::Metric metric = resolve_metric(o, index.get());
  std::printf("%-13s%s\n", "metric", vecdex::metric_name(metric));
  const Matrix<std::int64_t> gt = ground_truth(o, base, queries, metric);
  const std::vector<double> thresholds = hit_thresholds(base, queries, gt, o.k, metric);

  if (!index) index = build_index(o, base, metric);
  if (!o.save.empty()) {
    index->save(o.save);
    std::printf("%-13s%s\n", "saved", o.save.c_str());
  }
  print_memory(*index);

  const SweepContext context{*index, base, queries, thresholds, metric, o.k, vecdex::resolve_num_threads(o.threads),
                             o.repeat};
  sweep(context, o.ef);
  return 0;
}

}  // namespace
}  // namespace vecdex_bench

int main(int argc, char** argv) {
  using namespace vecdex_bench;
  try {
    const Options options = parse_args(argc, argv);
    if (options.help) {
      std::fputs(usage_text(), stdout);
      return 0;
    }
    return run(options);
  } catch (const UsageError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "vecdex-bench: error: %s\nrun 'vecdex-bench --help' for usage\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "vecdex-bench: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    // InputError and vecdex's own errors (InvalidArgument, FormatError, IoError) all end here.
    std::fflush(stdout);
    std::fprintf(stderr, "vecdex-bench: error: %s\n", e.what());
    return 1;
  }
}
