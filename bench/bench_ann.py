#!/usr/bin/env python3
"""ANN benchmark: vecdex against hnswlib, faiss (IndexHNSWFlat) and usearch.

    python bench/bench_ann.py [--quick] [--datasets debian,synthetic] [--out bench/RESULTS.md]

What it measures, per data set (all libraries in the same process, on the same data):

* build: wall time of building an HNSW graph (M=16, ef_construction=200) at all threads, memory
  (the library's own figure where it has one, plus the process RSS delta around the build);
* a sweep over ef (efSearch / expansion_search) of recall@10 and QPS of one batch search of all
  queries, at 1 thread and at all threads. For each ef value the libraries run alternately
  (interleaved, order rotated each repetition) and the best of 3 timings is kept;
* per library and thread setting, the QPS at the smallest ef whose recall@10 reaches 0.90 / 0.95 /
  0.99 (no interpolation);
* vecdex.FlatIndex single-query scan speed (1 thread) in bytes of base scanned per second, against
  the machine's memory bandwidth (a large numpy copy, and a numpy read-only reduction);
* quantisation (debian only unless --quant; --no-quant skips it): vecdex Index for each
  quantization (none, fp16, sq8, sq8u, sq4, and rabitq1/rabitq4/pq where the build has them),
  faiss IndexRefineFlat(IndexHNSWSQ 8-bit) and usearch dtype i8 / f16, swept over ef x re-rank
  factor at 1 search thread; per variant the bytes per vector of the codes, the index memory, the
  build time and the best QPS among the configurations reaching recall@10 >= 0.95.

Recall is counted as ann-benchmarks does: a returned id is a hit when its exact distance (recomputed
with numpy in float64) is within epsilon of the exact k-th distance (epsilon = 1e-5 for cosine;
1e-5 * max(1, d_k) for squared L2, whose distances are not bounded by 2). Ties therefore count.

Data: ../shared/data/debian relative to the repository root (63,666 x 384 unit vectors, 2,000
queries, exact top-100), and a synthetic clustered Gaussian set (100k x 128 by default, L2,
exact ground truth computed here with blocked numpy matmuls).

Results are written to --out (Markdown) and to --json (raw numbers). ``--from-json FILE`` re-renders
the Markdown from a saved JSON file without re-running anything (see write_results_md()).
No dependency beyond numpy and the libraries benchmarked; a library that fails to import is skipped
and noted.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEBIAN_DIR = REPO.parent / "shared" / "data" / "debian"

K = 10
M = 16
EF_CONSTRUCTION = 200
EF_SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
EF_QUICK = [10, 24, 64, 128, 256]
THRESHOLDS = (0.90, 0.95, 0.99)
ALL_LIBS = ("vecdex", "hnswlib", "faiss", "usearch")
# quantisation section (1 search thread; best QPS over (ef, rerank) at recall >= QUANT_TARGET)
QUANT_TARGET = 0.95
QUANT_DATASETS = ("debian", "synthetic768")  # where the section runs by default (--quant: every data set)
# Data sets measured only for quantisation (no fp32 peer sweep, no flat scan): 768-d vectors, the
# size of common text embeddings, where compressed codes matter most.
QUANT_ONLY_DATASETS = {"synthetic768": 768}
QUANT_TYPES = ("none", "fp16", "sq8", "sq8u", "sq4")
QUANT_TYPES_OPTIONAL = ("rabitq1", "rabitq4", "pq")  # added when the vecdex build has them
QUANT_EF = [32, 48, 64, 96, 128, 192]
QUANT_EF_QUICK = [32, 64, 128]
QUANT_RERANK = (1, 2, 4, 10)  # rabitq1 also 20
QUANT_RERANK_QUICK = (1, 4)
FAISS_K_FACTOR = (1, 2, 4)
FAISS_K_FACTOR_QUICK = (1, 4)
USEARCH_QUANT_DTYPES = ("i8", "f16")
USEARCH_DTYPE_BYTES = {"i8": 1, "f16": 2, "bf16": 2, "f32": 4}


def n_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm (0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def log(*a) -> None:
    print(*a, flush=True)


# --------------------------------------------------------------------------------------------
# data sets and exact distances
# --------------------------------------------------------------------------------------------

class Dataset:
    def __init__(self, name, base, queries, metric, description):
        self.name = name
        self.base = np.ascontiguousarray(base, dtype=np.float32)
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        self.metric = metric  # "cosine" | "l2"
        self.description = description
        self.gt = None  # (nq, >=K) int ids, best first
        self.kth = None  # (nq,) float64 exact K-th distance

    @property
    def n(self):
        return self.base.shape[0]

    @property
    def dim(self):
        return self.base.shape[1]

    @property
    def nq(self):
        return self.queries.shape[0]

    def info(self):
        return {"name": self.name, "n": int(self.n), "dim": int(self.dim), "nq": int(self.nq),
                "metric": self.metric, "description": self.description}


def exact_distances(metric, base, queries, ids):
    """float64 (nq, k) exact distances of base[ids] to the queries; +inf where ids is invalid.
    cosine: 1 - cos similarity; l2: squared Euclidean."""
    ids = np.asarray(ids, dtype=np.int64)
    valid = (ids >= 0) & (ids < base.shape[0])
    safe = np.where(valid, ids, 0)
    rows = base[safe].astype(np.float64)  # (nq, k, d)
    q = queries.astype(np.float64)[:, None, :]
    if metric == "cosine":
        num = np.einsum("qkd,qkd->qk", rows, np.broadcast_to(q, rows.shape))
        den = np.linalg.norm(rows, axis=2) * np.linalg.norm(q, axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 1.0 - np.where(den > 0, num / den, 0.0)
    elif metric == "l2":
        diff = rows - q
        d = np.einsum("qkd,qkd->qk", diff, diff)
    else:
        raise ValueError(metric)
    return np.where(valid, d, np.inf)


def exact_topk(metric, base, queries, k, block=256, pool=100):
    """Exact top-k ids and float64 distances by brute force: float32 blocked matmul to find a
    candidate pool of `pool` rows per query, then exact float64 re-ranking of the pool."""
    n = base.shape[0]
    pool = min(n, max(pool, k))
    if metric == "cosine":
        norms = np.linalg.norm(base, axis=1)
        norms[norms == 0] = 1
        b = base / norms[:, None]
        extra = None
    else:
        b = base
        extra = np.einsum("nd,nd->n", base, base)  # ||x||^2
    out_ids = np.empty((queries.shape[0], k), dtype=np.int64)
    out_d = np.empty((queries.shape[0], k), dtype=np.float64)
    for s in range(0, queries.shape[0], block):
        q = queries[s:s + block]
        if metric == "cosine":
            qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
            score = -(qn @ b.T)  # smaller is better
        else:
            score = extra[None, :] - 2.0 * (q @ b.T)
        if pool < n:
            cand = np.argpartition(score, pool - 1, axis=1)[:, :pool]
        else:
            cand = np.broadcast_to(np.arange(n), score.shape).copy()
        d = exact_distances(metric, base, q, cand)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        out_ids[s:s + block] = np.take_along_axis(cand, order, axis=1)
        out_d[s:s + block] = np.take_along_axis(d, order, axis=1)
    return out_ids, out_d


def load_debian(quick):
    base = np.load(DEBIAN_DIR / "base.npy")
    queries = np.load(DEBIAN_DIR / "queries.npy")
    if quick:
        ds = Dataset("debian", base[:10000], queries[:200], "cosine",
                     "debian subset (--quick): first 10,000 rows of base.npy, first 200 queries; "
                     "exact ground truth computed here")
        ds.gt, d = exact_topk("cosine", ds.base, ds.queries, K)
        ds.kth = d[:, K - 1]
        return ds
    ds = Dataset("debian", base, queries, "cosine",
                 "Debian 12 package descriptions, all-MiniLM-L6-v2 (unit vectors), "
                 "queries = package summaries; ground truth = gt_top100.npy")
    gt = np.load(DEBIAN_DIR / "gt_top100.npy")
    ds.gt = gt[:, :K].astype(np.int64)
    ds.kth = exact_distances("cosine", ds.base, ds.queries, ds.gt[:, K - 1:K])[:, 0]
    # sanity check of the shipped ground truth against brute force on a few queries
    chk = min(50, ds.nq)
    _, d = exact_topk("cosine", ds.base, ds.queries[:chk], K)
    bad = int(np.sum(np.abs(d[:, K - 1] - ds.kth[:chk]) > 1e-5))
    if bad:
        log(f"WARNING: gt_top100.npy k-th distance differs from brute force on {bad}/{chk} queries")
    return ds


def make_synthetic(n, nq, dim, metric="l2", n_clusters=64, latent=64, seed=0):
    """Clustered Gaussian data: cluster centres and per-point Gaussian offsets live in a
    `latent`-dimensional space, mapped to `dim` dimensions by a random linear map, plus a small
    isotropic Gaussian noise in all `dim` dimensions. Cluster spreads vary. Queries come from the
    same distribution (disjoint from the base)."""
    rng = np.random.default_rng(seed)
    total = n + nq
    centres = rng.standard_normal((n_clusters, latent)).astype(np.float32) * 2.0
    spread = rng.uniform(0.5, 1.5, n_clusters).astype(np.float32)
    proj = (rng.standard_normal((latent, dim)) / np.sqrt(latent)).astype(np.float32)
    x = np.empty((total, dim), dtype=np.float32)
    step = 50000
    for s in range(0, total, step):
        m = min(step, total - s)
        c = rng.integers(0, n_clusters, m)
        z = centres[c] + spread[c, None] * rng.standard_normal((m, latent), dtype=np.float32)
        x[s:s + m] = z @ proj + 0.1 * rng.standard_normal((m, dim), dtype=np.float32)
    desc = (f"synthetic clustered Gaussian, {n_clusters} clusters in a {latent}-d latent space "
            f"mapped to {dim}-d + isotropic noise, seed {seed}, metric {metric}; "
            f"exact ground truth computed here")
    ds = Dataset("synthetic" if dim == 128 else f"synthetic{dim}", x[:n], x[n:], metric, desc)
    t = time.perf_counter()
    ds.gt, d = exact_topk(metric, ds.base, ds.queries, K)
    ds.kth = d[:, K - 1]
    log(f"  synthetic ground truth: {time.perf_counter() - t:.1f}s")
    return ds


def recall_at_k(ds, ids):
    """ann-benchmarks style recall@K: hits are returned ids whose exact distance is within
    epsilon of the exact K-th distance. Duplicate ids in a row count once."""
    ids = np.asarray(ids, dtype=np.int64)[:, :K].copy()
    # drop duplicates within a row
    srt = np.sort(ids, axis=1)
    dup = np.zeros_like(ids, dtype=bool)
    dup[:, 1:] = srt[:, 1:] == srt[:, :-1]
    srt[dup] = -1
    d = exact_distances(ds.metric, ds.base, ds.queries, srt)
    if ds.metric == "cosine":
        thr = ds.kth + 1e-5
    else:
        thr = ds.kth + 1e-5 * np.maximum(1.0, ds.kth)
    hits = np.sum(d <= thr[:, None], axis=1)
    return float(np.mean(np.minimum(hits, K) / K))


# --------------------------------------------------------------------------------------------
# library adapters: build(ds, threads), search(queries, k, ef, threads) -> int64 ids (nq, k)
# --------------------------------------------------------------------------------------------

def _pkg_version(*names):
    from importlib import metadata
    for nm in names:
        try:
            return metadata.version(nm)
        except metadata.PackageNotFoundError:
            pass
    return "?"


def _normalise(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1
    return np.ascontiguousarray(x / n, dtype=np.float32)


class VecdexLib:
    name = "vecdex"

    def __init__(self):
        import vecdex
        self.vd = vecdex
        self.index = None

    def version(self):
        v = getattr(self.vd, "__version__", None) or _pkg_version("vecdex")
        try:
            v += f" (simd {self.vd.simd_level()})"
        except Exception:  # noqa: BLE001
            pass
        return v

    def params(self, ds):
        return f"Index(metric='{ds.metric}', M={M}, ef_construction={EF_CONSTRUCTION}, seed=0)"

    def build(self, ds, threads):
        self.index = self.vd.Index(dim=ds.dim, metric=ds.metric, M=M,
                                   ef_construction=EF_CONSTRUCTION, seed=0)
        self.index.add(ds.base, num_threads=threads)

    def reported_memory(self):
        return int(self.index.memory_usage()["total"]), "memory_usage()['total']"

    def search(self, q, k, ef, threads):
        ids, _ = self.index.search(q, k=k, ef=ef, num_threads=threads)
        return ids

    def close(self):
        self.index = None


class HnswlibLib:
    name = "hnswlib"

    def __init__(self):
        import hnswlib
        self.h = hnswlib
        self.index = None

    def version(self):
        return _pkg_version("hnswlib")

    def params(self, ds):
        space = "cosine" if ds.metric == "cosine" else "l2"
        return f"Index(space='{space}'), init_index(M={M}, ef_construction={EF_CONSTRUCTION}, random_seed=0)"

    def build(self, ds, threads):
        space = "cosine" if ds.metric == "cosine" else "l2"
        self.index = self.h.Index(space=space, dim=ds.dim)
        self.index.init_index(max_elements=ds.n, ef_construction=EF_CONSTRUCTION, M=M, random_seed=0)
        self.index.set_num_threads(threads)
        self.index.add_items(ds.base, np.arange(ds.n), num_threads=threads)

    def reported_memory(self):
        return int(self.index.index_file_size()), "index_file_size() (serialised size)"

    def search(self, q, k, ef, threads):
        self.index.set_ef(ef)
        labels, _ = self.index.knn_query(q, k=k, num_threads=threads)
        return labels.astype(np.int64)

    def close(self):
        self.index = None


class FaissLib:
    name = "faiss"

    def __init__(self):
        import faiss
        self.f = faiss
        self.index = None
        self.cosine = False

    def version(self):
        v = getattr(self.f, "__version__", None) or _pkg_version("faiss-cpu", "faiss")
        try:
            opts = self.f.get_compile_options().split()
            v += f" ({' '.join(opts)})"
        except Exception:  # noqa: BLE001
            pass
        return v

    def params(self, ds):
        metric = "METRIC_INNER_PRODUCT on normalised vectors" if ds.metric == "cosine" else "METRIC_L2"
        return f"IndexHNSWFlat(d, {M}, {metric}), efConstruction={EF_CONSTRUCTION}"

    def build(self, ds, threads):
        f = self.f
        f.omp_set_num_threads(threads)
        self.cosine = ds.metric == "cosine"
        metric = f.METRIC_INNER_PRODUCT if self.cosine else f.METRIC_L2
        self.index = f.IndexHNSWFlat(ds.dim, M, metric)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(_normalise(ds.base) if self.cosine else ds.base)

    def reported_memory(self):
        try:
            return int(self.f.serialize_index(self.index).nbytes), "serialize_index() size"
        except Exception:  # noqa: BLE001
            return None, "-"

    def search(self, q, k, ef, threads):
        self.f.omp_set_num_threads(threads)
        self.index.hnsw.efSearch = ef
        _, ids = self.index.search(_normalise(q) if self.cosine else q, k)
        return ids

    def close(self):
        self.index = None


class UsearchLib:
    name = "usearch"

    def __init__(self):
        import usearch.index
        self.u = usearch.index
        self.index = None

    def version(self):
        v = _pkg_version("usearch")
        if self.index is not None:
            try:
                v += f" ({self.index.hardware_acceleration})"
            except Exception:  # noqa: BLE001
                pass
        return v

    def params(self, ds):
        metric = "cos" if ds.metric == "cosine" else "l2sq"
        return (f"Index(metric='{metric}', connectivity={M}, expansion_add={EF_CONSTRUCTION}, "
                f"dtype='f32')")

    def build(self, ds, threads):
        metric = "cos" if ds.metric == "cosine" else "l2sq"
        # dtype f32 explicitly: usearch's default storage type is bf16, which would not be a
        # like-for-like comparison with the float32 indexes of the other libraries.
        self.index = self.u.Index(ndim=ds.dim, metric=metric, connectivity=M,
                                  expansion_add=EF_CONSTRUCTION, dtype="f32")
        self.index.add(np.arange(ds.n, dtype=np.uint64), ds.base, threads=threads)

    def reported_memory(self):
        return int(self.index.memory_usage), "memory_usage"

    def search(self, q, k, ef, threads):
        self.index.expansion_search = ef
        m = self.index.search(q, k, threads=threads)
        keys = m.keys.astype(np.int64).reshape(q.shape[0], -1)
        counts = np.asarray(m.counts).reshape(-1)
        keys[np.arange(keys.shape[1])[None, :] >= counts[:, None]] = -1  # unfilled slots
        return keys

    def close(self):
        self.index = None


LIB_CLASSES = {"vecdex": VecdexLib, "hnswlib": HnswlibLib, "faiss": FaissLib, "usearch": UsearchLib}


def load_libs(names, classes=None):
    """Instances of the named libraries (or methods), and {name: why} for those that fail to load."""
    classes = LIB_CLASSES if classes is None else classes
    libs, failed = [], {}
    for nm in names:
        try:
            libs.append(classes[nm]())
        except Exception as e:  # noqa: BLE001
            failed[nm] = f"{type(e).__name__}: {e}"
            log(f"  {nm}: not available ({failed[nm]})")
    return libs, failed


# --------------------------------------------------------------------------------------------
# quantised variants: build(ds, threads), search(queries, k, ef, rerank, threads) -> int64 ids,
# code_bytes(n) -> (bytes per vector of the codes the graph search reads, how it was counted)
# --------------------------------------------------------------------------------------------

class VecdexQuant:
    library = "vecdex"
    rerank_name = "rerank"

    def __init__(self, quantization, quick):
        import vecdex
        self.vd = vecdex
        self.quantization = quantization
        self.label = "vecdex none (fp32)" if quantization == "none" else f"vecdex {quantization}"
        if quantization == "none":
            self.reranks = (1,)  # exact distances already: nothing to re-rank
        else:
            self.reranks = QUANT_RERANK_QUICK if quick else QUANT_RERANK
            if quantization == "rabitq1":
                self.reranks += (20,)
        self.index = None

    def params(self, ds):
        return (f"Index(metric='{ds.metric}', M={M}, ef_construction={EF_CONSTRUCTION}, seed=0, "
                f"quantization='{self.quantization}')")

    def build(self, ds, threads):
        self.index = self.vd.Index(dim=ds.dim, metric=ds.metric, M=M, ef_construction=EF_CONSTRUCTION,
                                   seed=0, quantization=self.quantization)
        self.index.add(ds.base, num_threads=threads)

    def code_bytes(self, n):
        mem = self.index.memory_usage()
        if "codes" in mem:
            return mem["codes"] / n, "memory_usage()['codes'] / n"
        return mem["vectors"] / n, "memory_usage()['vectors'] / n"

    def reported_memory(self):
        return int(self.index.memory_usage()["total"]), "memory_usage()['total']"

    def search(self, q, k, ef, rerank, threads):
        ids, _ = self.index.search(q, k=k, ef=ef, num_threads=threads, rerank=rerank)
        return ids

    def close(self):
        self.index = None


class FaissSQRefine:
    library = "faiss"
    rerank_name = "k_factor"
    label = "faiss HNSWSQ 8-bit + RefineFlat"

    def __init__(self, quick):
        import faiss
        self.f = faiss
        self.reranks = FAISS_K_FACTOR_QUICK if quick else FAISS_K_FACTOR
        self.index = None
        self.cosine = False

    def params(self, ds):
        metric = "METRIC_INNER_PRODUCT on normalised vectors" if ds.metric == "cosine" else "METRIC_L2"
        return (f"IndexRefineFlat(IndexHNSWSQ(d, QT_8bit, {M}, {metric})), "
                f"efConstruction={EF_CONSTRUCTION}, trained on the base")

    def build(self, ds, threads):
        f = self.f
        f.omp_set_num_threads(threads)
        self.cosine = ds.metric == "cosine"
        metric = f.METRIC_INNER_PRODUCT if self.cosine else f.METRIC_L2
        self.base_index = f.IndexHNSWSQ(ds.dim, f.ScalarQuantizer.QT_8bit, M, metric)
        self.base_index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index = f.IndexRefineFlat(self.base_index)  # keeps the float vectors for k_factor
        x = _normalise(ds.base) if self.cosine else ds.base
        self.index.train(x)
        self.index.add(x)

    def code_bytes(self, n):
        return float(self.base_index.storage.sa_code_size()), "SQ code_size"

    def reported_memory(self):
        try:
            return int(self.f.serialize_index(self.index).nbytes), "serialize_index() size"
        except Exception:  # noqa: BLE001
            return None, "-"

    def search(self, q, k, ef, rerank, threads):
        f = self.f
        f.omp_set_num_threads(threads)
        params = f.IndexRefineSearchParameters(
            k_factor=rerank, base_index_params=f.SearchParametersHNSW(efSearch=ef))
        _, ids = self.index.search(_normalise(q) if self.cosine else q, k, params=params)
        return ids

    def close(self):
        self.index = self.base_index = None


class UsearchQuant(UsearchLib):
    library = "usearch"
    rerank_name = None
    reranks = (None,)

    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype
        self.label = f"usearch {dtype}"

    def params(self, ds):
        metric = "cos" if ds.metric == "cosine" else "l2sq"
        return (f"Index(metric='{metric}', connectivity={M}, expansion_add={EF_CONSTRUCTION}, "
                f"dtype='{self.dtype}')")

    def build(self, ds, threads):
        metric = "cos" if ds.metric == "cosine" else "l2sq"
        self.index = self.u.Index(ndim=ds.dim, metric=metric, connectivity=M,
                                  expansion_add=EF_CONSTRUCTION, dtype=self.dtype)
        self.index.add(np.arange(ds.n, dtype=np.uint64), ds.base, threads=threads)

    def code_bytes(self, n):
        return float(self.index.ndim * USEARCH_DTYPE_BYTES[self.dtype]), "ndim x scalar size"

    def search(self, q, k, ef, rerank, threads):
        return super().search(q, k, ef, threads)


def quant_variants(lib_names, types, quick):
    """The quantised variants to compare: vecdex `types` (those this vecdex build knows), then the
    peers among `lib_names`. Returns (variants, notes about what was left out)."""
    variants, notes = [], []
    if "vecdex" not in lib_names:
        return [], ["vecdex not available: quantisation section skipped"]
    from vecdex import _index
    known = getattr(_index, "QUANTIZATIONS", None)
    if not known:
        return [], ["this vecdex build has no quantization support: quantisation section skipped"]
    if types is None:
        types = list(QUANT_TYPES) + [t for t in QUANT_TYPES_OPTIONAL if t in known]
    for t in types:
        if t in known:
            variants.append(VecdexQuant(t, quick))
        else:
            notes.append(f"vecdex quantization {t!r} not in this build ({', '.join(known)})")
    peers = []
    if "faiss" in lib_names:
        peers.append(lambda: FaissSQRefine(quick))
    if "usearch" in lib_names:
        peers += [lambda dt=dt: UsearchQuant(dt) for dt in USEARCH_QUANT_DTYPES]
    for make in peers:
        try:
            variants.append(make())
        except Exception as e:  # noqa: BLE001
            notes.append(f"peer not available: {type(e).__name__}: {e}")
    return variants, notes


# --------------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------------

def bench_build(lib, ds, threads):
    gc.collect()
    r0 = rss_bytes()
    t = time.perf_counter()
    lib.build(ds, threads)
    dt = time.perf_counter() - t
    gc.collect()
    r1 = rss_bytes()
    try:
        mem, kind = lib.reported_memory()
    except Exception:  # noqa: BLE001
        mem, kind = None, "-"
    return {"build_s": dt, "build_threads": threads, "mem_reported": mem, "mem_reported_kind": kind,
            "rss_delta": r1 - r0, "params": lib.params(ds), "error": None}


def bench_sweep(libs, ds, ef_list, thread_settings, reps):
    """Interleaved sweep: for every (threads, ef) the libraries run alternately, `reps` times,
    in a rotated order; best time kept. Recall from the first repetition."""
    res = {lib.name: {str(t): [] for t in thread_settings} for lib in libs}
    broken = {}  # (lib, threads) -> error
    q = ds.queries
    for th in thread_settings:
        for lib in libs:  # warm-up (untimed)
            try:
                lib.search(q[: min(100, ds.nq)], K, 64, th)
            except Exception as e:  # noqa: BLE001
                broken[(lib.name, th)] = f"{type(e).__name__}: {e}"
        for ef in ef_list:
            times = {lib.name: [] for lib in libs}
            recalls = {}
            failed = set()
            for r in range(reps):
                order = libs[r % len(libs):] + libs[:r % len(libs)]
                for lib in order:
                    if (lib.name, th) in broken or lib.name in failed:
                        continue
                    time.sleep(0.02)  # let other libraries' worker threads go idle
                    try:
                        t = time.perf_counter()
                        ids = lib.search(q, K, ef, th)
                        dt = time.perf_counter() - t
                    except Exception as e:  # noqa: BLE001
                        broken[(lib.name, f"{th} ef={ef}")] = f"{type(e).__name__}: {e}"
                        failed.add(lib.name)
                        continue
                    times[lib.name].append(dt)
                    if lib.name not in recalls:
                        recalls[lib.name] = recall_at_k(ds, ids)
            line = [f"  threads={th} ef={ef:<4d}"]
            for lib in libs:
                if times[lib.name]:
                    best = min(times[lib.name])
                    res[lib.name][str(th)].append({"ef": ef, "recall": recalls[lib.name],
                                                   "qps": ds.nq / best, "times": times[lib.name]})
                    line.append(f"{lib.name} {recalls[lib.name]:.4f}/{ds.nq / best:,.0f}")
                else:
                    line.append(f"{lib.name} ERR")
            log("  ".join(line))
    errors = {f"{k[0]}@{k[1]}": v for k, v in broken.items()}
    for k, v in errors.items():
        log(f"  ERROR {k}: {v}")
    return res, errors


def at_thresholds(points):
    """points: list of {ef, recall, qps} in ef order -> {thr: {ef, recall, qps} | None}"""
    out = {}
    for thr in THRESHOLDS:
        hit = next((p for p in points if p["recall"] >= thr), None)
        out[f"{thr:.2f}"] = None if hit is None else {k: hit[k] for k in ("ef", "recall", "qps")}
    return out


def memory_bandwidth(nbytes, reps=5):
    """Single-thread numpy reference bandwidths in bytes/s: copy (bytes read + written / time)
    and a read-only reduction (bitwise OR over int32)."""
    n = nbytes // 4
    a = np.ones(n, dtype=np.float32)
    b = np.zeros_like(a)
    copy_t = []
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(b, a)
        copy_t.append(time.perf_counter() - t)
    ai = a.view(np.int32)
    read_t = []
    for _ in range(reps):
        t = time.perf_counter()
        np.bitwise_or.reduce(ai)
        read_t.append(time.perf_counter() - t)
    res = {"array_bytes": int(a.nbytes), "copy_Bps": 2 * a.nbytes / min(copy_t),
           "read_Bps": a.nbytes / min(read_t)}
    del a, b, ai
    gc.collect()
    return res


def bench_flat(ds, nsingle, libs_available):
    """FlatIndex single-query scan (1 thread): bytes of base scanned per second. Also a batch
    search (all queries, 1 thread) and faiss IndexFlat single-query as a peer reference."""
    out = {}
    scan_bytes = ds.n * ds.dim * 4
    qs = ds.queries[:nsingle]

    def single(search):
        search(qs[0])  # warm-up
        ts = []
        for i in range(qs.shape[0]):
            t = time.perf_counter()
            search(qs[i])
            ts.append(time.perf_counter() - t)
        ts = np.array(ts)
        return {"median_s": float(np.median(ts)), "best_s": float(ts.min()),
                "Bps_median": scan_bytes / float(np.median(ts)), "Bps_best": scan_bytes / float(ts.min())}

    if "vecdex" in libs_available:
        try:
            import vecdex
            fi = vecdex.FlatIndex(dim=ds.dim, metric=ds.metric)
            fi.add(ds.base)
            out["vecdex.FlatIndex"] = single(lambda v: fi.search(v, k=K, num_threads=1))
            t = time.perf_counter()
            ids, _ = fi.search(ds.queries, k=K, num_threads=1)
            dt = time.perf_counter() - t
            out["vecdex.FlatIndex"]["batch_qps_1t"] = ds.nq / dt
            out["vecdex.FlatIndex"]["batch_recall"] = recall_at_k(ds, ids)
            del fi
        except Exception as e:  # noqa: BLE001
            out["vecdex.FlatIndex"] = {"error": f"{type(e).__name__}: {e}"}
    if "faiss" in libs_available:
        try:
            import faiss
            faiss.omp_set_num_threads(1)
            cos = ds.metric == "cosine"
            fx = faiss.IndexFlatIP(ds.dim) if cos else faiss.IndexFlatL2(ds.dim)
            fx.add(_normalise(ds.base) if cos else ds.base)
            out["faiss.IndexFlat"] = single(
                lambda v: fx.search(_normalise(v[None, :]) if cos else v[None, :], K))
            del fx
        except Exception as e:  # noqa: BLE001
            out["faiss.IndexFlat"] = {"error": f"{type(e).__name__}: {e}"}
    gc.collect()
    return {"scan_bytes": scan_bytes, "n_single_queries": int(qs.shape[0]), "methods": out}


def bench_quant(variants, ds, ef_list, reps, build_threads, threads=1):
    """Quantisation section: build every variant at `build_threads`, then sweep ef x rerank at
    `threads` search threads. For each ef the variants take turns (order rotated each repetition),
    each running all its rerank values; best time kept, recall from the first repetition."""
    out = {"threads": threads, "ef": list(ef_list), "reps": reps, "variants": {}, "errors": {}}
    ok = []
    for v in variants:
        rec = {"library": v.library, "rerank_name": v.rerank_name, "points": []}
        try:
            rec.update(bench_build(v, ds, build_threads))
            rec["bytes_per_vector"], rec["bytes_per_vector_kind"] = v.code_bytes(ds.n)
            ok.append(v)
            log(f"  quant build {v.label}: {rec['build_s']:.2f}s, {rec['bytes_per_vector']:,.1f} B/vector, "
                f"reported {_mb(rec['mem_reported'])} MiB")
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"{type(e).__name__}: {e}"
            log(f"  quant build {v.label}: ERROR {rec['error']}")
        out["variants"][v.label] = rec
    q = ds.queries
    broken = out["errors"]  # label -> error
    for v in ok:  # warm-up (untimed)
        try:
            v.search(q[: min(100, ds.nq)], K, 64, v.reranks[0], threads)
        except Exception as e:  # noqa: BLE001
            broken[v.label] = f"{type(e).__name__}: {e}"
    for ef in ef_list if ok else []:
        times = {(v.label, r): [] for v in ok for r in v.reranks}
        recalls = {}
        for rep in range(reps):
            shift = rep % len(ok)
            for v in ok[shift:] + ok[:shift]:
                for r in v.reranks:
                    if v.label in broken:
                        break
                    time.sleep(0.02)  # let other libraries' worker threads go idle
                    try:
                        t = time.perf_counter()
                        ids = v.search(q, K, ef, r, threads)
                        dt = time.perf_counter() - t
                    except Exception as e:  # noqa: BLE001
                        broken[v.label] = f"ef={ef} {v.rerank_name}={r}: {type(e).__name__}: {e}"
                        break
                    times[(v.label, r)].append(dt)
                    if (v.label, r) not in recalls:
                        recalls[(v.label, r)] = recall_at_k(ds, ids)
        for v in ok:
            cells = []
            for r in v.reranks:
                ts = times[(v.label, r)]
                if not ts:
                    continue
                best = min(ts)
                out["variants"][v.label]["points"].append(
                    {"ef": ef, "rerank": r, "recall": recalls[(v.label, r)], "qps": ds.nq / best, "times": ts})
                cells.append(("" if r is None else f"r={r} ") + f"{recalls[(v.label, r)]:.4f}/{ds.nq / best:,.0f}")
            log(f"  quant ef={ef:<4d} {v.label}: " + ("  ".join(cells) or "ERR"))
    for k, v in broken.items():
        log(f"  ERROR quant {k}: {v}")
    for v in variants:
        v.close()
    gc.collect()
    return out


def best_at_recall(points, target):
    """The point with the highest QPS among those reaching `target` recall (None if none does)."""
    hits = [p for p in points if p["recall"] >= target]
    return max(hits, key=lambda p: p["qps"]) if hits else None


# --------------------------------------------------------------------------------------------
# machine / versions
# --------------------------------------------------------------------------------------------

def _run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine_info():
    info = {"platform": platform.platform(), "python": sys.version.split()[0],
            "numpy": np.__version__, "cpus_usable": n_cpus(), "cpu_count": os.cpu_count()}
    model = ""
    for line in _run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
        if line.startswith("Hypervisor vendor:"):
            info["hypervisor"] = line.split(":", 1)[1].strip()
        if line.startswith("L3 cache:"):
            info["l3"] = line.split(":", 1)[1].strip()
    info["cpu_model"] = model
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    info["simd_flags"] = sorted(fl for fl in flags if fl in
                                {"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                                 "avx512dq", "avx512_bf16", "avx512_fp16", "avx512_vnni",
                                 "avx512vbmi", "asimd", "sve"})
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_kb"] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    commit = _run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    # the results files are this run's output, so a change to them alone is not a dirty tree
    if commit and _run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--",
                        ".", ":(exclude,glob)bench/RESULTS*.md"]):
        commit += " (dirty)"
    info["git_commit"] = commit or "(none)"
    try:
        import vecdex
        info["vecdex_simd_level"] = vecdex.simd_level()
        info["vecdex_available_simd"] = list(vecdex.available_simd_levels())
    except Exception:  # noqa: BLE001
        pass
    return info


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

def _mb(x):
    return "-" if x is None else f"{x / 2**20:,.1f}"


def _qps(x):
    return f"{x:,.0f}"


def _config(p, rerank_name):
    return f"ef={p['ef']}" + ("" if rerank_name is None else f", {rerank_name}={p['rerank']}")


def _quant_md(dname, qr, meta):
    """Markdown lines of the quantisation section of one data set (see bench_quant())."""
    th = qr["threads"]
    tgt = QUANT_TARGET
    L = [f"### Quantisation ({dname}, {th} thread{'s' if th != 1 else ''})", ""]
    L.append(f"Each index built with M={M}, ef_construction={EF_CONSTRUCTION} at {meta['build_threads']} "
             f"threads; searched at {th} thread{'s' if th != 1 else ''}, batch of all queries, best of "
             f"{qr['reps']} interleaved repetitions, for ef in {', '.join(map(str, qr['ef']))} x each re-rank "
             f"setting (vecdex `rerank`: rerank x k candidates from the codes re-scored with the float "
             f"vectors; faiss `k_factor` of IndexRefineFlat, the same idea; usearch has none; both walk the "
             f"graph with a beam of at least rerank x k). The QPS column "
             f"is the best QPS over all (ef, re-rank) configurations reaching recall@10 >= {tgt:.2f}; the "
             f"ratio divides it by the same figure for vecdex without quantisation.")
    L.append("")
    L.append("Bytes per vector: the codes the graph search reads (vecdex `memory_usage()['codes'] / n`, "
             "or `['vectors'] / n` without quantisation; faiss SQ code size; usearch ndim x scalar size). "
             "Index memory is each library's own figure: vecdex `memory_usage()['total']` and the faiss "
             "serialised IndexRefineFlat both include the float32 vectors kept for re-ranking; usearch keeps "
             "only its quantised vectors (its `memory_usage` includes preallocated capacity).")
    L.append("")
    variants = qr["variants"]
    ref = variants.get("vecdex none (fp32)", {})
    ref_best = best_at_recall(ref.get("points", []), tgt)
    L.append(f"| library / quantization | bytes per vector | index memory MiB | build s | "
             f"QPS at recall >= {tgt:.2f} (ef, rerank) | ratio vs vecdex fp32 QPS at {tgt:.2f} |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for label, v in variants.items():
        if v.get("error"):
            L.append(f"| {label} | error: {v['error']} | | | | |")
            continue
        pts = v["points"]
        best = best_at_recall(pts, tgt)
        if best is not None:
            cell = f"{_qps(best['qps'])} ({_config(best, v['rerank_name'])})"
            ratio = "-" if ref_best is None else f"{best['qps'] / ref_best['qps']:.2f}"
        elif pts:
            top = max(pts, key=lambda p: p["recall"])
            cell = f"not reached (max {top['recall']:.4f} at {_config(top, v['rerank_name'])})"
            ratio = "-"
        else:
            cell, ratio = "error", "-"
        L.append(f"| {label} | {v['bytes_per_vector']:,.1f} | {_mb(v['mem_reported'])} | {v['build_s']:.2f} | "
                 f"{cell} | {ratio} |")
    L.append("")
    L.append("Best QPS at each recall@10 target (same sweep), and parameters:")
    L.append("")
    L.append("| library / quantization | " + " | ".join(f"recall >= {t:.2f}" for t in THRESHOLDS)
             + " | max recall (config) | parameters |")
    L.append("|---|" + "---:|" * len(THRESHOLDS) + "---|---|")
    for label, v in variants.items():
        if v.get("error") or not v["points"]:
            continue
        cells = []
        for t in THRESHOLDS:
            b = best_at_recall(v["points"], t)
            cells.append("not reached" if b is None else f"{_qps(b['qps'])} ({_config(b, v['rerank_name'])})")
        top = max(v["points"], key=lambda p: p["recall"])
        L.append(f"| {label} | " + " | ".join(cells)
                 + f" | {top['recall']:.4f} ({_config(top, v['rerank_name'])}) | `{v['params']}` |")
    L.append("")
    for k, v in qr.get("errors", {}).items():
        L.append(f"- quantisation search error {k}: {v}")
    for n in qr.get("notes", []):
        L.append(f"- {n}")
    if qr.get("errors") or qr.get("notes"):
        L.append("")
    return L


def report_header(meta, title):
    """The first lines of a results file: title, date, command, machine, versions (shared by the
    benchmarks in bench/)."""
    mi = meta["machine"]
    L = ["# " + title + (" (--quick smoke run)" if meta.get("quick") else ""), ""]
    L.append(f"- Date: {meta['date']}")
    L.append(f"- Command: `{meta['command']}`")
    L.append(f"- Machine: {mi.get('cpu_model', '?')}, {mi.get('cpus_usable')} usable cores"
             + (f", L3 {mi['l3']}" if mi.get("l3") else "")
             + (f", {mi['mem_total_kb'] / 2**20:.1f} GiB RAM" if mi.get("mem_total_kb") else "")
             + (f", hypervisor {mi['hypervisor']}" if mi.get("hypervisor") else ""))
    L.append(f"- CPU SIMD flags: {' '.join(mi.get('simd_flags', [])) or '-'}")
    L.append(f"- OS: {mi.get('platform')}; Python {mi.get('python')}; numpy {mi.get('numpy')}")
    if "vecdex_simd_level" in mi:
        L.append(f"- vecdex SIMD level in use: {mi['vecdex_simd_level']} "
                 f"(available: {', '.join(mi.get('vecdex_available_simd', []))}); "
                 f"git commit {mi.get('git_commit')}")
    L.append("- Libraries: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    for k, v in meta.get("unavailable", {}).items():
        L.append(f"- **{k} not benchmarked**: {v}")
    return L


def write_results_md(results, path=None):
    """Render `results` (the dict run() returns / the JSON written by --json) as Markdown.
    Writes it to `path` when given; returns the text. Re-run with:
        python bench/bench_ann.py --from-json bench/out/results.json --out bench/RESULTS.md"""
    meta = results["meta"]
    mi = meta["machine"]
    L = report_header(meta, "vecdex ANN benchmark")
    L.append(f"- Load average at start / end: {meta.get('loadavg_start')} / {meta.get('loadavg_end')}")
    L.append(f"- Search: k={K}, batch search of all queries in one call, best of {meta['reps']} "
             f"interleaved repetitions per ef; threads {', '.join(map(str, meta['threads']))}. "
             f"Build: M={M}, ef_construction={EF_CONSTRUCTION}, at {meta['build_threads']} threads.")
    L.append("- Recall@10 as in ann-benchmarks: a returned id is a hit when its exact distance is "
             "within 1e-5 of the exact 10th distance (1e-5 x max(1, d10) for squared L2), so tied "
             "duplicates count.")
    L.append("")
    bw = meta.get("bandwidth")
    for dname, dres in results["datasets"].items():
        info = dres["info"]
        libs = list(dres["builds"].keys())
        L.append(f"## {dname}: {info['n']:,} x {info['dim']}, {info['nq']:,} queries, {info['metric']}")
        L.append("")
        L.append(info["description"])
        L.append("")
        if not libs:  # a quantisation-only data set
            if dres.get("quant", {}).get("skipped"):
                L.extend(["### Quantisation", ""] + [f"- {n}" for n in dres["quant"]["skipped"]] + [""])
            elif dres.get("quant"):
                L.extend(_quant_md(dname, dres["quant"], meta))
            continue
        L.append(f"### Build (M={M}, ef_construction={EF_CONSTRUCTION}, {meta['build_threads']} threads)")
        L.append("")
        L.append("| library | build s | vectors/s | memory MiB (library figure) | RSS delta MiB | parameters |")
        L.append("|---|---:|---:|---|---:|---|")
        for lib in libs:
            b = dres["builds"][lib]
            if b.get("error"):
                L.append(f"| {lib} | error: {b['error']} | | | | |")
                continue
            memtxt = "-" if b["mem_reported"] is None else f"{_mb(b['mem_reported'])} ({b['mem_reported_kind']})"
            L.append(f"| {lib} | {b['build_s']:.2f} | {info['n'] / b['build_s']:,.0f} | {memtxt} | "
                     f"{_mb(b['rss_delta'])} | `{b['params']}` |")
        L.append("")
        L.append(f"Raw vectors alone: {_mb(info['n'] * info['dim'] * 4)} MiB. RSS delta is approximate "
                 "(allocator reuse, temporaries).")
        L.append("")
        # threshold table
        L.append("### QPS at the smallest ef reaching a recall@10 target")
        L.append("")
        L.append("| library | threads | " + " | ".join(f"recall >= {t:.2f}" for t in THRESHOLDS)
                 + " | max recall (ef) |")
        L.append("|---|---:|" + "---:|" * len(THRESHOLDS) + "---:|")
        for th in meta["threads"]:
            for lib in libs:
                pts = dres["sweep"].get(lib, {}).get(str(th), [])
                if not pts:
                    L.append(f"| {lib} | {th} | " + " | ".join("error" for _ in THRESHOLDS) + " | - |")
                    continue
                at = at_thresholds(pts)
                cells = []
                for t in THRESHOLDS:
                    h = at[f"{t:.2f}"]
                    cells.append("not reached" if h is None else f"{_qps(h['qps'])} (ef={h['ef']})")
                best = max(pts, key=lambda p: p["recall"])
                L.append(f"| {lib} | {th} | " + " | ".join(cells)
                         + f" | {best['recall']:.4f} ({best['ef']}) |")
        L.append("")
        # sweep tables
        for th in meta["threads"]:
            L.append(f"### Sweep, threads={th}: recall@10 / QPS")
            L.append("")
            L.append("| ef | " + " | ".join(libs) + " |")
            L.append("|---:|" + "---|" * len(libs))
            efs = sorted({p["ef"] for lib in libs for p in dres["sweep"].get(lib, {}).get(str(th), [])})
            for ef in efs:
                row = [str(ef)]
                for lib in libs:
                    p = next((p for p in dres["sweep"].get(lib, {}).get(str(th), []) if p["ef"] == ef), None)
                    row.append("-" if p is None else f"{p['recall']:.4f} / {_qps(p['qps'])}")
                L.append("| " + " | ".join(row) + " |")
            L.append("")
        for k, v in dres.get("errors", {}).items():
            L.append(f"- search error {k}: {v}")
        # flat
        fl = dres.get("flat")
        if fl and fl.get("methods"):
            L.append("### Flat scan, single query, 1 thread")
            L.append("")
            L.append(f"Base scanned per query: {fl['scan_bytes'] / 1e6:,.1f} MB; "
                     f"{fl['n_single_queries']} single-query calls, median (best). "
                     + ("" if not bw else
                        f"Reference (numpy, 1 thread, {bw['array_bytes'] / 2**30:.2f} GiB arrays): "
                        f"copy {bw['copy_Bps'] / 1e9:.1f} GB/s (read+written), "
                        f"read-only reduction {bw['read_Bps'] / 1e9:.1f} GB/s."))
            L.append("")
            L.append("Bandwidth ratios above 1 mean the base (partly) fits in cache (L3: "
                     f"{mi.get('l3', '?')}); the faiss row is a peer reference for the same scan.")
            L.append("")
            L.append("| method | ms / query | GB/s scanned | vs copy bw | vs read bw | batch QPS (1 thread) | batch recall@10 |")
            L.append("|---|---:|---:|---:|---:|---:|---:|")
            for m, r in fl["methods"].items():
                if "error" in r:
                    L.append(f"| {m} | error: {r['error']} | | | | | |")
                    continue
                gbs = r["Bps_median"] / 1e9
                L.append(f"| {m} | {r['median_s'] * 1e3:.3f} ({r['best_s'] * 1e3:.3f}) | "
                         f"{gbs:.1f} ({r['Bps_best'] / 1e9:.1f}) | "
                         + (f"{r['Bps_median'] / bw['copy_Bps']:.2f} | {r['Bps_median'] / bw['read_Bps']:.2f} | "
                            if bw else "- | - | ")
                         + (f"{_qps(r['batch_qps_1t'])} | {r['batch_recall']:.4f} |"
                            if "batch_qps_1t" in r else "- | - |"))
            L.append("")
        if dres.get("quant", {}).get("skipped"):
            L.extend(["### Quantisation", ""] + [f"- {n}" for n in dres["quant"]["skipped"]] + [""])
        elif dres.get("quant"):
            L.extend(_quant_md(dname, dres["quant"], meta))
    text = "\n".join(L) + "\n"
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # the other benchmarks' sections (their targets tables) survive a rewrite
        from results_sections import blocks

        kept = blocks(Path(path).read_text()) if Path(path).exists() else []
        Path(path).write_text(text + "".join("\n" + b for b in kept))
    return text


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------

def parse_threads(spec):
    out = []
    for tok in spec.split(","):
        tok = tok.strip()
        if not tok:
            continue
        v = n_cpus() if tok == "all" else int(tok)
        if v not in out:
            out.append(v)
    return out


def run(args):
    quick = args.quick
    thread_settings = parse_threads(args.threads)
    build_threads = n_cpus()
    ef_list = [int(x) for x in args.ef.split(",")] if args.ef else (EF_QUICK if quick else EF_SWEEP)
    reps = args.reps
    log(f"vecdex ANN benchmark{' (quick)' if quick else ''}: threads {thread_settings}, "
        f"build threads {build_threads}, ef {ef_list}, best of {reps}")
    libs, unavailable = load_libs([x.strip() for x in args.libs.split(",") if x.strip()])
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
            "quick": quick, "threads": thread_settings, "build_threads": build_threads,
            "ef": ef_list, "reps": reps, "machine": machine_info(),
            "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "unavailable": unavailable}
    results = {"meta": meta, "datasets": {}}
    for dname in [x.strip() for x in args.datasets.split(",") if x.strip()]:
        log(f"== dataset {dname}")
        t = time.perf_counter()
        if dname == "debian":
            ds = load_debian(quick)
        elif dname in QUANT_ONLY_DATASETS:
            n = 10000 if quick else args.synthetic_n
            nq = 200 if quick else 1000
            ds = make_synthetic(n, nq, QUANT_ONLY_DATASETS[dname], metric=args.synthetic_metric)
        elif dname.startswith("synthetic"):
            n = 10000 if quick else args.synthetic_n
            nq = 200 if quick else args.synthetic_nq
            ds = make_synthetic(n, nq, args.synthetic_dim, metric=args.synthetic_metric)
        else:
            raise SystemExit(f"unknown dataset {dname!r} (debian, synthetic, synthetic768)")
        log(f"  {ds.n} x {ds.dim}, {ds.nq} queries, {ds.metric} (loaded in {time.perf_counter() - t:.1f}s)")
        dres = {"info": ds.info(), "builds": {}, "sweep": {}, "errors": {}}
        ok = []
        quant_only = dname in QUANT_ONLY_DATASETS
        for lib in [] if quant_only else libs:
            try:
                b = bench_build(lib, ds, build_threads)
                ok.append(lib)
                log(f"  build {lib.name}: {b['build_s']:.2f}s, reported {_mb(b['mem_reported'])} MiB, "
                    f"RSS delta {_mb(b['rss_delta'])} MiB")
            except Exception as e:  # noqa: BLE001
                b = {"error": f"{type(e).__name__}: {e}"}
                log(f"  build {lib.name}: ERROR {b['error']}")
            dres["builds"][lib.name] = b
        sweep, errors = bench_sweep(ok, ds, ef_list, thread_settings, reps) if ok else ({}, {})
        dres["sweep"], dres["errors"] = sweep, errors
        for lib in libs:
            lib.close()
        gc.collect()
        if not args.no_flat and not quant_only:
            log("  flat scan ...")
            dres["flat"] = bench_flat(ds, 20 if quick else args.flat_queries, {lib.name for lib in ok})
            for m, r in dres["flat"]["methods"].items():
                if "error" in r:
                    log(f"  {m}: ERROR {r['error']}")
                else:
                    log(f"  {m}: {r['median_s'] * 1e3:.3f} ms/query, {r['Bps_median'] / 1e9:.1f} GB/s")
        if args.quant or (args.quant is None and ds.name in QUANT_DATASETS):
            log("  quantisation ...")
            types = [x.strip() for x in args.quant_types.split(",") if x.strip()] if args.quant_types else None
            variants, notes = quant_variants({lib.name for lib in libs}, types, quick)
            if variants:
                quant_ef = ([int(x) for x in args.quant_ef.split(",")] if args.quant_ef
                            else (QUANT_EF_QUICK if quick else QUANT_EF))
                dres["quant"] = bench_quant(variants, ds, quant_ef, reps, build_threads)
                dres["quant"]["notes"] = notes
            else:
                dres["quant"] = {"skipped": notes}
            for n in notes:
                log(f"  {n}")
        results["datasets"][ds.name] = dres
        del ds
        gc.collect()
    meta["versions"] = {lib.name: lib.version() for lib in libs}
    if not args.no_flat:
        log("== memory bandwidth reference")
        meta["bandwidth"] = memory_bandwidth((2**28 if quick else 2**30))
        log(f"  copy {meta['bandwidth']['copy_Bps'] / 1e9:.1f} GB/s, read {meta['bandwidth']['read_Bps'] / 1e9:.1f} GB/s")
    meta["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 10k base rows, 200 queries, 5 ef values")
    ap.add_argument("--datasets", default="debian,synthetic,synthetic768",
                    help="comma list: debian,synthetic,synthetic768 (the last: quantisation only)")
    ap.add_argument("--libs", default=",".join(ALL_LIBS), help="comma list of " + ",".join(ALL_LIBS))
    ap.add_argument("--threads", default="1,all", help="search thread settings, e.g. '1,all' or '1,2'")
    ap.add_argument("--ef", default=None, help="comma list of ef values (default: full sweep)")
    ap.add_argument("--reps", type=int, default=3, help="timing repetitions per ef (best kept)")
    ap.add_argument("--synthetic-n", type=int, default=100000)
    ap.add_argument("--synthetic-nq", type=int, default=2000)
    ap.add_argument("--synthetic-dim", type=int, default=128, help="128 (default) or e.g. 768")
    ap.add_argument("--synthetic-metric", default="l2", choices=["l2", "cosine"])
    ap.add_argument("--flat-queries", type=int, default=100, help="single-query calls for the flat scan")
    ap.add_argument("--no-flat", action="store_true", help="skip the flat-scan / bandwidth part")
    ap.add_argument("--quant", action=argparse.BooleanOptionalAction, default=None,
                    help="quantisation section (vecdex quantizations against faiss HNSWSQ and usearch "
                         "i8/f16 at 1 thread): by default on the debian data set only; --quant runs it "
                         "on every data set, --no-quant skips it")
    ap.add_argument("--quant-types", default=None,
                    help="comma list of vecdex quantizations (default: " + ",".join(QUANT_TYPES)
                         + ", plus " + ",".join(QUANT_TYPES_OPTIONAL) + " where the build has them)")
    ap.add_argument("--quant-ef", default=None,
                    help="comma list of ef values for the quantisation sweep (default "
                         + ",".join(map(str, QUANT_EF)) + ")")
    ap.add_argument("--out", default=None,
                    help="Markdown output (default bench/RESULTS.md; bench/out/RESULTS_quick.md with --quick)")
    ap.add_argument("--json", default=None,
                    help="raw results (default bench/out/results.json; results_quick.json with --quick)")
    ap.add_argument("--from-json", default=None, help="only re-render Markdown from this JSON file")
    args = ap.parse_args(argv)
    out = args.out or str(REPO / "bench" / ("out/RESULTS_quick.md" if args.quick else "RESULTS.md"))
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        print(write_results_md(results, out))
        return 0
    results = run(args)
    js = args.json or str(REPO / "bench" / "out" / ("results_quick.json" if args.quick else "results.json"))
    Path(js).parent.mkdir(parents=True, exist_ok=True)
    Path(js).write_text(json.dumps(results, indent=1))
    text = write_results_md(results, out)
    print()
    print(text)
    log(f"wrote {out} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
