"""Exact cross-encoder scores for the CUR evaluation (bench/bench_cur.py): a debian domain of
~3,000 items and ~300 summary queries, every (query, item) pair scored by the debian
cross-encoder. Half of the queries are anchor queries (their rows build the CUR index), half are
test queries (their rows are the ground truth).

The scores cost about 35 s of 2 CPU cores per query, so the run is resumable: it writes
bench/data/cur_debian/scores.npy after every query (NaN rows are not scored yet; `done.npy`
marks the scored ones) and picks up where it stopped. Queries are scored alternately anchor,
test, anchor, ... so a partial file is already usable with fewer queries. With a CUDA machine
pass --provider cuda.

    python bench/make_cur_data.py                      # select (once) and score, resuming
    python bench/make_cur_data.py --select-only        # write the selection only
    python bench/make_cur_data.py --max-seconds 3600   # stop cleanly after an hour

Selection (fixed seed): 300 of the 2,000 debian queries; the domain is their positives plus
items drawn per section in proportion to the section's size, with word-for-word duplicate
descriptions dropped (identical texts would tie in every score row). Files in
bench/data/cur_debian/: `items.npy` (int32 debian rows, sorted), `queries.npy` (int32 query
indices into queries.parquet), `anchor.npy` (bool per query: anchor or test), `scores.npy`
(float32 (queries, items) logits, NaN where not scored), `done.npy` (bool per query) and
`meta.json` (model, sizes, seconds spent).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEBIAN = SHARED / "data" / "debian"
CROSS_DIR = SHARED / "models" / "debian-cross-encoder"
OUT = REPO / "bench" / "data" / "cur_debian"
EXPORT_DIR = REPO / "bench" / "out" / "debian-cross-encoder"
SEED = 20261122


def atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def select(n_queries: int, n_items: int) -> None:
    import pyarrow.parquet as pq

    items = pq.read_table(DEBIAN / "items.parquet", columns=["section", "text"]).to_pydict()
    positives = np.load(DEBIAN / "query_positive.npy")
    rng = np.random.default_rng(SEED)
    queries = np.sort(rng.choice(len(positives), n_queries, replace=False)).astype(np.int32)
    chosen = set(int(positives[q]) for q in queries)
    seen_text = {items["text"][r] for r in chosen}
    section = np.asarray(items["section"])
    n_total = len(section)
    for name in np.unique(section):
        rows = np.flatnonzero(section == name)
        want = int(round((n_items - n_queries) * len(rows) / n_total))
        for r in rng.permutation(rows):
            if want <= 0:
                break
            if int(r) in chosen or items["text"][r] in seen_text:
                continue
            chosen.add(int(r))
            seen_text.add(items["text"][r])
            want -= 1
    rows = np.array(sorted(chosen), dtype=np.int32)
    anchor = np.zeros(n_queries, dtype=bool)
    anchor[rng.permutation(n_queries)[: n_queries // 2]] = True
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_save(OUT / "items.npy", rows)
    atomic_save(OUT / "queries.npy", queries)
    atomic_save(OUT / "anchor.npy", anchor)
    print(f"selected {len(queries)} queries ({anchor.sum()} anchor) and {len(rows)} items "
          f"from {len(np.unique(section[rows]))} sections", flush=True)


def score(provider: str, threads: int, batch_size: int, max_seconds: float) -> None:
    import pyarrow.parquet as pq

    from vecdex.encoders import CrossEncoder, export_onnx

    rows = np.load(OUT / "items.npy")
    queries = np.load(OUT / "queries.npy")
    anchor = np.load(OUT / "anchor.npy")
    texts_all = pq.read_table(DEBIAN / "items.parquet", columns=["text"]).column("text").to_pylist()
    docs = [texts_all[r] for r in rows]
    qtext = pq.read_table(DEBIAN / "queries.parquet", columns=["query"]).column("query").to_pylist()
    if (OUT / "scores.npy").exists():
        scores = np.load(OUT / "scores.npy")
        done = np.load(OUT / "done.npy")
    else:
        scores = np.full((len(queries), len(rows)), np.nan, dtype=np.float32)
        done = np.zeros(len(queries), dtype=bool)
    meta_path = OUT / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"seconds": 0.0}
    if not (EXPORT_DIR / "model.onnx").exists():
        export_onnx(CROSS_DIR, EXPORT_DIR, kind="cross", overwrite=True)
    ce = CrossEncoder(EXPORT_DIR, provider=provider, threads=threads)
    a_idx, t_idx = np.flatnonzero(anchor), np.flatnonzero(~anchor)
    order = [int(i) for pair in zip(a_idx, t_idx) for i in pair]
    order += [int(i) for i in np.concatenate([a_idx, t_idx]) if int(i) not in set(order)]
    start = time.perf_counter()
    for qi in order:
        if done[qi]:
            continue
        if time.perf_counter() - start > max_seconds:
            print("time limit reached; run again to resume", flush=True)
            break
        t0 = time.perf_counter()
        scores[qi] = ce.score(qtext[queries[qi]], docs, batch_size=batch_size)
        done[qi] = True
        atomic_save(OUT / "scores.npy", scores)
        atomic_save(OUT / "done.npy", done)
        took = time.perf_counter() - t0
        meta["seconds"] = float(meta["seconds"] + took)
        # the median is the rate: a query's wall time also counts any pause of the process
        meta.setdefault("query_seconds", []).append(round(took, 2))
        meta.update({"model": CROSS_DIR.name, "provider": provider, "threads": threads,
                     "queries": int(len(queries)), "items": int(len(rows)), "scored": int(done.sum()),
                     "median_query_seconds": float(np.median(meta["query_seconds"])),
                     "pairs_per_s": float(len(rows) / np.median(meta["query_seconds"]))})
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, meta_path)
        print(f"{int(done.sum())}/{len(done)} queries scored ({time.perf_counter() - t0:.1f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--provider", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=float("inf"))
    ap.add_argument("--select-only", action="store_true")
    args = ap.parse_args()
    if not (OUT / "items.npy").exists():
        select(args.queries, args.items)
    if not args.select_only:
        score(args.provider, args.threads, args.batch_size, args.max_seconds)


if __name__ == "__main__":
    main()
