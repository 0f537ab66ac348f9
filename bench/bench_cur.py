#!/usr/bin/env python3
"""CUR cross-encoder search benchmark: vecdex.CURIndex (ANNCUR, ADACUR) against dual-encoder
retrieval + cross-encoder re-ranking, at the same number of cross-encoder calls.

    python bench/bench_cur.py [--threads 2] [--timing-queries 10] [--no-timing] [--out bench/RESULTS_cur.md]

Recall part: the debian domain of bench/data/cur_debian (bench/make_cur_data.py: ~3,000 items,
~300 summary queries, every pair scored exactly by the debian cross-encoder). The anchor queries'
rows build the index; the test queries' rows are the ground truth, and the scorer looks the exact
scores up, so every method sees the same cross-encoder scores and the recall numbers are exact.
For budgets 50, 100, 200 and 500 calls it reports Top-k-Recall@budget (the share of the exact
cross-encoder top-k among the k returned, tie-aware) for k = 1, 10, 100:

* DE + rerank: the dual encoder's (all-MiniLM-L6-v2, ../shared/data/debian vectors) top-budget
  items, scored by the cross-encoder;
* ANNCUR: budget/2 random anchor items, then the best approximated (pseudo-inverse as published,
  and the default ridge, 0.01);
* ADACUR: 5 rounds, the first drawn at random;
* ADACUR + DE seed: the first round is the dual encoder's top;
* ADACUR + DE seed + blend: also the dual-encoder similarity as a fitted feature.

Timing part: one search over all 63,666 debian items with the real ONNX cross-encoder (2 threads)
as the scorer, split into the time inside the scorer and the time outside it (fits, approximate
scores, top-k, Python). Scoring 150 anchor queries against 63,666 items would take ~30 hours on
these 2 cores, so R there is a stand-in of the right shape (the dual encoder's similarities of
150 anchor summaries to every item, scaled to logit range): the cost of the approximate step does
not depend on R's values, and the cross-encoder calls are real.
"""
from __future__ import annotations

import argparse
import os
import sys

from early_threads import early_threads  # noqa: E402  (standard library only)

os.environ.setdefault("OMP_NUM_THREADS", early_threads(sys.argv[1:], "2"))
os.environ.setdefault("MKL_NUM_THREADS", early_threads(sys.argv[1:], "2"))

import datetime  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ann import REPO, DEBIAN_DIR, _pkg_version, log, machine_info, report_header  # noqa: E402

DATA = REPO / "bench" / "data" / "cur_debian"
CROSS_DIR = REPO.parent / "shared" / "models" / "debian-cross-encoder"
EXPORT_DIR = REPO / "bench" / "out" / "debian-cross-encoder"
BUDGETS = (50, 100, 200, 500)
KS = (1, 10, 100)
ROUNDS = 5
METHODS = ("DE + rerank", "ANNCUR (pinv)", "ANNCUR (ridge 0.01)", "ADACUR", "ADACUR + DE seed",
           "ADACUR + DE seed + blend")
DEV_SOLVERS = (("ridge 0.1", {"ridge": 0.1}), ("ridge 0.01", {"ridge": 1e-2}), ("ridge 1", {"ridge": 1.0}),
               ("pinv rcond 1e-3", {"solver": "pinv"}), ("pinv rcond 1e-2", {"solver": "pinv", "rcond": 1e-2}))
DEV_BUDGETS = (50, 100, 200, 500)
TARGET_GAIN = 0.03
TARGET_OVERHEAD = 0.10


class TableScorer:
    """Exact cross-encoder scores looked up from the dense table: scorer(query_row, item_positions)."""

    def __init__(self, scores):
        self.scores = scores
        self.pairs = 0

    def __call__(self, query_row, items):
        self.pairs += len(items)
        return self.scores[query_row, np.asarray(items, dtype=np.int64)]


def recall_at(returned, exact, k):
    """Share of the exact top-k among the first k returned; tie-aware (a returned item whose exact
    score is within 1e-5 of the k-th best counts)."""
    kth = np.sort(exact)[::-1][k - 1]
    got = np.asarray(returned[:k], dtype=np.int64)
    return float(np.sum(exact[got] >= kth - 1e-5)) / k


def load_domain():
    need = ["items.npy", "queries.npy", "anchor.npy", "scores.npy", "done.npy"]
    missing = [f for f in need if not (DATA / f).exists()]
    if missing:
        raise SystemExit(f"{DATA} lacks {missing}: run python bench/make_cur_data.py first")
    d = {f[:-4]: np.load(DATA / f) for f in need}
    d["meta"] = json.loads((DATA / "meta.json").read_text()) if (DATA / "meta.json").exists() else {}
    base = np.load(DEBIAN_DIR / "base.npy", mmap_mode="r")
    d["item_vectors"] = np.ascontiguousarray(base[d["items"]], dtype=np.float32)
    d["query_vectors"] = np.load(DEBIAN_DIR / "queries.npy")[d["queries"]]
    return d


def recall_part(d, quick):
    import vecdex

    done, anchor = d["done"], d["anchor"]
    anchors = np.flatnonzero(anchor & done)
    tests = np.flatnonzero(~anchor & done)
    if quick:
        tests = tests[:10]
    scores = d["scores"]
    n = scores.shape[1]
    scorer = TableScorer(scores)
    t0 = time.perf_counter()
    index = vecdex.CURIndex(scorer, list(range(n)), anchor_queries=anchors.tolist(), anchor_scores=scores[anchors],
                            item_vectors=d["item_vectors"])
    build_s = time.perf_counter() - t0
    res = {"anchor_queries": int(anchors.size), "test_queries": int(tests.size), "items": int(n),
           "build_seconds": build_s, "recall": {}, "variants": {}}
    de_rank = {int(t): np.argsort(-(d["item_vectors"] @ d["query_vectors"][t]), kind="stable") for t in tests}

    def run_method(method, t, budget, **kw):
        if method == "DE + rerank":
            cand = de_rank[t][:budget]
            ex = scorer(t, cand)
            return cand[np.lexsort((cand, -ex.astype(np.float64)))], budget
        common = dict(k=100, budget=budget, random_state=int(t), early_stop=False, return_info=True)
        common.update(kw)
        if method == "ANNCUR (pinv)":
            ids, _, info = index.search(t, method="anncur", solver="pinv", **common)
        elif method == "ANNCUR (ridge 0.01)":
            ids, _, info = index.search(t, method="anncur", **common)
        elif method == "ADACUR":
            ids, _, info = index.search(t, rounds=ROUNDS, **common)
        elif method == "ADACUR + DE seed":
            ids, _, info = index.search(t, rounds=ROUNDS, seed=de_rank[t], **common)
        else:
            ids, _, info = index.search(t, rounds=ROUNDS, seed=de_rank[t], blend=True,
                                        query_vector=d["query_vectors"][t], **common)
        return ids, info["calls"]

    for method in METHODS:
        res["recall"][method] = {}
        for budget in BUDGETS:
            per_k = {k: [] for k in KS}
            calls = []
            for t in tests:
                ids, c = run_method(method, int(t), budget)
                calls.append(c)
                for k in KS:
                    per_k[k].append(recall_at(ids, scores[t], k))
            res["recall"][method][budget] = {"calls": float(np.mean(calls)),
                                             **{f"top{k}": float(np.mean(v)) for k, v in per_k.items()}}
            log(f"{method:28s} budget {budget:3d}: " + " ".join(
                f"top{k}={res['recall'][method][budget][f'top{k}']:.3f}" for k in KS))

    # Sensitivity at 100 calls, ADACUR + DE seed: solver, rounds, anchor queries, early stop.
    variants = [("defaults (ridge 0.1, 5 rounds)", {}), ("pinv rcond=1e-3", {"solver": "pinv"}),
                ("ridge 0.01", {"ridge": 1e-2}), ("ridge 1", {"ridge": 1.0}), ("rounds=3", {"rounds": 3}),
                ("rounds=10", {"rounds": 10}), ("early_stop=True", {"early_stop": True})]
    for name, kw in variants:
        rec, calls = [], []
        for t in tests:
            common = dict(k=10, budget=100, rounds=ROUNDS, seed=de_rank[int(t)], random_state=int(t),
                          early_stop=False, return_info=True)
            common.update(kw)
            ids, _, info = index.search(int(t), **common)
            rec.append(recall_at(ids, scores[t], 10))
            calls.append(info["calls"])
        res["variants"][name] = {"top10": float(np.mean(rec)), "calls": float(np.mean(calls))}
    for n_anchor in (25, 50, 100):
        if n_anchor >= anchors.size:
            continue
        sub = anchors[:n_anchor]
        small = vecdex.CURIndex(scorer, list(range(n)), anchor_queries=sub.tolist(), anchor_scores=scores[sub])
        rec = [recall_at(small.search(int(t), k=10, budget=100, rounds=ROUNDS, seed=de_rank[int(t)], random_state=int(t),
                                      early_stop=False)[0], scores[t], 10) for t in tests]
        res["variants"][f"{n_anchor} anchor queries"] = {"top10": float(np.mean(rec)), "calls": 100.0}
    return res


def default_mark(method, kw):
    """' (default)' when `kw` are the search defaults of `method`."""
    import vecdex.cur

    same = "solver" not in kw and kw.get("ridge") == vecdex.cur.DEFAULT_RIDGE[method]
    return " (default)" if same else ""


def dev_part(d, quick):
    """How the defaults were chosen: leave-one-out over the anchor queries (never the test
    queries). Each anchor query in turn is searched with R built from the other anchor queries."""
    import vecdex

    anchors = np.flatnonzero(d["anchor"] & d["done"])
    if quick:
        anchors = anchors[:12]
    scores, n = d["scores"], d["scores"].shape[1]
    table = {}
    for a in anchors:
        others = anchors[anchors != a]
        index = vecdex.CURIndex(TableScorer(scores), list(range(n)), anchor_queries=others.tolist(),
                                anchor_scores=scores[others], item_vectors=d["item_vectors"])
        de = np.argsort(-(d["item_vectors"] @ d["query_vectors"][a]), kind="stable")
        for budget in DEV_BUDGETS:
            cand = de[:budget]
            ex = scores[a, cand]
            table.setdefault(("DE + rerank", budget), []).append(
                recall_at(cand[np.lexsort((cand, -ex.astype(np.float64)))], scores[a], 10))
            for name, kw in DEV_SOLVERS:
                for blend in (False, True):
                    ids, _ = index.search(int(a), k=10, budget=budget, rounds=ROUNDS, seed=de, early_stop=False,
                                          random_state=int(a), blend=blend,
                                          query_vector=d["query_vectors"][a] if blend else None, **kw)
                    label = f"ADACUR + DE seed{' + blend' if blend else ''}, {name}{default_mark('adacur', kw)}"
                    table.setdefault((label, budget), []).append(recall_at(ids, scores[a], 10))
                ids, _ = index.search(int(a), k=10, budget=budget, method="anncur", random_state=int(a), **kw)
                label = f"ANNCUR, {name}{default_mark('anncur', kw)}"
                table.setdefault((label, budget), []).append(recall_at(ids, scores[a], 10))

    def group(item):  # DE first, then ADACUR, ADACUR + blend, ANNCUR
        label = item[0][0]
        return label.startswith("ANNCUR"), "blend" in label, label != "DE + rerank"

    rows = {}
    for (label, budget), v in sorted(table.items(), key=group):
        rows.setdefault(label, {})[budget] = float(np.mean(v))
    return {"queries": int(anchors.size), "rows": rows}


def timing_part(d, threads, n_queries):
    import pyarrow.parquet as pq

    import vecdex
    from vecdex.encoders import CrossEncoder, export_onnx

    if not (EXPORT_DIR / "model.onnx").exists():
        export_onnx(CROSS_DIR, EXPORT_DIR, kind="cross", overwrite=True)
    ce = CrossEncoder(EXPORT_DIR, threads=threads)
    texts = pq.read_table(DEBIAN_DIR / "items.parquet", columns=["text"]).column("text").to_pylist()
    qtexts = pq.read_table(DEBIAN_DIR / "queries.parquet", columns=["query"]).column("query").to_pylist()
    base = np.load(DEBIAN_DIR / "base.npy")
    qvec = np.load(DEBIAN_DIR / "queries.npy")
    n = base.shape[0]
    anchor_q = d["queries"][d["anchor"]][:150]
    stand_in = (10.0 * (qvec[anchor_q] @ base.T)).astype(np.float32)  # (150, 63666), logit-like range
    t0 = time.perf_counter()
    index = vecdex.CURIndex(ce.score, texts, anchor_queries=[qtexts[q] for q in anchor_q], anchor_scores=stand_in,
                            item_vectors=base)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph_index = vecdex.CURIndex(ce.score, texts, anchor_queries=[qtexts[q] for q in anchor_q],
                                  anchor_scores=stand_in, approximate="hnsw")
    graph_build_s = time.perf_counter() - t0
    test_q = d["queries"][~d["anchor"]][:n_queries]
    ce.score(qtexts[test_q[0]], texts[:16])  # warm-up
    rows = {}
    for name, idx, kw in (("ADACUR + DE seed", index, {}), ("ADACUR + DE seed + blend", index, {"blend": True}),
                          ("ADACUR + DE seed, approximate='hnsw'", graph_index, {})):
        inside, outside, calls = [], [], []
        for q in test_q:
            de = np.argsort(-(base @ qvec[q]))[:100]
            _, _, info = idx.search(qtexts[q], k=10, budget=100, rounds=ROUNDS, seed=de, early_stop=False,
                                    return_info=True, query_vector=qvec[q] if kw else None, **kw)
            inside.append(info["scorer_seconds"])
            outside.append(info["other_seconds"])
            calls.append(info["calls"])
        rows[name] = {"scorer_s": float(np.mean(inside)), "other_s": float(np.mean(outside)),
                      "calls": float(np.mean(calls)), "ratio": float(np.sum(outside) / np.sum(inside))}
        log(f"timing {name}: inside {rows[name]['scorer_s']:.3f} s, outside {rows[name]['other_s'] * 1e3:.1f} ms")
    return {"items": int(n), "anchor_queries": int(anchor_q.size), "queries": int(test_q.size),
            "build_seconds": build_s, "graph_build_seconds": graph_build_s, "memory_bytes": index.memory_usage(),
            "rows": rows}


def write_md(res, meta, path):
    L = report_header(meta, "CUR cross-encoder search: ANNCUR / ADACUR vs dual encoder + rerank")
    rp = res.get("recall_part")
    dm = meta["data"]
    L.append(f"- Data: bench/data/cur_debian (bench/make_cur_data.py): {dm['items']} debian items across all "
             f"sections, {dm['queries']} summary queries with exact cross-encoder scores for every item "
             f"({dm['scored']} of {dm['queries']} queries scored"
             + (f"; {dm['median_query_seconds']:.0f} s per query ({dm['pairs_per_s']:.0f} pairs/s) on "
                f"{dm.get('threads') or 'all'} threads, the median" if dm.get("median_query_seconds") else "") + ")")
    if dm["scored"] < dm["queries"]:
        L.append(f"- **Partial data**: the ground truth is still being computed (resumable); this run used the "
                 f"{rp['anchor_queries']} anchor and {rp['test_queries']} test queries scored so far")
    L.append(f"- Threads: {meta['threads']}; load average at start / end: {meta['loadavg_start']} / {meta['loadavg_end']}")
    L += ["", "## Top-k-Recall at a budget of cross-encoder calls", ""]
    if rp:
        L.append(f"{rp['anchor_queries']} anchor queries build R ({rp['anchor_queries']} x {rp['items']}); "
                 f"{rp['test_queries']} test queries. Recall is the share of the exact cross-encoder top-k among the "
                 f"k returned (tie-aware, 1e-5), averaged over the test queries. ADACUR: {ROUNDS} rounds of "
                 "budget/5 calls, the default solver (ridge 0.1), no early stop (so every method spends the whole "
                 "budget). ANNCUR: budget/2 random anchor items, with ANNCUR's pseudo-inverse (rcond 1e-3) and with "
                 "its default, ridge 0.01. DE: the all-MiniLM-L6-v2 vectors of ../shared/data/debian (the dual encoder's "
                 "ranking of the domain). Random draws are seeded per query.")
        L.append("")
        L.append("| method | " + " | ".join(f"top-{k} @{b}" for k in KS for b in BUDGETS) + " |")
        L.append("|---|" + "---:|" * (len(KS) * len(BUDGETS)))
        for m in METHODS:
            L.append(f"| {m} | " + " | ".join(f"{rp['recall'][m][b][f'top{k}']:.3f}" for k in KS for b in BUDGETS) + " |")
        L += ["", "Sensitivity, ADACUR + DE seed at 100 calls (top-10 recall; mean calls spent):", "",
              "| variant | top-10 @100 | calls |", "|---|---:|---:|"]
        for name, v in rp["variants"].items():
            L.append(f"| {name} | {v['top10']:.3f} | {v['calls']:.1f} |")
    dp = res.get("dev_part")
    if dp:
        L += ["", "## How the defaults were chosen", "",
              f"Leave-one-out over the {dp['queries']} anchor queries, never the test queries: each anchor query "
              "is searched with R built from the other anchor queries; top-10 recall at "
              + " / ".join(map(str, DEV_BUDGETS)) + f" calls; ADACUR: {ROUNDS} rounds, seeded by the dual encoder; "
              "ANNCUR: budget/2 random anchor items.", "",
              "| method | " + " | ".join(f"top-10 @{b}" for b in DEV_BUDGETS) + " |",
              "|---|" + "---:|" * len(DEV_BUDGETS)]
        for label, v in dp["rows"].items():
            L.append(f"| {label} | " + " | ".join(f"{v[b]:.3f}" for b in DEV_BUDGETS) + " |")
    tp = res.get("timing_part")
    if tp:
        L += ["", f"## Time outside the cross-encoder, {tp['items']:,} items", "",
              f"All {tp['items']:,} debian items, R of {tp['anchor_queries']} anchor queries (a stand-in of the right "
              "shape: dual-encoder similarities x 10, since real anchor scores for every item would take ~30 h here), "
              f"the real ONNX cross-encoder on the descriptions as the scorer; {tp['queries']} test summaries, budget "
              f"100, {ROUNDS} rounds, seeded by the dual encoder's top 100. Index memory "
              f"{tp['memory_bytes'] / 2**20:.1f} MiB (R float32 plus 384-d item vectors). The hnsw row builds an "
              f"inner-product graph over R's columns (M 16, ef_construction 200; {tp['graph_build_seconds']:.0f} s) "
              "and searches it at ef 128 instead of scoring every item.", "",
              "| method | in cross-encoder (s/query) | outside (ms/query) | outside / inside | calls |",
              "|---|---:|---:|---:|---:|"]
        for name, r in tp["rows"].items():
            L.append(f"| {name} | {r['scorer_s']:.3f} | {r['other_s'] * 1e3:.1f} | {r['ratio'] * 100:.1f}% | "
                     f"{r['calls']:.0f} |")
    L += ["", "## Targets", "", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for row in targets(res):
        L.append("| " + " | ".join(row) + " |")
    Path(path).write_text("\n".join(L) + "\n")


def summary_md(res, meta):
    """The section of bench/RESULTS.md: top-10 recall by budget, the targets, the timing."""
    rp, tp, dm = res["recall_part"], res.get("timing_part"), meta["data"]
    partial = (f" **Partial data: {dm['scored']} of {dm['queries']} queries scored so far.**"
               if dm["scored"] < dm["queries"] else "")
    L = ["## CUR cross-encoder search (issue 7)", "",
         f"`{meta['command']}`, {meta['date']}; full tables in [RESULTS_cur.md](RESULTS_cur.md). Debian domain of "
         f"{rp['items']:,} items; {rp['anchor_queries']} anchor and {rp['test_queries']} test summary queries with exact "
         f"cross-encoder scores for every item.{partial} Top-10-Recall at a budget of cross-encoder calls:", "",
         "| method | " + " | ".join(f"@{b}" for b in BUDGETS) + " |", "|---|" + "---:|" * len(BUDGETS)]
    for m in METHODS:
        L.append(f"| {m} | " + " | ".join(f"{rp['recall'][m][b]['top10']:.3f}" for b in BUDGETS) + " |")
    L += ["", "| target | wanted | measured | met |", "|---|---|---|---|"]
    L += ["| " + " | ".join(row) + " |" for row in targets(res)]
    if tp:
        r = tp["rows"]["ADACUR + DE seed"]
        L += ["", f"Over all {tp['items']:,} items, budget 100: {r['scorer_s']:.2f} s per query in the cross-encoder, "
              f"{r['other_s'] * 1e3:.0f} ms outside it ({r['ratio'] * 100:.1f}%)."]
    return "\n".join(L) + "\n"


def targets(res):
    out = []
    rp = res.get("recall_part")
    if rp:
        de = rp["recall"]["DE + rerank"]
        for method in ("ADACUR + DE seed", "ADACUR + DE seed + blend"):
            ada = rp["recall"][method]
            gain = ada[100]["top10"] - de[100]["top10"]
            out.append([f"{method}: top-10 @100 vs DE + rerank", f">= +{TARGET_GAIN * 100:.0f} points",
                        f"{ada[100]['top10']:.3f} vs {de[100]['top10']:.3f} ({gain * 100:+.1f})",
                        "yes" if gain >= TARGET_GAIN else "**no**"])
            at = min(BUDGETS, key=lambda b: ada[b]["top10"] - de[b]["top10"])
            worst = ada[at]["top10"] - de[at]["top10"]
            out.append([f"{method}: never below it (top-10, budgets {', '.join(map(str, BUDGETS))})", ">= 0",
                        f"{worst * 100:+.1f} points at worst (@{at})", "yes" if worst >= 0 else "**no**"])
    tp = res.get("timing_part")
    if tp:
        r = tp["rows"]["ADACUR + DE seed"]
        out.append(["time outside / inside the cross-encoder", f"<= {TARGET_OVERHEAD * 100:.0f}%",
                    f"{r['ratio'] * 100:.1f}%", "yes" if r["ratio"] <= TARGET_OVERHEAD else "**no**"])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timing-queries", type=int, default=10)
    ap.add_argument("--no-timing", action="store_true", help="skip the 63,666-item timing (needs the cross-encoder)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 test queries, 2 timing queries")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.timing_queries = 2
    out = args.out or str(REPO / "bench" / ("out/RESULTS_cur_quick.md" if args.quick else "RESULTS_cur.md"))
    d = load_domain()
    meta = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO)] + sys.argv[1:]),
            "machine": machine_info(), "quick": args.quick, "threads": args.threads,
            "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "data": {"items": int(d["scores"].shape[1]), "queries": int(d["scores"].shape[0]),
                     "scored": int(d["done"].sum()),
                     **{k: d["meta"].get(k) for k in ("median_query_seconds", "pairs_per_s", "threads")}}}
    meta["versions"] = {k: _pkg_version(k) for k in ("vecdex", "onnxruntime", "tokenizers")}
    res = {"recall_part": recall_part(d, args.quick), "dev_part": dev_part(d, args.quick)}
    if not args.no_timing:
        res["timing_part"] = timing_part(d, args.threads, args.timing_queries)
    meta["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / ("cur_results_quick.json" if args.quick else "cur_results.json")).write_text(
        json.dumps({"meta": meta, "results": res}, indent=1, default=str))
    write_md(res, meta, out)
    log(f"wrote {out}")
    if not args.quick and args.out is None:
        from results_sections import update_section

        update_section("cur", summary_md(res, meta))
        log("updated the cur section of bench/RESULTS.md")


if __name__ == "__main__":
    main()
