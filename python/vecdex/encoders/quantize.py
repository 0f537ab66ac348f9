"""int8 dynamic quantisation of an exported bi-encoder, with a quality check against fp32.

Dynamic quantisation stores the MatMul weights as int8 (per output channel) and quantises the
activations at run time, so no calibration set is needed; the check on the user's own texts is
what says whether the int8 model is good enough for them.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from . import export as _export
from . import smooth as _smooth
from ._deps import require
from .tokenize import Tokenizer, check_texts


class QualityError(ValueError):
    """The quantised model is below a threshold the caller set; `.report` holds the numbers."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


def _similarities(queries, base, exclude_self):
    sims = queries @ base.T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    return sims


def _topk(sims, k):
    return np.argpartition(-sims, k - 1, axis=1)[:, :k]


def topk_overlap(q32, base32, q8, base8, k, exclude_self=False, tol=1e-5):
    """(tie-aware, by id) mean top-k overlap of the int8 model's neighbours with fp32's.

    Tie-aware, as ann-benchmarks counts recall: an int8 neighbour is a hit when its fp32
    similarity is within `tol` of the fp32 k-th best, so exact duplicates among the texts (many
    package descriptions are) cannot count as misses just because the two models break the tie
    differently. "By id" is the plain intersection of the two id sets."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    s32 = _similarities(unit(q32), unit(base32), exclude_self)
    a = _topk(s32, k)
    b = _topk(_similarities(unit(q8), unit(base8), exclude_self), k)
    kth = np.min(np.take_along_axis(s32, a, axis=1), axis=1)
    tie_aware = np.mean(np.take_along_axis(s32, b, axis=1) >= kth[:, None] - tol)
    by_id = np.mean([len(set(x) & set(y)) / k for x, y in zip(a.tolist(), b.tolist())])
    return float(tie_aware), float(by_id)


def quality_report(fp32, int8, sample_texts, queries=None, k: int = 10, batch_size: int = 32) -> dict:
    """Cosine of int8 vs fp32 embeddings of `sample_texts`, and the mean top-k overlap of the
    neighbours each model finds for `queries` among the samples (the samples themselves, minus
    the query, when no queries are given): tie-aware ("topk_overlap", which min_overlap checks)
    and by id ("topk_id_overlap"); see topk_overlap()."""
    base32 = fp32.encode(sample_texts, batch_size=batch_size)
    base8 = int8.encode(sample_texts, batch_size=batch_size)
    n32 = np.linalg.norm(base32, axis=1) * np.linalg.norm(base8, axis=1)
    cos = np.sum(base32 * base8, axis=1) / np.maximum(n32, 1e-12)
    rep = {"n_samples": len(sample_texts), "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
    exclude_self = queries is None
    q32, q8 = (base32, base8) if exclude_self else (fp32.encode(queries, batch_size=batch_size),
                                                    int8.encode(queries, batch_size=batch_size))
    kk = min(int(k), len(sample_texts) - (1 if exclude_self else 0))
    if kk >= 1 and len(q32):
        tie_aware, by_id = topk_overlap(q32, base32, q8, base8, kk, exclude_self)
        rep.update({"k": kk, "n_queries": int(len(q32)), "topk_overlap": tie_aware, "topk_id_overlap": by_id})
    else:
        rep.update({"k": kk, "n_queries": 0, "topk_overlap": None, "topk_id_overlap": None})
    return rep


def quantize_int8(model_dir, out_dir, sample_texts, queries=None, *, min_cosine: float | None = None,
                  min_overlap: float | None = None, k: int = 10, per_channel: bool = True,
                  op_types=("MatMul", "Attention"), exclude=(), smooth: float | None = 0.85,
                  threads: int | None = None, overwrite: bool = False) -> dict:
    """Quantise the bi-encoder export in `model_dir` to int8 into `out_dir`, and return the report
    of quality_report() (plus file sizes and hashes).

    Raises QualityError (a ValueError, message with the numbers) and writes nothing when the mean
    cosine is below `min_cosine` or the top-k overlap below `min_overlap`. `out_dir` then loads
    with TextEncoder like any export (its config says quantization "int8"). `op_types` are the
    ONNX ops whose weights become int8 (the fused Attention's QKV projection included by default;
    embeddings and layer norms stay float32). `exclude` lists substrings of node names to keep in
    float32, e.g. ``("/output/dense",)`` for the attention-output and FFN-down projections, whose
    inputs have the widest activation ranges (better quality, less speed).

    `smooth` (alpha in (0, 1], None to turn it off) first evens out the activations' channels
    SmoothQuant-style (see vecdex.encoders.smooth), calibrated on up to 256 of `sample_texts`: on
    all-MiniLM-L6-v2 and the debian texts it lifts the top-10 overlap from 0.90 to 0.94 at the
    same speed, and to 0.96 with the first three layers' FFN-down projections kept in float32
    (``exclude=("layer.0/output/dense", "layer.1/output/dense", "layer.2/output/dense")``)."""
    sample_texts = check_texts(sample_texts, "sample_texts")
    if not sample_texts:
        raise ValueError("sample_texts is empty: the quality check needs texts to compare on")
    if queries is not None:
        queries = check_texts(queries, "queries")
    for nm, v in (("min_cosine", min_cosine), ("min_overlap", min_overlap)):
        if v is not None and not (isinstance(v, (int, float)) and 0 <= v <= 1):
            raise ValueError(f"{nm} must be a number in [0, 1] or None, got {v!r}")
    if smooth is not None and (isinstance(smooth, bool) or not isinstance(smooth, (int, float))
                               or not 0 < smooth <= 1):
        raise ValueError(f"smooth must be a number in (0, 1] or None, got {smooth!r}")
    model_dir = Path(model_dir)
    cfg = _export.read_config(model_dir)
    if cfg["kind"] != "bi":
        raise ValueError("quantize_int8 checks quality on embeddings: it takes a bi-encoder export (kind 'bi')")
    if cfg.get("quantization"):
        raise ValueError(f"{str(model_dir)!r} is already quantised ({cfg['quantization']})")
    qz = require("onnxruntime.quantization")
    from .models import TextEncoder

    out = Path(out_dir)
    tmp = _export.make_tmp_dir(out)
    try:
        onnx = require("onnx")
        source = model_dir / cfg["model_file"]
        # smoothing rewrites the weights, so only then is the whole model read
        model = onnx.load(str(source), load_external_data=bool(smooth))
        graph = model.graph
        if isinstance(exclude, str):
            exclude = (exclude,)
        excluded = [n.name for n in graph.node if any(p in n.name for p in exclude)]
        smoothed = 0
        if smooth:
            nodes = _smooth.smoothable_nodes(graph, tuple(op_types), set(excluded))
            if nodes:
                tokenizer = Tokenizer(model_dir / _export.TOKENIZER_NAME, cfg["max_length"], cfg["pad_id"])
                maxima = _smooth.activation_maxima(model, tokenizer, sorted({n.input[0] for n in nodes}),
                                                   sample_texts[:256], threads)
                source = tmp / "smoothed.onnx"
                onnx.save(_smooth.smooth_model(model, nodes, maxima, float(smooth)), str(source))
                smoothed = len(nodes)
        qz.quantize_dynamic(str(source), str(tmp / _export.MODEL_NAME),
                            weight_type=qz.QuantType.QInt8, per_channel=bool(per_channel),
                            op_types_to_quantize=list(op_types), nodes_to_exclude=excluded,
                            # the fused contrib ops (Attention, SkipLayerNormalization) have no
                            # ONNX shape inference, so their outputs' type is given here
                            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        if smoothed:
            source.unlink()
        shutil.copyfile(model_dir / _export.TOKENIZER_NAME, tmp / _export.TOKENIZER_NAME)
        qcfg = dict(cfg, model_file=_export.MODEL_NAME, quantization="int8", int8_op_types=list(op_types),
                    int8_excluded_nodes=len(excluded), int8_smooth=float(smooth) if smoothed else None,
                    int8_smoothed_nodes=smoothed,
                    model_sha256=_export.sha256_file(tmp / _export.MODEL_NAME), fp32_sha256=cfg["model_sha256"])
        _export.write_config(tmp, qcfg)
        fp32 = TextEncoder(model_dir, threads=threads)
        int8 = TextEncoder(tmp, threads=threads)
        rep = quality_report(fp32, int8, sample_texts, queries, k)
        rep.update({"fp32_bytes": (model_dir / cfg["model_file"]).stat().st_size,
                    "int8_bytes": (tmp / _export.MODEL_NAME).stat().st_size,
                    "min_cosine": min_cosine, "min_overlap": min_overlap})
        del fp32, int8
        failed = []
        if min_cosine is not None and rep["cosine_mean"] < min_cosine:
            failed.append(f"mean cosine to fp32 {rep['cosine_mean']:.6f} < min_cosine {min_cosine}")
        if min_overlap is not None and (rep["topk_overlap"] is None or rep["topk_overlap"] < min_overlap):
            failed.append(f"top-{rep['k']} overlap {rep['topk_overlap']} < min_overlap {min_overlap}")
        if failed:
            raise QualityError("int8 model refused: " + "; ".join(failed)
                               + f" (on {rep['n_samples']} samples; nothing written to {str(out)!r})", rep)
        qcfg["quality"] = rep
        _export.write_config(tmp, qcfg)
        _export._replace_dir(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rep
