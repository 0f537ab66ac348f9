#!/usr/bin/env python3
"""Filtered-search benchmark (issue 4): vecdex against hnswlib, faiss and an exact numpy pre-filter.

    python bench/bench_filter.py [--quick] [--datasets debian,synthetic] [--threads 1]

Target (issue 4): on ../shared/data/debian with its real attributes and on synthetic labels of
selectivity 0.1 %, 1 %, 10 %, 50 % and 100 % (uncorrelated, positively and negatively correlated
with the query): recall@10 >= 0.95 in every bucket, and QPS >= 2x the best peer in that bucket at
that recall, filter evaluation counted.

Every method runs in this process, on the same data, at the same number of search threads
(--threads, 1 by default), and gets the same input: each query's filter as a Mongo-style dict (one
dict for every query of a "shared" bucket, one per query in a "per-query" bucket). The timing of
every method includes turning those dicts into what the method needs:

* vecdex `Index` (HNSW, M=16, ef_construction=200, schema + attributes): `search(Q, k, ef=ef,
  filter=dict or list of dicts)`; the dicts are compiled and evaluated inside vecdex.
* vecdex `FlatIndex` (exact, same attributes): the same call without ef. Informational; the
  target compares `Index`.
* hnswlib (M=16, ef_construction=200): `knn_query(filter=callable)` where the callable is
  `bytes.__getitem__` of the query's match mask (the fastest Python callable we found); shared
  filter -> one batch call, per-query filters -> one call per query (hnswlib takes one filter per
  call: that is its real cost).
* faiss `IndexHNSWFlat` (M=16, efConstruction=200; inner product on normalised vectors for
  cosine): `search(q, k, params=SearchParametersHNSW(sel=IDSelectorBitmap(...), efSearch=ef))`,
  the bitmap packed from the match mask per filter; per-query filters -> one call per query.
* numpy exact pre-filter: match rows -> matrix-vector (or, for a shared filter, matrix-matrix)
  product on the matching rows -> argpartition. When half or more of the rows match a per-query
  filter, the full product is masked instead of gathering the rows (cheaper).

The peers evaluate the dicts with a small numpy evaluator over columnar attributes with an
inverted index (a sorted row list per keyword value, a sorted order per int field, built once and
not timed, like vecdex's postings): equality and $in read the row lists, ranges binary-search the
sorted order, $and/$or/$not combine row lists and masks. Its time is in every peer's QPS.

Sweep: for every bucket, ef in 10 ... 512 for the graph methods; for every ef the methods take
turns (order rotated), best of --reps (fewer for slow points). A method stops its sweep once
recall@10 >= 0.995 or two ef values after the first that reached 0.95, and a
(method, bucket) pair that would take longer than its time slice runs on a prefix of the queries
(marked in the report) or stops. QPS = queries run / best time. Per bucket the report gives each
method's best QPS at recall >= 0.95, vecdex's ratio to the best peer there, and vecdex's plan mix
(from explain=True, run once untimed at vecdex's chosen ef).

Recall@10 is counted against the exact filtered ground truth (brute force over the matching rows,
float64 re-rank, computed here and cached under bench/out/filter_gt/) as ann-benchmarks does: a
returned id is a hit when its exact distance is within 1e-5 of the exact 10th filtered distance
(1e-5 x max(1, d10) for squared L2); when fewer than 10 rows match, recall is over
min(10, matches). A returned id that does not match the query's filter is a correctness
failure: counted per method and reported (such points never count as reaching a recall).

Outputs: --out (Markdown; bench/RESULTS_filter.md, or bench/out/RESULTS_filter_quick.md with
--quick) and --json (bench/out/filter_results.json / filter_results_quick.json).
``--from-json FILE`` re-renders the Markdown only.
"""
from __future__ import annotations

import os
import sys


from early_threads import early_threads  # noqa: E402  (standard library only)

# numpy's BLAS (the exact pre-filter's matrix products) must run at the same thread count as the
# other methods; it reads these once, at load time.
for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_v] = early_threads(sys.argv, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ann import (K, M, EF_CONSTRUCTION, REPO, DEBIAN_DIR, exact_distances, log,  # noqa: E402
                       Dataset, load_libs, machine_info, make_synthetic, n_cpus, report_header, _normalise,
                       _pkg_version, _qps)

EF_SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
EF_QUICK = [10, 32, 64, 128, 256]
TARGET_RECALL = 0.95
TARGET_RATIO = 2.0
STOP_RECALL = 0.995  # a graph method's sweep ends once it reaches this,
STOP_AFTER_TARGET = 2  # or this many ef values after the first that reached TARGET_RECALL
SELECTIVITIES = [(0.001, "0.1%"), (0.01, "1%"), (0.1, "10%"), (0.5, "50%"), (1.0, "100%")]
ALL_METHODS = ("vecdex", "vecdex-flat", "hnswlib", "faiss", "numpy")
PEERS = ("hnswlib", "faiss", "numpy")
GT_DIR = REPO / "bench" / "out" / "filter_gt"
# time slices (seconds): one ef point of one method, and one method in one bucket; both shrink
# when the run falls behind its --time-budget
POINT_S = {"full": 3.0, "quick": 0.5}
METHOD_S = {"full": 10.0, "quick": 2.0}
SETUP_RESERVE_S = {"full": 90.0, "quick": 10.0}  # load + build + ground truth of a data set


# --------------------------------------------------------------------------------------------
# attributes: columns, inverted index and the peers' numpy filter evaluator
# --------------------------------------------------------------------------------------------

_EMPTY = np.zeros(0, dtype=np.int64)


class Columns:
    """Columnar attributes of n rows with an inverted index, and a numpy evaluator of Mongo-style
    filter dicts (the subset the benchmark uses: equality, $eq $ne $in $nin $gt $gte $lt $lte,
    $and $or $not). Keyword(s) values -> sorted row lists; int fields -> values + sorted order.
    Missing values: not supported here (the benchmark's columns have none)."""

    def __init__(self, n):
        self.n = n
        self.types = {}
        self.postings = {}  # keyword/keywords field -> {value: sorted int64 rows}
        self.codes = {}  # keyword field -> (int32 code per row, values list)
        self.ints = {}  # int field -> (values int64, sorted values, order)

    def add_keyword(self, name, values):
        vals, codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
        codes = codes.astype(np.int32)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(vals) + 1))
        self.types[name] = "keyword"
        self.codes[name] = (codes, list(vals))
        self.postings[name] = {v: np.sort(order[bounds[i]:bounds[i + 1]]).astype(np.int64)
                               for i, v in enumerate(vals)}

    def add_keywords(self, name, lists):
        post = collections.defaultdict(list)
        for row, lst in enumerate(lists):
            for v in set(lst or ()):
                post[v].append(row)
        self.types[name] = "keywords"
        self.postings[name] = {v: np.asarray(r, dtype=np.int64) for v, r in post.items()}

    def add_int(self, name, values):
        v = np.asarray(values, dtype=np.int64)
        order = np.argsort(v, kind="stable").astype(np.int64)
        self.types[name] = "int"
        self.ints[name] = (v, v[order], order)

    def count(self, spec):
        kind, x = self.evaluate(spec)
        return int(x.size) if kind == "rows" else int(np.count_nonzero(x))

    # -- evaluation: returns ("rows", sorted unique int64) or ("mask", bool (n,)) --
    def evaluate(self, spec):
        parts = []
        for key, val in spec.items():
            if key == "$and":
                parts.append(self._and([self.evaluate(s) for s in val]))
            elif key == "$or":
                parts.append(self._or([self.evaluate(s) for s in val]))
            elif key == "$not":
                parts.append(self._not(self.evaluate(val)))
            else:
                parts.append(self._field(key, val))
        return parts[0] if len(parts) == 1 else self._and(parts)

    def mask(self, spec):
        return self.to_mask(self.evaluate(spec))

    def to_mask(self, r):
        kind, x = r
        if kind == "mask":
            return x
        m = np.zeros(self.n, dtype=bool)
        m[x] = True
        return m

    def _field(self, name, val):
        if not isinstance(val, dict):
            return self._eq(name, val)
        parts, lo, hi = [], None, None
        for op, arg in val.items():
            if op == "$eq":
                parts.append(self._eq(name, arg))
            elif op == "$ne":
                parts.append(self._not(self._eq(name, arg)))
            elif op == "$in":
                parts.append(self._in(name, arg))
            elif op == "$nin":
                parts.append(self._not(self._in(name, arg)))
            elif op in ("$gt", "$gte"):
                b = arg + 1 if op == "$gt" else arg
                lo = b if lo is None else max(lo, b)
            elif op in ("$lt", "$lte"):
                b = arg - 1 if op == "$lt" else arg
                hi = b if hi is None else min(hi, b)
            else:
                raise ValueError(f"numpy evaluator: unsupported operator {op}")
        if lo is not None or hi is not None:
            parts.append(self._range(name, lo, hi))
        return parts[0] if len(parts) == 1 else self._and(parts)

    def _eq(self, name, v):
        if self.types[name] == "int":
            return self._range(name, v, v)
        return "rows", self.postings[name].get(v, _EMPTY)

    def _in(self, name, vals):
        if self.types[name] == "int":
            return self._or([self._range(name, v, v) for v in vals])
        lists = [self.postings[name].get(v, _EMPTY) for v in vals]
        return "rows", (np.unique(np.concatenate(lists)) if len(lists) > 1 else lists[0])

    def _range(self, name, lo, hi):
        v, sv, order = self.ints[name]
        a = 0 if lo is None else int(np.searchsorted(sv, lo, "left"))
        b = sv.size if hi is None else int(np.searchsorted(sv, hi, "right"))
        if b - a < self.n // 16:
            return "rows", np.sort(order[a:max(a, b)])
        m = np.ones(self.n, dtype=bool)
        if lo is not None:
            m &= v >= lo
        if hi is not None:
            m &= v <= hi
        return "mask", m

    def _and(self, parts):
        rows = [x for k, x in parts if k == "rows"]
        masks = [x for k, x in parts if k == "mask"]
        if rows:
            rows.sort(key=len)
            r = rows[0]
            for o in rows[1:]:
                r = np.intersect1d(r, o, assume_unique=True)
            for m in masks:
                r = r[m[r]]
            return "rows", r
        m = masks[0].copy()
        for o in masks[1:]:
            m &= o
        return "mask", m

    def _or(self, parts):
        if all(k == "rows" for k, _ in parts):
            return "rows", np.unique(np.concatenate([x for _, x in parts]))
        m = np.zeros(self.n, dtype=bool)
        for k, x in parts:
            if k == "rows":
                m[x] = True
            else:
                m |= x
        return "mask", m

    def _not(self, r):
        return "mask", ~self.to_mask(r)


# --------------------------------------------------------------------------------------------
# data sets with attributes and buckets
# --------------------------------------------------------------------------------------------

class Bucket:
    """One filtered workload: either one filter dict for every query (`shared`) or one per query
    (`filters`). `group` is the heading it is reported under."""

    def __init__(self, name, group, description, shared=None, filters=None, correlation="",
                 nominal=None):
        self.name = name
        self.group = group
        self.description = description
        self.shared = shared
        self.filters = filters
        self.correlation = correlation
        self.nominal = nominal  # nominal selectivity label ("1%") for synthetic buckets
        self.kth = None  # (nq,) exact min(K, matches)-th filtered distance (inf: no match)
        self.matches = None  # (nq,) rows matching each query's filter
        self.fidx = None  # (nq,) index into self.masks
        self.masks = None  # distinct filters' match masks

    @property
    def per_query(self):
        return self.filters is not None

    def filter_for(self, nq):
        """What vecdex receives for the first nq queries."""
        return self.shared if not self.per_query else self.filters[:nq]

    def template(self):
        if not self.per_query:
            return json.dumps(self.shared)
        return json.dumps(self.filters[0]) + " (query 0; one dict per query)"


class FData(Dataset):
    """bench_ann's Dataset plus attributes, the peers' columnar index and the buckets."""

    def __init__(self, name, base, queries, metric, description):
        super().__init__(name, base, queries, metric, description)
        self.schema = {}
        self.attributes = {}  # vecdex add(attributes=...) columns
        self.cols = None  # Columns for the peers
        self.buckets = []
        self.notes = []
        # search-side preparation shared by the exact methods (part of "the index", untimed)
        if metric == "cosine":
            self.prep = _normalise(self.base)
            self.sqnorm = None
        else:
            self.prep = self.base
            self.sqnorm = np.einsum("nd,nd->n", self.base, self.base)

    def info(self):
        return {**super().info(), "schema": self.schema, "notes": self.notes}


def _read_parquet(path, columns):
    import pyarrow.parquet as pq
    return pq.read_table(path, columns=columns).to_pydict()


DEBIAN_FIELDS = {"section": "keyword", "tags": "keywords", "installed_size_kb": "int",
                 "maintainer": "keyword"}
PY_TEAM = "Debian Python Team <team+python@tracker.debian.org>"


def load_debian_rows(quick, fields):
    """FData of debian without attributes (--quick: 10,000 random rows and the first 200 queries),
    the rows of items.parquet it holds, the parquet's `fields` columns (all rows) and the queries'
    positives."""
    base = np.load(DEBIAN_DIR / "base.npy")
    queries = np.load(DEBIAN_DIR / "queries.npy")
    items = _read_parquet(DEBIAN_DIR / "items.parquet", list(fields))
    positive = np.asarray(_read_parquet(DEBIAN_DIR / "queries.parquet", ["positive"])["positive"],
                          dtype=np.int64)
    rows = np.arange(base.shape[0])
    if quick:
        # a random (not a leading) subset: items.parquet is sorted by package name, and the first
        # rows would skew the sections
        rows = np.sort(np.random.default_rng(0).choice(base.shape[0], 10000, replace=False))
        queries, positive = queries[:200], positive[:200]
        desc = ("debian subset (--quick): 10,000 random rows (seed 0) of base.npy, first 200 queries; "
                "cosine")
    else:
        desc = ("Debian 12 package descriptions, all-MiniLM-L6-v2 unit vectors, 63,666 packages, "
                "2,000 queries (package summaries); cosine")
    return FData("debian", base[rows], queries, "cosine", desc), rows, items, positive


def load_debian(quick):
    fd, rows, items, positive = load_debian_rows(quick, DEBIAN_FIELDS)
    sec = [items["section"][i] for i in rows]
    tags = [list(items["tags"][i] or []) for i in rows]
    size = np.asarray([items["installed_size_kb"][i] for i in rows], dtype=np.int64)
    mnt = [items["maintainer"][i] for i in rows]
    fd.schema = dict(DEBIAN_FIELDS)
    fd.attributes = {"section": sec, "tags": tags, "installed_size_kb": size, "maintainer": mnt}
    cols = Columns(fd.n)
    cols.add_keyword("section", sec)
    cols.add_keywords("tags", tags)
    cols.add_int("installed_size_kb", size)
    cols.add_keyword("maintainer", mnt)
    fd.cols = cols
    # per-query attributes come from the query's positive package (queries.parquet `positive`,
    # a row of items.parquet; in --quick it need not be in the subset, its values still apply)
    psec = [items["section"][int(p)] for p in positive]
    pmnt = [items["maintainer"][int(p)] for p in positive]
    B = fd.buckets
    g = "single field"
    B.append(Bucket("section=hamradio", g, "rare section (shared by all queries, mostly unrelated to them)",
                    shared={"section": "hamradio"}))
    B.append(Bucket("section=games", g, "mid-frequency section", shared={"section": "games"}))
    B.append(Bucket("section=libs", g, "the most common section", shared={"section": "libs"}))
    B.append(Bucket("tag=interface::commandline", g, "debtags contains (multi-valued field)",
                    shared={"tags": "interface::commandline"}))
    B.append(Bucket("maintainer=python-team", g, "one maintainer", shared={"maintainer": PY_TEAM}))
    g = "combined"
    B.append(Bucket("utils AND size 100-1000 kB", g, "conjunction of a keyword and an int range",
                    shared={"section": "utils", "installed_size_kb": {"$gte": 100, "$lte": 1000}}))
    B.append(Bucket("games OR tag use::gameplaying", g, "disjunction across two fields",
                    shared={"$or": [{"section": "games"}, {"tags": "use::gameplaying"}]}))
    B.append(Bucket("section NOT IN libs,libdevel,doc", g, "negation, most rows match",
                    shared={"section": {"$nin": ["libs", "libdevel", "doc"]}}))
    g = "per query (from the query's positive package)"
    B.append(Bucket("section = positive's", g, "each query filtered to the section of its positive "
                    "package: positively correlated, selectivity varies per query",
                    filters=[{"section": s} for s in psec], correlation="positive"))
    B.append(Bucket("maintainer = positive's", g, "each query filtered to the maintainer of its "
                    "positive package: positively correlated, often fewer than 10 matches",
                    filters=[{"maintainer": s} for s in pmnt], correlation="positive"))
    B.append(Bucket("section != positive's", g, "each query filtered to every other section: "
                    "negatively correlated, most rows match",
                    filters=[{"section": {"$ne": s}} for s in psec], correlation="negative"))
    return fd


def balanced_cells(x, groups, seed=0):
    """Partition the rows of x into `groups` spatially coherent cells of exactly len(x)/groups rows
    (len(x) must be a multiple of groups): recursive splits along each cell's top principal
    direction, at the quantile that keeps the sizes proportional to the number of cells below.
    Returns int32 labels 0..groups-1."""
    n = x.shape[0]
    assert n % groups == 0, (n, groups)
    rng = np.random.default_rng(seed)
    labels = np.empty(n, dtype=np.int32)
    stack = [(np.arange(n), groups, 0)]
    while stack:
        rows, g, first = stack.pop()
        if g == 1:
            labels[rows] = first
            continue
        g1 = g // 2
        n1 = rows.size * g1 // g
        sample = rows if rows.size <= 2048 else rng.choice(rows, 2048, replace=False)
        xs = x[sample].astype(np.float64)
        xs -= xs.mean(axis=0)
        _, vecs = np.linalg.eigh(xs.T @ xs)
        proj = x[rows] @ vecs[:, -1].astype(np.float32)
        part = np.argpartition(proj, n1)
        stack.append((rows[part[:n1]], g1, first))
        stack.append((rows[part[n1:]], g - g1, first + g1))
    return labels


def _tag(frac):
    return {0.001: "0_1pct", 0.01: "1pct", 0.1: "10pct", 0.5: "50pct", 1.0: "all"}[frac]


def load_synthetic(n, nq, dim, metric):
    log(f"  generating synthetic {n:,} x {dim}, {nq} queries ...")
    ds = make_synthetic(n, nq, dim, metric=metric)
    fd = FData("synthetic", ds.base, ds.queries, metric, ds.description.replace(
        "; exact ground truth computed here", ""))
    nn1 = ds.gt[:, 0]  # each query's exact unfiltered nearest row: its region
    del ds
    rng = np.random.default_rng(1)
    cols = Columns(fd.n)
    t = time.perf_counter()
    for frac, label in SELECTIVITIES:
        m = int(round(frac * fd.n))
        groups = fd.n // m
        if groups * m != fd.n:
            raise SystemExit(f"--synthetic-n {fd.n} is not a multiple of {m} (selectivity {label})")
        names = [f"g{i}" for i in range(groups)]
        tg = _tag(frac)
        # uncorrelated: a random partition into groups of exactly m rows; every query filters on
        # group g0 (one shared filter)
        rnd = (rng.permutation(fd.n) // m).astype(np.int32)
        f = f"rand_{tg}"
        fd.schema[f] = "keyword"
        fd.attributes[f] = [names[v] for v in rnd]
        cols.add_keyword(f, fd.attributes[f])
        if frac == 1.0:
            fd.buckets.append(Bucket(
                f"100% (all rows)", "synthetic 100%",
                "every row carries the label: the filter matches all rows (correlation is moot)",
                shared={f: "g0"}, correlation="n/a", nominal=label))
            continue
        fd.buckets.append(Bucket(
            f"{label} uncorrelated", f"synthetic {label}",
            f"field {f}: random partition into {groups} labels of exactly {m:,} rows; every query "
            f"filters on label g0", shared={f: "g0"}, correlation="none", nominal=label))
        # correlated: balanced spatial cells of exactly m rows
        cell = balanced_cells(fd.base, groups, seed=int(frac * 1e6))
        f = f"cell_{tg}"
        fd.schema[f] = "keyword"
        fd.attributes[f] = [names[v] for v in cell]
        cols.add_keyword(f, fd.attributes[f])
        own = cell[nn1]
        cent = np.zeros((groups, fd.dim), dtype=np.float64)
        np.add.at(cent, cell, fd.base.astype(np.float64))
        cent /= m
        # far cell: the one whose centroid is farthest from the query
        d2 = (np.einsum("qd,qd->q", fd.queries, fd.queries)[:, None] - 2 * fd.queries @ cent.T.astype(np.float32)
              + np.einsum("gd,gd->g", cent, cent)[None, :].astype(np.float32))
        far = np.argmax(d2, axis=1)
        fd.buckets.append(Bucket(
            f"{label} positive", f"synthetic {label}",
            f"field {f}: {groups} balanced spatial cells of exactly {m:,} rows; each query filters on "
            f"the cell of its exact nearest neighbour", filters=[{f: names[v]} for v in own],
            correlation="positive", nominal=label))
        fd.buckets.append(Bucket(
            f"{label} negative", f"synthetic {label}",
            f"field {f}; each query filters on the cell whose centroid is farthest from it",
            filters=[{f: names[v]} for v in far], correlation="negative", nominal=label))
    fd.cols = cols
    fd.notes.append(
        "Selectivity is exact by construction: at selectivity s every label covers exactly s*n rows. "
        "Uncorrelated: a random permutation of the rows cut into 1/s groups (field rand_*), all "
        "queries filter on one group. Correlated: the rows are split into 1/s cells of exactly s*n "
        "rows by recursive principal-direction splits (a balanced PCA tree, field cell_*); positive = "
        "the cell holding the query's exact nearest neighbour, negative = the cell whose centroid is "
        "farthest from the query. At 100% every row has the one label, so correlation is moot and "
        "there is one bucket.")
    log(f"  synthetic labels and cells: {time.perf_counter() - t:.1f}s")
    return fd


# --------------------------------------------------------------------------------------------
# exact filtered ground truth
# --------------------------------------------------------------------------------------------

def prepare_bucket(fd, b, pool=50, block=128):
    """Match masks per distinct filter, match counts, and the exact filtered k-th distance per
    query (float32 pool of `pool` by matmul over the matching rows, re-ranked in float64). Cached
    under bench/out/filter_gt/ by a hash of the data and the filters."""
    specs = [b.shared] if not b.per_query else b.filters
    keys, fidx, distinct = {}, np.empty(fd.nq, dtype=np.int64), []
    for i in range(fd.nq):
        s = specs[0] if not b.per_query else specs[i]
        k = json.dumps(s, sort_keys=True)
        if k not in keys:
            keys[k] = len(distinct)
            distinct.append(s)
        fidx[i] = keys[k]
    b.fidx = fidx
    b.masks = [fd.cols.mask(s) for s in distinct]
    b.matches = np.asarray([int(np.count_nonzero(b.masks[f])) for f in fidx], dtype=np.int64)
    h = hashlib.sha1()
    h.update(f"{fd.name} {fd.metric} {fd.base.shape} {fd.nq} {pool}".encode())
    h.update(np.ascontiguousarray(fd.base[:: max(1, fd.n // 512)]).tobytes())
    h.update(fd.queries.tobytes())
    for m in b.masks:
        h.update(np.packbits(m).tobytes())
    h.update(fidx.tobytes())
    cache = GT_DIR / f"{fd.name}_{h.hexdigest()[:16]}.npy"
    if cache.exists():
        b.kth = np.load(cache)
        return True
    kth = np.full(fd.nq, np.inf)
    for f, mask in enumerate(b.masks):
        qs = np.flatnonzero(fidx == f)
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            continue
        kk = min(K, rows.size)
        p = min(pool, rows.size)
        sub = fd.prep[rows]
        sq = None if fd.sqnorm is None else fd.sqnorm[rows]
        for s in range(0, qs.size, block):
            qb = qs[s:s + block]
            q = fd.queries[qb]
            sc = -(_normalise(q) @ sub.T) if sq is None else sq[None, :] - 2.0 * (q @ sub.T)
            cand = np.argpartition(sc, p - 1, axis=1)[:, :p] if p < rows.size else \
                np.broadcast_to(np.arange(rows.size), sc.shape)
            d = exact_distances(fd.metric, fd.base, fd.queries[qb], rows[cand])
            kth[qb] = np.sort(d, axis=1)[:, kk - 1]
    GT_DIR.mkdir(parents=True, exist_ok=True)
    np.save(cache, kth)
    b.kth = kth
    return False


def evaluate_ids(fd, b, ids):
    """(recall@10, non-matching ids returned) of results for the first len(ids) queries."""
    ids = np.asarray(ids, dtype=np.int64)[:, :K]
    nq = ids.shape[0]
    srt = np.sort(ids, axis=1)
    dup = np.zeros_like(srt, dtype=bool)
    dup[:, 1:] = srt[:, 1:] == srt[:, :-1]
    srt[dup] = -1
    valid = (srt >= 0) & (srt < fd.n)
    safe = np.where(valid, srt, 0)
    match = np.zeros_like(valid)
    for f in np.unique(b.fidx[:nq]):
        qs = np.flatnonzero(b.fidx[:nq] == f)
        match[qs] = b.masks[f][safe[qs]]
    match &= valid
    violations = int(np.count_nonzero(valid & ~match))
    d = exact_distances(fd.metric, fd.base, fd.queries[:nq], np.where(match, srt, -1))
    kth = b.kth[:nq]
    thr = kth + (1e-5 if fd.metric == "cosine" else 1e-5 * np.maximum(1.0, kth))
    hits = np.sum(d <= thr[:, None], axis=1)
    denom = np.minimum(K, b.matches[:nq])
    ok = denom > 0
    rec = float(np.mean(np.minimum(hits[ok], denom[ok]) / denom[ok])) if ok.any() else 1.0
    return rec, violations


# --------------------------------------------------------------------------------------------
# methods: build(fd, threads); search(fd, bucket, nq, ef, threads) -> int64 ids (nq, K) for the
# first nq queries. Everything a method needs from the filter dicts happens inside search().
# --------------------------------------------------------------------------------------------

def _pad(ids, kk):
    if ids.shape[1] == K:
        return ids
    out = np.full((ids.shape[0], K), -1, dtype=np.int64)
    out[:, :kk] = ids[:, :kk]
    return out


class VecdexMethod:
    name = "vecdex"
    uses_ef = True

    def __init__(self):
        import vecdex
        self.vd = vecdex
        sig = inspect.signature(vecdex.Index.search).parameters
        if "filter" not in sig:
            raise RuntimeError("this vecdex build's Index.search has no filter= parameter")
        self.index = None

    def version(self):
        v = getattr(self.vd, "__version__", "?")
        try:
            v += f" (simd {self.vd.simd_level()}; {Path(self.vd.__file__).parent})"
        except Exception:  # noqa: BLE001
            pass
        return v

    def params(self, fd):
        return (f"Index(metric='{fd.metric}', M={M}, ef_construction={EF_CONSTRUCTION}, seed=0, "
                f"schema={{{len(fd.schema)} fields}}), add(attributes=...)")

    def build(self, fd, threads):
        self.index = self.vd.Index(fd.dim, metric=fd.metric, M=M, ef_construction=EF_CONSTRUCTION,
                                   seed=0, schema=fd.schema)
        self.index.add(fd.base, ids=np.arange(fd.n), attributes=fd.attributes, num_threads=threads)

    def search(self, fd, b, nq, ef, threads):
        ids, _ = self.index.search(fd.queries[:nq], k=K, ef=ef, filter=b.filter_for(nq), num_threads=threads)
        return ids

    def explain(self, fd, b, nq, ef, threads):
        _, _, plans = self.index.search(fd.queries[:nq], k=K, ef=ef, filter=b.filter_for(nq),
                                        num_threads=threads, explain=True)
        return plans

    def close(self):
        self.index = None


class VecdexFlatMethod(VecdexMethod):
    name = "vecdex-flat"
    uses_ef = False

    def __init__(self):
        super().__init__()
        if "filter" not in inspect.signature(self.vd.FlatIndex.search).parameters:
            raise RuntimeError("this vecdex build's FlatIndex.search has no filter= parameter")

    def params(self, fd):
        return f"FlatIndex(metric='{fd.metric}', schema={{{len(fd.schema)} fields}}), add(attributes=...)"

    def build(self, fd, threads):
        self.index = self.vd.FlatIndex(fd.dim, metric=fd.metric, schema=fd.schema)
        self.index.add(fd.base, ids=np.arange(fd.n), attributes=fd.attributes, num_threads=threads)

    def search(self, fd, b, nq, ef, threads):
        ids, _ = self.index.search(fd.queries[:nq], k=K, filter=b.filter_for(nq), num_threads=threads)
        return ids

    def explain(self, fd, b, nq, ef, threads):
        _, _, plans = self.index.search(fd.queries[:nq], k=K, filter=b.filter_for(nq),
                                        num_threads=threads, explain=True)
        return plans


class HnswlibMethod:
    name = "hnswlib"
    uses_ef = True

    def __init__(self):
        import hnswlib
        self.h = hnswlib
        self.index = None

    def version(self):
        return _pkg_version("hnswlib")

    def params(self, fd):
        space = "cosine" if fd.metric == "cosine" else "l2"
        return (f"Index(space='{space}'), init_index(M={M}, ef_construction={EF_CONSTRUCTION}, "
                f"random_seed=0); knn_query(filter=bytes(mask).__getitem__)")

    def build(self, fd, threads):
        space = "cosine" if fd.metric == "cosine" else "l2"
        self.index = self.h.Index(space=space, dim=fd.dim)
        self.index.init_index(max_elements=fd.n, ef_construction=EF_CONSTRUCTION, M=M, random_seed=0)
        self.index.set_num_threads(threads)
        self.index.add_items(fd.base, np.arange(fd.n), num_threads=threads)

    def _one(self, q, spec, cols, threads):
        mask = cols.mask(spec)
        cnt = int(np.count_nonzero(mask))
        kk = min(K, cnt)
        if kk == 0:
            return np.full((q.shape[0], K), -1, dtype=np.int64)
        f = mask.tobytes().__getitem__
        try:
            labels, _ = self.index.knn_query(q, k=kk, num_threads=threads, filter=f)
            return _pad(labels.astype(np.int64), kk)
        except RuntimeError:
            # hnswlib raises when a query finds fewer than k allowed items: redo query by query
            if q.shape[0] == 1:
                return np.full((1, K), -1, dtype=np.int64)
            return np.vstack([self._one(q[i:i + 1], spec, cols, threads) for i in range(q.shape[0])])

    def search(self, fd, b, nq, ef, threads):
        self.index.set_ef(ef)
        q = fd.queries[:nq]
        if not b.per_query:
            return self._one(q, b.shared, fd.cols, threads)
        return np.vstack([self._one(q[i:i + 1], b.filters[i], fd.cols, threads) for i in range(nq)])

    def close(self):
        self.index = None


class FaissMethod:
    name = "faiss"
    uses_ef = True

    def __init__(self):
        import faiss
        self.f = faiss
        self.index = None

    def version(self):
        v = getattr(self.f, "__version__", None) or _pkg_version("faiss-cpu", "faiss")
        try:
            v += f" ({' '.join(self.f.get_compile_options().split())})"
        except Exception:  # noqa: BLE001
            pass
        return v

    def params(self, fd):
        metric = "METRIC_INNER_PRODUCT on normalised vectors" if fd.metric == "cosine" else "METRIC_L2"
        return (f"IndexHNSWFlat(d, {M}, {metric}), efConstruction={EF_CONSTRUCTION}; "
                f"SearchParametersHNSW(sel=IDSelectorBitmap, efSearch=ef)")

    def build(self, fd, threads, rows=None):
        """The graph over fd's rows, or over fd.prep[rows] in that order (faiss id i = rows[i])."""
        f = self.f
        f.omp_set_num_threads(threads)
        metric = f.METRIC_INNER_PRODUCT if fd.metric == "cosine" else f.METRIC_L2
        self.index = f.IndexHNSWFlat(fd.dim, M, metric)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(fd.prep if rows is None else fd.prep[rows])

    def _one(self, q, spec, cols, ef):
        f = self.f
        bits = np.packbits(cols.mask(spec), bitorder="little")
        sel = f.IDSelectorBitmap(bits)  # the wrapper passes len(bits) (bytes) and keeps bits alive
        params = f.SearchParametersHNSW(sel=sel, efSearch=ef)
        _, ids = self.index.search(q, K, params=params)
        return ids

    def search(self, fd, b, nq, ef, threads):
        self.f.omp_set_num_threads(threads)
        q = fd.queries[:nq]
        if fd.metric == "cosine":
            q = _normalise(q)
        if not b.per_query:
            return self._one(q, b.shared, fd.cols, ef)
        return np.vstack([self._one(q[i:i + 1], b.filters[i], fd.cols, ef) for i in range(nq)])

    def close(self):
        self.index = None


class NumpyMethod:
    """Exact pre-filter: match rows from the attribute index -> product with the matching rows ->
    argpartition. Shared filter: the rows are gathered once and multiplied with blocks of queries."""
    name = "numpy"
    uses_ef = False

    def version(self):
        return np.__version__

    def params(self, fd):
        return "match rows -> (gathered rows) @ q -> argpartition"

    def build(self, fd, threads):
        pass

    def _topk(self, sc):
        """sc (nb, m) scores, smaller first -> (nb, min(K, m)) column indices, best first."""
        kk = min(K, sc.shape[1])
        part = np.argpartition(sc, kk - 1, axis=1)[:, :kk] if kk < sc.shape[1] else \
            np.broadcast_to(np.arange(sc.shape[1]), sc.shape)
        order = np.argsort(np.take_along_axis(sc, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1), kk

    def search(self, fd, b, nq, ef, threads):
        q = fd.queries[:nq]
        if fd.metric == "cosine":
            q = _normalise(q)
        out = np.full((nq, K), -1, dtype=np.int64)
        cols = fd.cols
        if not b.per_query:
            kind, x = cols.evaluate(b.shared)
            rows = x if kind == "rows" else np.flatnonzero(x)
            if rows.size == 0:
                return out
            whole = rows.size == fd.n
            sub = fd.prep if whole else fd.prep[rows]
            sq = None if fd.sqnorm is None else (fd.sqnorm if whole else fd.sqnorm[rows])
            for s in range(0, nq, 256):
                dots = q[s:s + 256] @ sub.T
                sc = -dots if sq is None else sq[None, :] - 2.0 * dots
                top, kk = self._topk(sc)
                out[s:s + 256, :kk] = top if whole else rows[top]
            return out
        for i in range(nq):
            kind, x = cols.evaluate(b.filters[i])
            cnt = x.size if kind == "rows" else int(np.count_nonzero(x))
            if cnt == 0:
                continue
            if 2 * cnt < fd.n:  # gather the matching rows
                rows = x if kind == "rows" else np.flatnonzero(x)
                dots = fd.prep[rows] @ q[i]
                sc = -dots if fd.sqnorm is None else fd.sqnorm[rows] - 2.0 * dots
                top, kk = self._topk(sc[None, :])
                out[i, :kk] = rows[top[0]]
            else:  # most rows match: the full product, masked
                mask = cols.to_mask((kind, x))
                dots = fd.prep @ q[i]
                sc = -dots if fd.sqnorm is None else fd.sqnorm - 2.0 * dots
                sc[~mask] = np.inf
                top, kk = self._topk(sc[None, :])
                out[i, :min(kk, cnt)] = top[0, :min(kk, cnt)]
        return out

    def close(self):
        pass


METHOD_CLASSES = {"vecdex": VecdexMethod, "vecdex-flat": VecdexFlatMethod, "hnswlib": HnswlibMethod,
                  "faiss": FaissMethod, "numpy": NumpyMethod}


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------

class Clock:
    """The run's time budget: each (method, bucket) gets at most its share of what is left."""

    def __init__(self, budget_s, mode):
        self.t0 = time.perf_counter()
        self.budget = budget_s
        self.mode = mode

    def slices(self, buckets_left, datasets_left, n_methods):
        left = self.budget - (time.perf_counter() - self.t0) - datasets_left * SETUP_RESERVE_S[self.mode]
        share = max(left, 0.0) / max(1, buckets_left) / max(1.0, n_methods - 0.5)
        method_s = max(min(METHOD_S[self.mode], share), METHOD_S[self.mode] / 8)
        point_s = max(min(POINT_S[self.mode], method_s / 3), POINT_S[self.mode] / 8)
        return point_s, method_s


def bench_bucket(methods, fd, b, ef_list, reps, threads, point_s, method_s):
    """Sweep one bucket. Returns {method: {"points": [...], "stopped": reason}}."""
    res = {m.name: {"points": [], "stopped": None} for m in methods}
    spent = {m.name: 0.0 for m in methods}
    active = list(methods)
    probe_n = min(fd.nq, 20)
    for ef in ef_list:
        if not active:
            break
        runners = [m for m in active if m.uses_ef or not res[m.name]["points"]]
        if not runners:
            break
        # probe (warm-up, untimed for the results) -> how many queries fit into the point's slice
        plan = {}
        for m in runners:
            try:
                t = time.perf_counter()
                m.search(fd, b, probe_n, ef, threads)
                per_q = (time.perf_counter() - t) / probe_n
            except Exception as e:  # noqa: BLE001
                res[m.name]["stopped"] = f"error: {type(e).__name__}: {e}"
                active.remove(m)
                continue
            spent[m.name] += per_q * probe_n
            nq = fd.nq
            if per_q * fd.nq > point_s:
                nq = int(max(probe_n, min(fd.nq, point_s / per_q)))
            plan[m.name] = (m, nq)
        times = {nm: [] for nm in plan}
        first, dead = {}, set()
        order = [plan[nm][0] for nm in plan]
        for r in range(reps):
            rot = order[r % len(order):] + order[:r % len(order)] if order else []
            for m in rot:
                if m.name in dead:
                    continue
                nq = plan[m.name][1]
                if times[m.name] and (sum(times[m.name]) + min(times[m.name]) > point_s or nq < fd.nq):
                    continue  # slow point: no more repetitions than fit into its slice
                time.sleep(0.02)  # let other libraries' worker threads go idle
                try:
                    t = time.perf_counter()
                    ids = m.search(fd, b, nq, ef, threads)
                    dt = time.perf_counter() - t
                except Exception as e:  # noqa: BLE001
                    res[m.name]["stopped"] = f"error at ef={ef}: {type(e).__name__}: {e}"
                    if m in active:
                        active.remove(m)
                    dead.add(m.name)
                    continue
                times[m.name].append(dt)
                spent[m.name] += dt
                if m.name not in first:
                    first[m.name] = ids
        line = [f"    ef={ef:<4d}" if any(m.uses_ef for m in runners) else "    exact  "]
        for nm, (m, nq) in plan.items():
            if not times[nm] or nm in dead:
                continue
            rec, viol = evaluate_ids(fd, b, first[nm])
            pt = {"ef": ef if m.uses_ef else None, "recall": rec, "qps": nq / min(times[nm]),
                  "nq": nq, "violations": viol, "times": times[nm]}
            res[nm]["points"].append(pt)
            line.append(f"{nm} {rec:.4f}/{pt['qps']:,.0f}" + (f"[{nq}q]" if nq < fd.nq else "")
                        + (f" VIOL={viol}" if viol else ""))
            if not m.uses_ef:
                active.remove(m)
            elif rec >= STOP_RECALL:
                res[nm]["stopped"] = f"recall >= {STOP_RECALL} at ef={ef}"
                active.remove(m)
            elif sum(p["recall"] >= TARGET_RECALL for p in res[nm]["points"]) > STOP_AFTER_TARGET:
                res[nm]["stopped"] = f"{STOP_AFTER_TARGET} ef values past recall {TARGET_RECALL} at ef={ef}"
                active.remove(m)
            elif spent[nm] > method_s:
                res[nm]["stopped"] = f"time slice ({method_s:.0f}s) used after ef={ef}"
                active.remove(m)
        log("  ".join(line))
    return res


def best_point(points, target=TARGET_RECALL):
    ok = [p for p in points if p["recall"] >= target and p["violations"] == 0]
    return max(ok, key=lambda p: p["qps"]) if ok else None


def summarize_bucket(rec, method="vecdex", peers=PEERS, target_ratio=TARGET_RATIO):
    """Per-method best point at the target recall, best peer, `method`'s ratio to it (in place)."""
    best = {nm: best_point(r["points"]) for nm, r in rec["methods"].items()}
    rec["best"] = best
    peers = {nm: p for nm, p in best.items() if nm in peers and p is not None}
    bp = max(peers.items(), key=lambda kv: kv[1]["qps"]) if peers else None
    rec["best_peer"] = None if bp is None else {"method": bp[0], "qps": bp[1]["qps"], "ef": bp[1]["ef"]}
    v = best.get(method)
    rec["ratio"] = None if (v is None or bp is None) else v["qps"] / bp[1]["qps"]
    viol = {nm: sum(p["violations"] for p in r["points"]) for nm, r in rec["methods"].items()}
    rec["violations"] = viol
    rec["target_met"] = bool(v is not None and rec["ratio"] is not None and rec["ratio"] >= target_ratio
                             and viol.get(method, 0) == 0)


def run_explain(m, fd, b, rec, threads):
    pts = rec["methods"].get(m.name, {}).get("points", [])
    if not pts:
        return None
    p = rec["best"].get(m.name) or max(pts, key=lambda x: x["recall"])
    try:
        plans = m.explain(fd, b, p["nq"], p["ef"] or 0, threads)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    mix = collections.Counter(str(pl.get("plan")) for pl in plans)
    matches = np.asarray([pl.get("matches", -1) for pl in plans], dtype=np.int64)
    mism = int(np.count_nonzero(matches != b.matches[:len(plans)]))
    fb = int(sum(1 for pl in plans if pl.get("fallback")))
    dist = [pl.get("distances") for pl in plans if isinstance(pl.get("distances"), (int, float))]
    return {"ef": p["ef"], "nq": len(plans), "plans": dict(mix.most_common()), "fallbacks": fb,
            "match_count_mismatches": mism,
            "mean_distances": float(np.mean(dist)) if dist else None}


def bench_build(m, fd, threads):
    gc.collect()
    t = time.perf_counter()
    m.build(fd, threads)
    return {"build_s": time.perf_counter() - t, "params": m.params(fd)}


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

def _sel(rec):
    s = rec["selectivity"]
    if s["min"] == s["max"]:
        return f"{100 * s['mean']:.3g}%"
    return f"{100 * s['mean']:.3g}% ({100 * s['min']:.2g}-{100 * s['max']:.2g})"


def _cell(p, nq_all):
    if p is None:
        return "not reached"
    ef = "" if p["ef"] is None else f" (ef={p['ef']})"
    sub = "" if p["nq"] == nq_all else f" [{p['nq']}q]"
    return f"{_qps(p['qps'])}{ef}{sub}"


def best_cells(r, methods, nq_all):
    """A bucket's best QPS at the target recall per method, violations flagged ("-": not run)."""
    cells = []
    for nm in methods:
        c = _cell(r["best"].get(nm), nq_all)
        v = r["violations"].get(nm, 0)
        if v:
            c += f" **{v} violations**"
        if nm not in r["methods"]:
            c = "-"
        cells.append(c)
    return cells


def plans_cell(ex):
    """A run_explain() summary as "plan count, ...; fallback N"."""
    if ex is None:
        return "-"
    if "error" in ex:
        return "error"
    plans = ", ".join(f"{k} {v}" for k, v in ex["plans"].items())
    if ex.get("fallbacks"):
        plans += f"; fallback {ex['fallbacks']}"
    return plans


def _synthetic_matrix(recs):
    """Selectivity x correlation table of vecdex / best peer (synthetic buckets only)."""
    cells = {(r["nominal"], r["correlation"]): r for r in recs if r.get("nominal")}
    if not cells:
        return []
    corr = ["none", "positive", "negative"]
    L = ["vecdex QPS / best peer QPS at recall >= %.2f (met = target reached):" % TARGET_RECALL, "",
         "| selectivity | uncorrelated | positively correlated | negatively correlated |",
         "|---:|---|---|---|"]
    for _, label in SELECTIVITIES:
        row = []
        for c in corr:
            r = cells.get((label, c)) or (cells.get((label, "n/a")) if c == "none" else None)
            if r is None:
                row.append("-")
            elif r["ratio"] is None:
                row.append("vecdex below target recall" if r["best"].get("vecdex") is None else "no peer")
            else:
                row.append(f"{r['ratio']:.2f}x" + (" met" if r["target_met"] else ""))
        L.append(f"| {label} | " + " | ".join(row) + " |")
    L.append("")
    return L


RECALL_NOTE = (
    "- Recall@10 against the exact filtered ground truth, ann-benchmarks style (hit: exact distance "
    "within 1e-5 of the exact 10th filtered distance, 1e-5 x max(1, d10) for squared L2; fewer than 10 "
    "matches: over min(10, matches)). A returned id outside the filter is a violation; points with "
    "violations never count. `[Nq]`: measured on the first N queries only (the method was too slow "
    "for its time slice).")


def header_md(meta, title):
    """report_header plus the load, search and build settings of a run()."""
    L = report_header(meta, title)
    L.append(f"- Load average at start / end: {meta.get('loadavg_start')} / {meta.get('loadavg_end')}; "
             f"wall time {meta.get('wall_s', 0) / 60:.1f} min")
    L.append(f"- Search: k={K}, {meta['threads']} search thread(s) for every method (numpy BLAS threads "
             f"set to the same), best of {meta['reps']} interleaved repetitions per ef; ef "
             f"{', '.join(map(str, meta['ef']))} (a graph method stops once recall >= {STOP_RECALL}, or "
             f"{STOP_AFTER_TARGET} ef values after the first reaching {TARGET_RECALL}). "
             f"Build: M={M}, ef_construction={EF_CONSTRUCTION}, at {meta['build_threads']} threads, "
             "once per data set for all buckets.")
    return L


def write_md(L, path):
    """The lines as one text, written to path (if any); returns the text."""
    text = "\n".join(L) + "\n"
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return text


def write_results_md(results, path=None):
    meta = results["meta"]
    L = header_md(meta, "vecdex filtered-search benchmark (issue 4)")
    L.append("- Every timing includes turning the query's filter dict into what the method needs "
             "(vecdex: compiled and evaluated natively; peers: a numpy evaluator over an inverted "
             "attribute index -> hnswlib `filter=bytes(mask).__getitem__`, faiss "
             "`IDSelectorBitmap` in `SearchParametersHNSW`, numpy matching rows). Shared filter: one "
             "batch call per method; per-query filters: vecdex takes the list in one call, hnswlib "
             "and faiss one call per query (one filter per call is all they take), numpy a loop.")
    L.append(RECALL_NOTE)
    L.append(f"- Target: recall@10 >= {TARGET_RECALL} and vecdex QPS >= {TARGET_RATIO:g}x the best peer "
             f"(hnswlib, faiss, numpy) at recall >= {TARGET_RECALL}. vecdex-flat (vecdex.FlatIndex) is "
             "shown for reference and is not a peer.")
    L.append("")
    allrecs = [(dn, r) for dn, d in results["datasets"].items() for r in d["buckets"]]
    if allrecs:
        met = sum(1 for _, r in allrecs if r.get("target_met"))
        L.append(f"**Target met in {met} of {len(allrecs)} buckets.**")
        L.append("")
    for dname, d in results["datasets"].items():
        info = d["info"]
        L.extend(dataset_md(dname, d, meta))
        methods = list(d["builds"].keys())
        L.append(f"### Best QPS at recall@10 >= {TARGET_RECALL}")
        L.append("")
        L.append("| bucket | filter | selectivity | " + " | ".join(methods)
                 + " | vecdex / best peer | vecdex plans | target |")
        L.append("|---|---|---:|" + "---:|" * len(methods) + "---:|---|---|")
        for r in d["buckets"]:
            cells = best_cells(r, methods, info["nq"])
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            if r["best_peer"]:
                ratio += f" ({r['best_peer']['method']})"
            plans = plans_cell(r.get("explain", {}).get("vecdex"))
            kind = "per query" if r["per_query"] else "shared"
            L.append(f"| {r['name']} | {kind} | {_sel(r)} | " + " | ".join(cells)
                     + f" | {ratio} | {plans} | {'met' if r['target_met'] else 'not met'} |")
        L.append("")
        L.extend(_synthetic_matrix(d["buckets"]))
        L.extend(buckets_md(d["buckets"]))
        L.extend(sweeps_md(d["buckets"], info["nq"]))
    return write_md(L, path)


def dataset_md(dname, d, meta):
    """A data set's heading, description, schema, notes and build table."""
    info = d["info"]
    L = [f"## {dname}: {info['n']:,} x {info['dim']}, {info['nq']:,} queries, {info['metric']}", "",
         info["description"], ""]
    if info.get("schema"):
        L.append("Schema: " + ", ".join(f"`{k}`: {v}" for k, v in info["schema"].items()))
        L.append("")
    for n in info.get("notes", []):
        L.append(n)
        L.append("")
    L.append(f"### Build ({meta['build_threads']} threads)")
    L.append("")
    L.append("| method | build s | parameters |")
    L.append("|---|---:|---|")
    for nm, bd in d["builds"].items():
        if bd.get("error"):
            L.append(f"| {nm} | error: {bd['error']} | |")
        else:
            L.append(f"| {nm} | {bd['build_s']:.2f} | `{bd['params']}` |")
    L.append("")
    return L


def buckets_md(buckets):
    """The bucket descriptions: filter, matching rows, the vecdex methods' explain summaries."""
    L = ["### Buckets", ""]
    for r in buckets:
        s = r["selectivity"]
        few = f"; {r['few_matches']} queries with fewer than {K} matches" if r.get("few_matches") else ""
        L.append(f"- **{r['name']}** ({r['group']}): {r['description']}. Filter: `{r['template']}`. "
                 f"Matching rows per query: mean {s['mean_rows']:,.1f}, min {s['min_rows']:,}, "
                 f"max {s['max_rows']:,} (selectivity {_sel(r)}){few}.")
        ex = r.get("explain", {})
        for nm, e in ex.items():
            if e and "error" not in e:
                md = "" if e.get("mean_distances") is None else f", mean distances computed {e['mean_distances']:,.0f}"
                mm = (f", **{e['match_count_mismatches']} match counts differ from the reference**"
                      if e.get("match_count_mismatches") else "")
                at = "exact" if e["ef"] is None else f"ef={e['ef']}"
                L.append(f"  - {nm} explain ({at}, {e['nq']} queries): "
                         + ", ".join(f"{k} {v}" for k, v in e["plans"].items())
                         + f", fallbacks {e['fallbacks']}{md}{mm}")
            elif e:
                L.append(f"  - {nm} explain: {e['error']}")
    L.append("")
    return L


def sweeps_md(buckets, nq_all):
    """Per bucket, a table of recall@10 / QPS per ef and method, and the methods' errors."""
    L = ["### Sweeps: recall@10 / QPS per ef", ""]
    for r in buckets:
        L.append(f"#### {r['name']}")
        L.append("")
        ms = list(r["methods"].keys())
        L.append("| ef | " + " | ".join(ms) + " |")
        L.append("|---:|" + "---|" * len(ms))
        efs = sorted({p["ef"] for m in ms for p in r["methods"][m]["points"] if p["ef"] is not None})
        rows = [None] + efs if any(p["ef"] is None for m in ms for p in r["methods"][m]["points"]) else efs
        for ef in rows:
            line = ["exact" if ef is None else str(ef)]
            for m in ms:
                p = next((p for p in r["methods"][m]["points"] if p["ef"] == ef), None)
                if p is None:
                    line.append("")
                    continue
                t = f"{p['recall']:.4f} / {_qps(p['qps'])}"
                if p["nq"] != nq_all:
                    t += f" [{p['nq']}q]"
                if p["violations"]:
                    t += f" **{p['violations']} viol.**"
                line.append(t)
            L.append("| " + " | ".join(line) + " |")
        stops = [f"{m}: {r['methods'][m]['stopped']}" for m in ms if r["methods"][m]["stopped"]
                 and "error" in r["methods"][m]["stopped"]]
        L.append("")
        for s in stops:
            L.append(f"- {s}")
        if stops:
            L.append("")
    return L


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------

def load_dataset(dname, args, load_debian=load_debian, load_synthetic=load_synthetic):
    if dname == "debian":
        return load_debian(args.quick)
    if dname == "synthetic":
        return load_synthetic(10000 if args.quick else args.synthetic_n, 200 if args.quick else args.synthetic_nq,
                              128, args.synthetic_metric)
    raise SystemExit(f"unknown dataset {dname!r} (debian, synthetic)")


def run(args, title="vecdex filtered-search benchmark", classes=None, load=load_dataset,
        est_buckets=(("debian", 11), ("synthetic", 13)), summarize=summarize_bucket, target="vecdex",
        after_build=None):
    """The whole run: data sets (load(dname, args) -> FData with buckets), builds, bucket sweeps.
    summarize(rec) fills a bucket's best points and `target`'s ratio; after_build(fd, built
    methods, dataset record) may add to the record."""
    quick = args.quick
    mode = "quick" if quick else "full"
    threads = int(args.threads)
    ef_list = [int(x) for x in args.ef.split(",")] if args.ef else (EF_QUICK if quick else EF_SWEEP)
    reps = args.reps if args.reps else (2 if quick else 3)
    budget = args.time_budget * 60 if args.time_budget else (100 if quick else 22 * 60)
    clock = Clock(budget, mode)
    names = [x.strip() for x in args.methods.split(",") if x.strip()]
    log(f"{title}{' (quick)' if quick else ''}: {threads} search thread(s), "
        f"build threads {args.build_threads}, ef {ef_list}, best of {reps}, budget {budget / 60:.1f} min")
    methods, unavailable = load_libs(names, classes or METHOD_CLASSES)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
            "quick": quick, "threads": threads, "build_threads": args.build_threads, "ef": ef_list,
            "reps": reps, "machine": machine_info(), "unavailable": unavailable,
            "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "versions": {m.name: m.version() for m in methods}}
    results = {"meta": meta, "datasets": {}}
    dnames = [x.strip() for x in args.datasets.split(",") if x.strip()]
    bucket_re = args.buckets
    est_buckets = dict(est_buckets)
    for di, dname in enumerate(dnames):
        log(f"== dataset {dname}")
        t = time.perf_counter()
        fd = load(dname, args)
        if bucket_re:
            import re
            fd.buckets = [b for b in fd.buckets if re.search(bucket_re, b.name)]
        log(f"  {fd.n:,} x {fd.dim}, {fd.nq} queries, {fd.metric}, {len(fd.buckets)} buckets "
            f"(loaded in {time.perf_counter() - t:.1f}s)")
        t = time.perf_counter()
        cached = sum(prepare_bucket(fd, b) for b in fd.buckets)
        log(f"  filtered ground truth: {time.perf_counter() - t:.1f}s ({cached} of {len(fd.buckets)} cached)")
        dres = {"info": fd.info(), "builds": {}, "buckets": []}
        ok = []
        for m in methods:
            try:
                bd = bench_build(m, fd, args.build_threads)
                ok.append(m)
                log(f"  build {m.name}: {bd['build_s']:.2f}s")
            except Exception as e:  # noqa: BLE001
                bd = {"error": f"{type(e).__name__}: {e}"}
                log(f"  build {m.name}: ERROR {bd['error']}")
            dres["builds"][m.name] = bd
        if after_build:
            after_build(fd, ok, dres)
        for bi, b in enumerate(fd.buckets):
            left = len(fd.buckets) - bi + sum(est_buckets.get(x, 10) for x in dnames[di + 1:])
            point_s, method_s = clock.slices(left, len(dnames) - di - 1, len(ok))
            sel = b.matches / fd.n
            rec = {"name": b.name, "group": b.group, "description": b.description,
                   "per_query": b.per_query, "template": b.template(), "correlation": b.correlation,
                   "nominal": b.nominal,
                   "selectivity": {"mean": float(sel.mean()), "min": float(sel.min()), "max": float(sel.max()),
                                   "mean_rows": float(b.matches.mean()), "min_rows": int(b.matches.min()),
                                   "max_rows": int(b.matches.max())},
                   "few_matches": int(np.count_nonzero(b.matches < K)),
                   "slices_s": [point_s, method_s]}
            log(f"  -- bucket {b.name}: selectivity {_sel(rec)}, {'per-query' if b.per_query else 'shared'} "
                f"filter (slices {point_s:.1f}s/{method_s:.1f}s)")
            rec["methods"] = bench_bucket(ok, fd, b, ef_list, reps, threads, point_s, method_s)
            summarize(rec)
            rec["explain"] = {}
            for m in ok:
                if m.name.startswith("vecdex"):
                    rec["explain"][m.name] = run_explain(m, fd, b, rec, threads)
            ex = rec["explain"].get(target) or {}
            log(f"     best@{TARGET_RECALL}: " + ", ".join(
                f"{nm} {_cell(p, fd.nq)}" for nm, p in rec["best"].items())
                + (f"; {target} ratio {rec['ratio']:.2f}x" if rec["ratio"] else "; ratio -")
                + (f"; plans {ex.get('plans')}" if ex else ""))
            dres["buckets"].append(rec)
            b.masks = None
        for m in methods:
            m.close()
        results["datasets"][fd.name] = dres
        del fd
        gc.collect()
    meta["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["wall_s"] = time.perf_counter() - clock.t0
    return results


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(type(o))


def make_parser(doc, name, methods, quick_help):
    """The command line shared by the filtered benchmarks; `name` names the outputs
    (bench/RESULTS_{name}.md, bench/out/{name}_results.json)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--datasets", default="debian,synthetic", help="comma list: debian,synthetic")
    ap.add_argument("--methods", default=",".join(methods), help="comma list of " + ",".join(methods))
    ap.add_argument("--buckets", default=None, help="regular expression: only buckets whose name matches")
    ap.add_argument("--threads", default="1", help="search threads for every method (default 1)")
    ap.add_argument("--build-threads", type=int, default=min(2, n_cpus()), help="build threads (default 2)")
    ap.add_argument("--ef", default=None, help="comma list of ef values (default: full sweep)")
    ap.add_argument("--reps", type=int, default=None, help="timing repetitions per ef (best kept; default 3, quick 2)")
    ap.add_argument("--synthetic-n", type=int, default=100000, help="a multiple of 1000")
    ap.add_argument("--synthetic-nq", type=int, default=1000)
    ap.add_argument("--synthetic-metric", default="l2", choices=["l2", "cosine"])
    ap.add_argument("--time-budget", type=float, default=None,
                    help="minutes for the whole run (default 22; quick 1.7); slow methods get query "
                         "prefixes or stop early to keep to it")
    ap.add_argument("--out", default=None,
                    help=f"Markdown (default bench/RESULTS_{name}.md; bench/out/RESULTS_{name}_quick.md with --quick)")
    ap.add_argument("--json", default=None,
                    help=f"raw results (default bench/out/{name}_results.json; {name}_results_quick.json with --quick)")
    ap.add_argument("--from-json", default=None, help="only re-render Markdown from this JSON file")
    return ap


def run_and_write(args, name, run_fn, render):
    """--from-json: render only; else run_fn(args) -> results, written as JSON and rendered."""
    out = args.out or str(REPO / "bench" / (f"out/RESULTS_{name}_quick.md" if args.quick else f"RESULTS_{name}.md"))
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        print(render(results, out))
        return 0
    results = run_fn(args)
    js = args.json or str(REPO / "bench" / "out" / (f"{name}_results_quick.json" if args.quick else f"{name}_results.json"))
    Path(js).parent.mkdir(parents=True, exist_ok=True)
    Path(js).write_text(json.dumps(results, indent=1, default=_json_default))
    text = render(results, out)
    print()
    print(text)
    log(f"wrote {out} and {js}")
    return 0


def main(argv=None):
    args = make_parser(__doc__, "filter", ALL_METHODS,
                       "smoke test: 10k rows, 200 queries, 5 ef values (< 2 min)").parse_args(argv)
    return run_and_write(args, "filter", run, write_results_md)


if __name__ == "__main__":
    sys.exit(main())
