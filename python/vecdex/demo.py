"""vecdex demo: nearest Debian packages, recall and speed on the embedded 2,000-item data set.

Run it with ``python -m vecdex.demo`` (or ``python path/to/vecdex/demo.py``). Options:
``--k`` neighbours shown per package, ``--ef`` HNSW search breadth, ``--query NAME`` (repeatable)
package(s) to look up, ``--threads`` for the batch timings.
"""
from __future__ import annotations

import argparse
import difflib
import os
import shutil
import sys
import time
from typing import Callable, Dict, List, Sequence

import numpy as np

import vecdex

DEFAULT_QUERIES = ["curl", "git", "vim", "nginx", "python3-numpy"]
RECALL_TOL = 1e-5  # ann-benchmarks style: a hit is within this of the k-th exact distance


def _load_demo_data() -> Dict[str, np.ndarray]:
    if __package__:  # python -m vecdex.demo / import vecdex.demo
        from .datasets import load_debian_demo
    else:  # run as a script: use the datasets.py (and data/) next to this file
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets.py")
        spec = importlib.util.spec_from_file_location("_vecdex_demo_datasets", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        load_debian_demo = module.load_debian_demo
    return load_debian_demo()


def _best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _recall(approx_ids: np.ndarray, approx_d: np.ndarray, exact_d: np.ndarray, k: int) -> float:
    """Mean recall@k counting ties like ann-benchmarks: a returned neighbour is a hit when its
    distance is within RECALL_TOL of the k-th exact distance."""
    threshold = exact_d[:, k - 1:k] + RECALL_TOL
    hits = (approx_ids[:, :k] >= 0) & (approx_d[:, :k] <= threshold)
    return float(hits.sum()) / (k * approx_ids.shape[0])


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "inf"


def _resolve_queries(requested: Sequence[str], names: np.ndarray) -> List[int]:
    index_of = {}
    for i, name in enumerate(names.tolist()):
        index_of.setdefault(name, i)
    if requested:
        rows = []
        for name in requested:
            if name not in index_of:
                close = difflib.get_close_matches(name, list(index_of), n=5, cutoff=0.6)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise SystemExit(f"vecdex.demo: package {name!r} is not in the 2,000-package demo set.{hint}")
            rows.append(index_of[name])
        return rows
    rows = [index_of[n] for n in DEFAULT_QUERIES if n in index_of]
    if not rows:  # the data set changed: fall back to a fixed random choice
        rows = sorted(np.random.default_rng(0).choice(len(names), size=5, replace=False).tolist())
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vecdex.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=5, help="neighbours shown per package (default 5)")
    ap.add_argument("--ef", type=int, default=64, help="HNSW search breadth (default 64)")
    ap.add_argument("--query", action="append", default=[], metavar="NAME",
                    help="package name to look up; repeat for several (default: a few well-known ones)")
    ap.add_argument("--recall-k", type=int, default=10, help="k for the recall measurement (default 10)")
    ap.add_argument("--threads", type=int, default=0, help="threads for add/search, 0 = all cores (default)")
    args = ap.parse_args(argv)
    if args.k <= 0 or args.ef <= 0 or args.recall_k <= 0:
        ap.error("--k, --ef and --recall-k must be positive")

    width = max(80, min(shutil.get_terminal_size((100, 24)).columns, 120))
    data = _load_demo_data()
    X, names, summaries, sections = data["vectors"], data["names"], data["summaries"], data["sections"]
    n, dim = X.shape
    rows = _resolve_queries(args.query, names)  # fail on an unknown --query before building
    ids = np.arange(n, dtype=np.int64)

    version = getattr(vecdex, "__version__", "?")
    print(f"vecdex {version} demo: {n:,} Debian 12 package descriptions, "
          f"all-MiniLM-L6-v2 embeddings ({dim}-d, cosine)")
    levels = ", ".join(vecdex.available_simd_levels())
    print(f"SIMD level in use: {vecdex.simd_level()}   (this CPU supports: {levels}; "
          f"force one with VECDEX_SIMD=...)")
    print(f"CPU cores: {os.cpu_count()}   threads used: {'all' if args.threads == 0 else args.threads}")

    # ---- build ---------------------------------------------------------------------------
    index = vecdex.Index(dim=dim, metric="cosine", M=16, ef_construction=200, seed=0)
    t0 = time.perf_counter()
    index.add(X, ids=ids, num_threads=args.threads, attributes={"section": [str(s) for s in sections]})
    t_index = time.perf_counter() - t0
    flat = vecdex.FlatIndex(dim=dim, metric="cosine")
    t0 = time.perf_counter()
    flat.add(X, ids=ids, num_threads=args.threads)
    t_flat = time.perf_counter() - t0
    mem = index.memory_usage().get("total", 0)
    print("\nBuild")
    print(f"  Index (HNSW, M=16, ef_construction=200)  {n:,} vectors in {t_index:6.3f} s"
          f"  ({_rate(n, t_index)} vectors/s, {mem / 2**20:.1f} MiB)")
    print(f"  FlatIndex (exact)                        {n:,} vectors in {t_flat:6.3f} s")

    # ---- nearest packages ------------------------------------------------------------------
    k_show = min(args.k, n - 1)
    print(f"\nNearest packages (Index, ef={args.ef}; distance = 1 - cosine similarity)")
    name_w = min(max(len(str(x)) for x in names), 30)
    for r in rows:
        found, dist = index.search(X[r], k=k_show + 1, ef=max(args.ef, k_show + 1))
        hits = [(int(i), float(d)) for i, d in zip(found, dist) if i >= 0 and i != r][:k_show]
        head = f"{names[r]} [{sections[r]}]: "
        print(f"\n  {head}{_clip(str(summaries[r]), width - 2 - len(head))}")
        for rank, (j, d) in enumerate(hits, 1):
            left = f"    {rank:>2}. {d:6.4f}  {names[j]:<{name_w}}  "
            print(left + _clip(str(summaries[j]), width - len(left)))

    # ---- filtered search ------------------------------------------------------------------
    r = rows[0]
    other = "utils" if str(sections[r]) != "utils" else "net"
    print(f"\nFiltered search: the packages nearest to {names[r]} within section '{other}' "
          f"(filter evaluated natively; explain=True shows the plan)")
    found, dist, plans = index.search(X[r], k=k_show, ef=args.ef, filter=vecdex.field("section") == other,
                                      explain=True)
    p = plans
    print(f"  plan: {p['plan']}, {p['matches']:,} matching rows ({p['selectivity']:.1%}), "
          f"{p['distances']:,} distances computed")
    for rank, (j, d) in enumerate(((int(i), float(d)) for i, d in zip(found, dist) if i >= 0), 1):
        left = f"    {rank:>2}. {d:6.4f}  {names[j]:<{name_w}}  [{sections[j]}]  "
        print(left + _clip(str(summaries[j]), width - len(left)))

    # ---- recall and speed ----------------------------------------------------------------
    k = min(args.recall_k, n)
    ef = max(args.ef, k)
    exact_ids, exact_d = flat.search(X, k=k, num_threads=args.threads)
    approx_ids, approx_d = index.search(X, k=k, ef=ef, num_threads=args.threads)
    recall = _recall(approx_ids, approx_d, exact_d, k)

    t_hnsw = _best_time(lambda: index.search(X, k=k, ef=ef, num_threads=args.threads))
    t_hnsw1 = _best_time(lambda: index.search(X, k=k, ef=ef, num_threads=1))
    t_flat_s = _best_time(lambda: flat.search(X, k=k, num_threads=args.threads))
    t_flat1 = _best_time(lambda: flat.search(X, k=k, num_threads=1))

    print(f"\nRecall and speed: all {n:,} vectors as queries, k={k}, ef={ef} (best of 3 runs)")
    print(f"  recall@{k} of Index vs exact FlatIndex: {recall:.4f}")
    thr = "all threads" if args.threads == 0 else f"{args.threads} threads"
    print(f"  Index      {thr:>11}: {t_hnsw:7.4f} s  {_rate(n, t_hnsw):>10} QPS")
    print(f"  Index      {'1 thread':>11}: {t_hnsw1:7.4f} s  {_rate(n, t_hnsw1):>10} QPS")
    print(f"  FlatIndex  {thr:>11}: {t_flat_s:7.4f} s  {_rate(n, t_flat_s):>10} QPS")
    print(f"  FlatIndex  {'1 thread':>11}: {t_flat1:7.4f} s  {_rate(n, t_flat1):>10} QPS")
    print("\n  2,000 vectors is tiny, so exact search is competitive here; bench/RESULTS.md has")
    print("  the benchmark on the full 63,666-item set.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
