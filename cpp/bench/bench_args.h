// Command line of vecdex-bench. Numbers are parsed strictly (no signs, no trailing text, range
// checked) because a silently misread option makes a benchmark report the wrong experiment.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace vecdex_bench {

// A bad command line: reported with a pointer to --help and exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string base, queries, gt, save, load;
  std::string metric = "l2";
  bool metric_given = false;
  std::string index = "hnsw";
  std::size_t M = 16;
  std::size_t ef_construction = 200;
  std::vector<std::size_t> ef = {10, 16, 32, 64, 128, 256};
  std::size_t k = 10;
  int threads = 1;
  int build_threads = 0;
  std::uint64_t seed = 0;
  std::size_t max_base = 0;     // 0: all rows
  std::size_t max_queries = 0;  // 0: all rows
  int repeat = 3;
  bool help = false;
};

inline const char* usage_text() {
  return R"(usage: vecdex-bench --base FILE --queries FILE [options]

Builds a vecdex index over the base vectors, searches all queries for a range of ef values and
prints recall@k, queries per second and build time.

input files (.npy: C-ordered 2-D arrays; .fvecs/.ivecs/.bvecs: TEXMEX records):
  --base FILE            base vectors: .npy float32 ('<f4'), .fvecs or .bvecs
  --queries FILE         query vectors, same formats
  --gt FILE              ground-truth neighbour ids, one row per query, best first:
                         .npy int32/int64/uint64 or .ivecs; ids are row numbers of --base.
                         Without it the exact ground truth is computed with FlatIndex.
  --max-base N           use only the first N base rows (0 = all; a given --gt is then
                         ignored and the ground truth recomputed)
  --max-queries N        use only the first N queries (0 = all)

index:
  --index hnsw|flat      index type (default hnsw)
  --metric l2|ip|cosine  distance (default l2, or the loaded index's metric)
  --M N                  HNSW links per node (default 16)
  --ef-construction N    HNSW build beam width (default 200)
  --seed N               HNSW level seed (default 0)
  --build-threads N      threads for building and for the exact ground truth (0 = all cores, default)
  --save PATH            save the built index to PATH
  --load PATH            load an index saved by vecdex instead of building one; its ids must be
                         the row numbers of --base

search:
  --k N                  neighbours per query (default 10)
  --ef LIST              comma-separated HNSW search widths (default 10,16,32,64,128,256)
  --threads N            search threads (default 1; 0 = all cores)
  --repeat N             timed runs per ef; the fastest counts (default 3)

  -h, --help             show this help

recall@k counts a returned id as a hit when its exact distance is within 1e-5 (relative above 1)
of the exact k-th nearest distance, so ties count as in ann-benchmarks.
)";
}

// A whole-string unsigned integer within [lo, hi].
inline std::uint64_t parse_uint(const std::string& option, const std::string& text, std::uint64_t lo, std::uint64_t hi) {
  const bool digits_only = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  errno = 0;
  const unsigned long long v = digits_only ? std::strtoull(text.c_str(), nullptr, 10) : 0;
  if (!digits_only || errno == ERANGE || v < lo || v > hi) {
    throw UsageError(option + " expects an integer between " + std::to_string(lo) + " and " + std::to_string(hi) +
                     ", got '" + text + "'");
  }
  return v;
}

inline std::vector<std::size_t> parse_ef_list(const std::string& text) {
  std::vector<std::size_t> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    out.push_back(static_cast<std::size_t>(parse_uint("--ef", item, 1, 1u << 20)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

inline std::string parse_choice(const std::string& option, const std::string& text,
                                const std::vector<std::string>& choices) {
  for (const auto& c : choices)
    if (text == c) return text;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  throw UsageError(option + " expects one of " + list + ", got '" + text + "'");
}

inline Options parse_args(int argc, char** argv) {
  Options o;
  constexpr std::uint64_t kMaxCount = std::uint64_t(1) << 40;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i], value;
    if (name == "-h" || name == "--help") {
      o.help = true;
      continue;
    }
    if (name.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + name + "'");
    // Both "--k 10" and "--k=10".
    const std::size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else {
      if (i + 1 >= argc) throw UsageError(name + " needs a value");
      value = argv[++i];
    }

    if (name == "--base") o.base = value;
    else if (name == "--queries") o.queries = value;
    else if (name == "--gt") o.gt = value;
    else if (name == "--save") o.save = value;
    else if (name == "--load") o.load = value;
    else if (name == "--metric") {
      o.metric = parse_choice(name, value, {"l2", "ip", "cosine"});
      o.metric_given = true;
    }
    else if (name == "--index") o.index = parse_choice(name, value, {"hnsw", "flat"});
    else if (name == "--M") o.M = parse_uint(name, value, 2, 512);
    else if (name == "--ef-construction") o.ef_construction = parse_uint(name, value, 1, 1u << 20);
    else if (name == "--ef") o.ef = parse_ef_list(value);
    else if (name == "--k") o.k = parse_uint(name, value, 1, 1u << 20);
    else if (name == "--threads") o.threads = static_cast<int>(parse_uint(name, value, 0, 4096));
    else if (name == "--build-threads") o.build_threads = static_cast<int>(parse_uint(name, value, 0, 4096));
    else if (name == "--seed") o.seed = parse_uint(name, value, 0, UINT64_MAX);
    else if (name == "--max-base") o.max_base = parse_uint(name, value, 0, kMaxCount);
    else if (name == "--max-queries") o.max_queries = parse_uint(name, value, 0, kMaxCount);
    else if (name == "--repeat") o.repeat = static_cast<int>(parse_uint(name, value, 1, 1000));
    else throw UsageError("unknown option '" + name + "'");
  }
  if (o.help) return o;
  if (o.base.empty()) throw UsageError("--base is required");
  if (o.queries.empty()) throw UsageError("--queries is required");
  if (!o.load.empty() && !o.save.empty()) throw UsageError("--save and --load cannot be combined");
  return o;
}

}  // namespace vecdex_bench
