#!/usr/bin/env python3
"""Range-filter benchmark (issue 5): vecdex's range index against its general filtered path, faiss
with a range selector, hnswlib and an exact numpy pre-filter.

    python bench/bench_range.py [--quick] [--datasets debian,synthetic] [--threads 1]

Targets (issue 5), per bucket at recall@10 >= 0.95, filter evaluation counted: "vecdex range" QPS
>= 3x the best peer, and >= 1.5x "vecdex general" (the same graph without the range index) at 1 %
and 10 % selectivity; the index with its range index takes <= 2x the memory of the index without.

Data: ../shared/data/debian with its int attribute `installed_size_kb`, and bench_ann's synthetic
clustered data (100k x 128, 1000 queries, l2 by default; --quick: 10k rows, 200 queries) with two
int attributes: `rand` (uniform random, uncorrelated with the vectors) and `proj` (the projection of
the vector on a fixed random direction, standardised, plus N(0, 0.05) noise, times 10^4, rounded:
correlated with the vectors). Buckets: ranges covering 0.1 %, 1 %, 10 %, 50 % and 100 % of the rows
(the 100 % bucket once per data set). Every query gets its own random range: a random window of
that many rows in the attribute's sorted order (seed fixed), turned into inclusive value bounds
{"field": {"$gte": lo, "$lte": hi}}; rows sharing a bound's value make the true selectivity a little
larger, and the report gives the measured one.

Methods, all in this process, on the same data, at the same number of search threads (--threads, 1
by default); each gets the per-query list of filter dicts and is timed including what it does with
them:

* "vecdex range": vecdex `Index` (M=16, ef_construction=200, seed=0, schema + attributes) with
  `build_range_index(field)`; `search(Q, k, ef=ef, filter=[dicts])`, planner's choice (--range-plan
  range_graph forces `plan="range_graph"`). Unavailable (and named so in the report) while the
  vecdex build has no `Index.build_range_index`.
* "vecdex general": the same graph without a range index (issue 4's filtered search). The graph is
  built once, saved to a temporary file and loaded back once for "vecdex general" and once per range
  field for "vecdex range" (build_range_index on that copy only), so both search identical graphs.
* "faiss range": faiss `IndexHNSWFlat` (M=16, efConstruction=200; inner product on normalised
  vectors for cosine) over the rows added in the attribute's sorted order (faiss id = position in
  that order; one graph per range field); per query [L, R) = np.searchsorted of lo / hi in the
  sorted values, `search(q, k, params=SearchParametersHNSW(sel=IDSelectorRange(L, R),
  efSearch=ef))`, ids mapped back through the order.
* "faiss bitmap": bench_filter's faiss method (rows in their own order, `IDSelectorBitmap` packed
  from the query's match mask).
* "hnswlib": bench_filter's hnswlib method (`knn_query(filter=bytes(mask).__getitem__)`, one call
  per query).
* "numpy": exact pre-filter on a copy of the vectors in the attribute's sorted order (made once,
  untimed, like the peers' attribute index): per query [L, R) by np.searchsorted, the product of the
  contiguous rows L..R-1 with the query, argpartition, ids mapped back through the order.

The peers' match masks come from bench_filter's numpy evaluator over the same sorted order.

Sweep, recall and correctness as in bench_filter (imported from it): ef 10 ... 512 for the graph
methods, interleaved, best of --reps, time slices with query prefixes for slow methods; recall@10
against the exact filtered ground truth (cached under bench/out/filter_gt/), ann-benchmarks style;
a returned id outside the query's range is a violation and such points never count. Per bucket: each
method's best QPS at recall >= 0.95, "vecdex range" / best peer, "vecdex range" / "vecdex general",
the two vecdex plan mixes (explain=True). Per data set: memory_usage()["total"] with and without the
range index, their ratio, memory_usage()["range_index"] and the time of build_range_index.

Outputs: --out (Markdown; bench/RESULTS_range.md, or bench/out/RESULTS_range_quick.md with --quick)
and --json (bench/out/range_results.json / range_results_quick.json). ``--from-json FILE`` re-renders
the Markdown only.
"""
from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# bench_filter first: it sets numpy's BLAS thread count from --threads before numpy loads
import bench_filter as bf  # noqa: E402
from bench_ann import K, _normalise, log, make_synthetic  # noqa: E402
from bench_filter import (TARGET_RECALL, SELECTIVITIES, RECALL_NOTE, Bucket, Columns, FData,  # noqa: E402
                          FaissMethod, HnswlibMethod, NumpyMethod, VecdexMethod, _sel, best_cells,
                          buckets_md, dataset_md, plans_cell, summarize_bucket, sweeps_md)

import numpy as np  # noqa: E402

TARGET_PEER_RATIO = 3.0  # vecdex range / best peer
TARGET_GENERAL_RATIO = 1.5  # vecdex range / vecdex general, at the nominal selectivities below
GENERAL_TARGET_AT = ("1%", "10%")
TARGET_MEMORY_RATIO = 2.0  # total with / without the range index
RANGE = "vecdex range"
GENERAL = "vecdex general"
PEERS = ("faiss range", "faiss bitmap", "hnswlib", "numpy")
ALL_METHODS = (GENERAL, RANGE) + PEERS  # general first: its build time is the graph's (reports put range first)
DEBIAN_FIELD = "installed_size_kb"
PROJ_SCALE = 1e4  # synthetic `proj`: standardised projection x this, rounded
PROJ_NOISE = 0.05


# --------------------------------------------------------------------------------------------
# data: one int field per range attribute, a random window per query
# --------------------------------------------------------------------------------------------

def add_range_buckets(fd, field, values, correlation, seed, with_all=True):
    """Add int `field` to fd (schema, attributes, the peers' columns) and its buckets: for each
    selectivity s, each query a random window of round(s*n) rows of the sorted values, as bounds."""
    values = np.asarray(values, dtype=np.int64)
    fd.schema[field] = "int"
    fd.attributes[field] = values
    fd.cols.add_int(field, values)
    fd.range_fields.append(field)
    sv = fd.cols.ints[field][1]
    rng = np.random.default_rng(seed)
    for frac, label in SELECTIVITIES:
        if frac == 1.0 and not with_all:
            continue
        m = max(1, int(round(frac * fd.n)))
        start = rng.integers(0, fd.n - m + 1, fd.nq)
        filters = [{field: {"$gte": int(sv[s]), "$lte": int(sv[s + m - 1])}} for s in start]
        b = Bucket(f"{label} {field}", field,
                   f"each query: a random window of {m:,} rows ({label}) in `{field}`'s sorted order, "
                   f"as inclusive bounds", filters=filters, correlation=correlation, nominal=label)
        b.range_field = field
        fd.buckets.append(b)


def _range_fdata(fdata):
    fdata.cols = Columns(fdata.n)
    fdata.range_fields = []
    fdata.tmp = tempfile.TemporaryDirectory(prefix="bench_range_")  # the saved vecdex graph
    return fdata


def load_debian(quick):
    fd, rows, items, _ = bf.load_debian_rows(quick, [DEBIAN_FIELD])
    fd = _range_fdata(fd)
    size = np.asarray(items[DEBIAN_FIELD], dtype=np.int64)[rows]
    add_range_buckets(fd, DEBIAN_FIELD, size, "real (package size vs description)", seed=5)
    fd.notes.append(f"`{DEBIAN_FIELD}`: {np.unique(size).size:,} distinct values over {fd.n:,} rows "
                    f"(median {int(np.median(size)):,}); many packages share a size, so a window's "
                    "bounds often take in more rows than the window.")
    return fd


def load_synthetic(n, nq, dim, metric):
    log(f"  generating synthetic {n:,} x {dim}, {nq} queries ...")
    ds = make_synthetic(n, nq, dim, metric=metric)
    fd = _range_fdata(FData("synthetic", ds.base, ds.queries, metric, ds.description.replace(
        "; exact ground truth computed here", "")))
    del ds
    rng = np.random.default_rng(7)
    rand = rng.integers(0, 1_000_000, fd.n)
    u = rng.standard_normal(fd.dim)
    u /= np.linalg.norm(u)
    p = fd.base.astype(np.float64) @ u
    z = (p - p.mean()) / p.std() + PROJ_NOISE * rng.standard_normal(fd.n)
    proj = np.rint(z * PROJ_SCALE).astype(np.int64)
    add_range_buckets(fd, "rand", rand, "none", seed=5)
    add_range_buckets(fd, "proj", proj, "correlated (a slab of the space)", seed=6, with_all=False)
    fd.notes.append(
        f"`rand`: uniform random ints in [0, 10^6), independent of the vectors ({np.unique(rand).size:,} "
        f"distinct). `proj`: the vector's projection on a fixed random unit direction, standardised, plus "
        f"N(0, {PROJ_NOISE}) noise, x {PROJ_SCALE:g}, rounded ({np.unique(proj).size:,} distinct): a range is "
        "a slab of the space, so a query's window may hold its neighbours or lie far from it. The 100% "
        "bucket (every row) is measured once, on `rand`.")
    return fd


def _bounds(spec):
    """(lo, hi) inclusive int bounds of a {"$gte"/"$gt": lo, "$lte"/"$lt": hi} dict (None: open)."""
    lo = hi = None
    for op, v in spec.items():
        if op in ("$gte", "$gt"):
            lo = v + (op == "$gt")
        elif op in ("$lte", "$lt"):
            hi = v - (op == "$lt")
        else:
            raise ValueError(f"not a range operator: {op}")
    return lo, hi


def _window(sv, spec):
    """[L, R): the positions in sorted values sv whose value is within the range dict."""
    lo, hi = _bounds(spec)
    a = 0 if lo is None else int(np.searchsorted(sv, lo, "left"))
    b = sv.size if hi is None else int(np.searchsorted(sv, hi, "right"))
    return a, max(a, b)


# --------------------------------------------------------------------------------------------
# methods (bench_filter's interface: build(fd, threads); search(fd, b, nq, ef, threads) -> ids)
# --------------------------------------------------------------------------------------------

def saved_graph(m, fd, threads):
    """The path of fd's vecdex graph, built (with m's vecdex) and saved on first use."""
    path = getattr(fd, "vecdex_file", None)
    if path is None:
        t = time.perf_counter()
        VecdexMethod.build(m, fd, threads)
        fd.graph_build_s = time.perf_counter() - t
        path = str(Path(fd.tmp.name) / "graph.vdx")
        m.index.save(path)
        m.index = None
        fd.vecdex_file = path
    return path


class VecdexGeneralMethod(VecdexMethod):
    name = GENERAL

    def params(self, fd):
        return super().params(fd) + "; saved, loaded back (the graph vecdex range loads too)"

    def build(self, fd, threads):
        self.index = self.vd.load(saved_graph(self, fd, threads))


class VecdexRangeMethod(VecdexMethod):
    name = RANGE
    plan = "auto"  # --range-plan

    def __init__(self):
        super().__init__()
        if not hasattr(self.vd.Index, "build_range_index"):
            raise RuntimeError("this vecdex build has no Index.build_range_index (issue 5's range index)")
        self.indexes = {}
        self.stats = {}

    def params(self, fd):
        return (f"the vecdex general graph loaded once per range field + build_range_index(field); "
                f"search(plan='{self.plan}')")

    def build(self, fd, threads):
        path = saved_graph(self, fd, threads)
        self.indexes, self.stats = {}, {}
        for field in fd.range_fields:
            ix = self.vd.load(path)
            without = ix.memory_usage()["total"]
            t = time.perf_counter()
            ix.build_range_index(field)
            dt = time.perf_counter() - t
            mem = ix.memory_usage()
            self.indexes[field] = ix
            self.stats[field] = {"build_s": dt, "total_without": without, "total_with": mem["total"],
                                 "range_index": mem.get("range_index")}

    def _kw(self):
        return {} if self.plan == "auto" else {"plan": self.plan}

    def search(self, fd, b, nq, ef, threads):
        ids, _ = self.indexes[b.range_field].search(fd.queries[:nq], k=K, ef=ef, filter=b.filter_for(nq),
                                                    num_threads=threads, **self._kw())
        return ids

    def explain(self, fd, b, nq, ef, threads):
        _, _, plans = self.indexes[b.range_field].search(fd.queries[:nq], k=K, ef=ef, filter=b.filter_for(nq),
                                                         num_threads=threads, explain=True, **self._kw())
        return plans

    def close(self):
        self.indexes = {}


class FaissRangeMethod(FaissMethod):
    name = "faiss range"

    def params(self, fd):
        return (super().params(fd).split(";")[0] + "; rows added in the field's sorted order (one graph "
                "per field); SearchParametersHNSW(sel=IDSelectorRange(L, R), efSearch=ef), [L, R) by "
                "np.searchsorted")

    def build(self, fd, threads):
        self.indexes = {}
        for field in fd.range_fields:
            _, sv, order = fd.cols.ints[field]
            super().build(fd, threads, rows=order)
            self.indexes[field] = (self.index, sv, order)
        self.index = None

    def search(self, fd, b, nq, ef, threads):
        f = self.f
        f.omp_set_num_threads(threads)
        q = fd.queries[:nq]
        if fd.metric == "cosine":
            q = _normalise(q)
        index, sv, order = self.indexes[b.range_field]
        out = np.full((nq, K), -1, dtype=np.int64)
        for i in range(nq):
            lo, hi = _window(sv, b.filters[i][b.range_field])
            params = f.SearchParametersHNSW(sel=f.IDSelectorRange(lo, hi), efSearch=ef)
            _, ids = index.search(q[i:i + 1], K, params=params)
            ok = ids[0] >= 0
            out[i, ok] = order[ids[0][ok]]
        return out

    def close(self):
        self.indexes = {}


class FaissBitmapMethod(FaissMethod):
    name = "faiss bitmap"


class NumpyRangeMethod(NumpyMethod):
    """Exact: the vectors copied in each field's sorted order; a query's window is a contiguous
    slice of the copy."""

    def params(self, fd):
        return "vectors in the field's sorted order; [L, R) by np.searchsorted -> rows[L:R] @ q -> argpartition"

    def build(self, fd, threads):
        self.sorted = {}
        for field in fd.range_fields:
            _, sv, order = fd.cols.ints[field]
            self.sorted[field] = (sv, order, np.ascontiguousarray(fd.prep[order]),
                                  None if fd.sqnorm is None else fd.sqnorm[order])

    def search(self, fd, b, nq, ef, threads):
        q = fd.queries[:nq]
        if fd.metric == "cosine":
            q = _normalise(q)
        sv, order, vecs, sq = self.sorted[b.range_field]
        out = np.full((nq, K), -1, dtype=np.int64)
        for i in range(nq):
            lo, hi = _window(sv, b.filters[i][b.range_field])
            if hi == lo:
                continue
            dots = vecs[lo:hi] @ q[i]
            sc = -dots if sq is None else sq[lo:hi] - 2.0 * dots
            top, kk = self._topk(sc[None, :])
            out[i, :kk] = order[lo + top[0]]
        return out

    def close(self):
        self.sorted = {}


METHOD_CLASSES = {RANGE: VecdexRangeMethod, GENERAL: VecdexGeneralMethod, "faiss range": FaissRangeMethod,
                  "faiss bitmap": FaissBitmapMethod, "hnswlib": HnswlibMethod, "numpy": NumpyRangeMethod}
METHOD_CLASSES.update({k.replace(" ", "-"): v for k, v in list(METHOD_CLASSES.items())})  # vecdex-range ...


# --------------------------------------------------------------------------------------------
# summary and report
# --------------------------------------------------------------------------------------------

def _ratio(a, b):
    return None if a is None or b is None else a["qps"] / b["qps"]


def summarize(rec):
    """bench_filter's summary for "vecdex range" against the peers, plus its ratio to "vecdex
    general" and general's own ratio to the best peer."""
    summarize_bucket(rec, RANGE, PEERS, TARGET_PEER_RATIO)
    best = rec["best"]
    rec["ratio_general"] = _ratio(best.get(RANGE), best.get(GENERAL))
    bp = rec["best_peer"] and best[rec["best_peer"]["method"]]
    rec["general_ratio"] = _ratio(best.get(GENERAL), bp)
    rec["target_general_met"] = (None if rec["nominal"] not in GENERAL_TARGET_AT else
                                 bool(rec["ratio_general"] is not None
                                      and rec["ratio_general"] >= TARGET_GENERAL_RATIO
                                      and rec["violations"].get(RANGE, 0) == 0))


def after_build(fd, ok, dres):
    """Record the range index's memory and build time per field."""
    gen = next((m for m in ok if m.name == GENERAL), None)
    rng = next((m for m in ok if m.name == RANGE), None)
    dres["range_index"] = {
        "graph_build_s": getattr(fd, "graph_build_s", None),
        "general_total": gen.index.memory_usage()["total"] if gen else None,
        "general_memory": gen.index.memory_usage() if gen else None,
        "fields": dict(rng.stats) if rng else {}}
    for field, st in dres["range_index"]["fields"].items():
        log(f"  range index on {field}: {st['build_s']:.2f}s, total {st['total_without']:,} -> "
            f"{st['total_with']:,} bytes ({st['total_with'] / st['total_without']:.2f}x)")


def _x(v, target=None):
    if v is None:
        return "-"
    return f"{v:.2f}x" + ("" if target is None else (" met" if v >= target else " not met"))


def memory_md(d, unavailable):
    ri = d.get("range_index") or {}
    L = ["### Range index: memory and build time", ""]
    if ri.get("graph_build_s") is not None:
        L.append(f"HNSW graph (shared by vecdex range and vecdex general): built in {ri['graph_build_s']:.2f}s. "
                 "Memory: vecdex `memory_usage()` in bytes.")
        L.append("")
    if not ri.get("fields"):
        why = unavailable.get(RANGE) or "not run"
        L.append(f"vecdex range unavailable: {why}.")
        if ri.get("general_total") is not None:
            L.append(f"Total without a range index: {ri['general_total']:,} bytes "
                     f"({', '.join(f'{k} {v:,}' for k, v in ri['general_memory'].items() if k != 'total')}).")
        L.append("")
        return L
    L.append(f"| field | build_range_index s | total without | range_index | total with | with / without "
             f"(target <= {TARGET_MEMORY_RATIO:g}x) |")
    L.append("|---|---:|---:|---:|---:|---|")
    for field, st in ri["fields"].items():
        r = st["total_with"] / st["total_without"]
        rb = "-" if st.get("range_index") is None else f"{st['range_index']:,}"
        L.append(f"| {field} | {st['build_s']:.2f} | {st['total_without']:,} | {rb} | {st['total_with']:,} | "
                 f"{r:.2f}x {'met' if r <= TARGET_MEMORY_RATIO else 'not met'} |")
    L.append("")
    return L


def write_results_md(results, path=None):
    meta = results["meta"]
    L = bf.header_md(meta, "vecdex range-filter benchmark (issue 5)")
    L.append(f"- vecdex range searches with `plan='{meta.get('range_plan', 'auto')}'`. Each query has its own range (a random window of the bucket's share of the rows in the "
             "field's sorted order, as inclusive bounds); every method gets the per-query list of dicts "
             "`{field: {\"$gte\": lo, \"$lte\": hi}}` and is timed with all it does with them: vecdex one "
             "call with the list; faiss range np.searchsorted -> `IDSelectorRange(L, R)` over a graph "
             "whose ids are positions in the field's sorted order; faiss bitmap / hnswlib the match mask "
             "(bench_filter's numpy evaluator) -> `IDSelectorBitmap` / `filter=`, one call per query; "
             "numpy np.searchsorted -> product with the contiguous rows of a sorted copy of the vectors. "
             "vecdex range and vecdex general search the same graph (saved once, loaded twice), with "
             "and without `build_range_index(field)`.")
    L.append(RECALL_NOTE)
    L.append(f"- Targets: vecdex range QPS >= {TARGET_PEER_RATIO:g}x the best peer ({', '.join(PEERS)}) "
             f"at recall >= {TARGET_RECALL}; >= {TARGET_GENERAL_RATIO:g}x vecdex general at "
             f"{' and '.join(GENERAL_TARGET_AT)}; memory with the range index <= "
             f"{TARGET_MEMORY_RATIO:g}x without.")
    L.append("")
    recs = [r for d in results["datasets"].values() for r in d["buckets"]]
    if recs:
        met = sum(1 for r in recs if r.get("target_met"))
        gen = [r for r in recs if r.get("target_general_met") is not None]
        L.append(f"**vecdex range >= {TARGET_PEER_RATIO:g}x best peer in {met} of {len(recs)} buckets; "
                 f">= {TARGET_GENERAL_RATIO:g}x vecdex general in "
                 f"{sum(1 for r in gen if r['target_general_met'])} of {len(gen)} "
                 f"{'/'.join(GENERAL_TARGET_AT)} buckets.**")
        L.append("")
    for dname, d in results["datasets"].items():
        info = d["info"]
        L.extend(dataset_md(dname, d, meta))
        L.extend(memory_md(d, meta.get("unavailable", {})))
        methods = sorted(d["builds"], key=lambda nm: nm != RANGE)
        L.append(f"### Best QPS at recall@10 >= {TARGET_RECALL}")
        L.append("")
        L.append("| bucket | selectivity | " + " | ".join(methods)
                 + " | range / best peer | range / general | general / best peer | range plans | "
                   "general plans |")
        L.append("|---|---:|" + "---:|" * len(methods) + "---:|---:|---:|---|---|")
        for r in d["buckets"]:
            ratio = _x(r["ratio"], TARGET_PEER_RATIO)
            if r["best_peer"]:
                ratio += f" ({r['best_peer']['method']})"
            tg = TARGET_GENERAL_RATIO if r.get("target_general_met") is not None else None
            ex = r.get("explain", {})
            L.append(f"| {r['name']} | {_sel(r)} | " + " | ".join(best_cells(r, methods, info["nq"]))
                     + f" | {ratio} | {_x(r.get('ratio_general'), tg)} | {_x(r.get('general_ratio'))} | "
                     + f"{plans_cell(ex.get(RANGE))} | {plans_cell(ex.get(GENERAL))} |")
        L.append("")
        L.extend(buckets_md(d["buckets"]))
        L.extend(sweeps_md(d["buckets"], info["nq"]))
    return bf.write_md(L, path)


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------

def run(args):
    VecdexRangeMethod.plan = args.range_plan
    load = functools.partial(bf.load_dataset, load_debian=load_debian, load_synthetic=load_synthetic)
    results = bf.run(args, "vecdex range-filter benchmark", METHOD_CLASSES, load,
                     (("debian", 5), ("synthetic", 9)), summarize, RANGE, after_build)
    results["meta"]["range_plan"] = args.range_plan
    return results


def main(argv=None):
    ap = bf.make_parser(__doc__, "range", ALL_METHODS, "smoke test: 10k rows, 200 queries, 5 ef values (< 3 min)")
    ap.add_argument("--range-plan", default="auto",
                    help="plan= for vecdex range: auto (default) or range_graph (forced)")
    return bf.run_and_write(ap.parse_args(argv), "range", run, write_results_md)


if __name__ == "__main__":
    sys.exit(main())
