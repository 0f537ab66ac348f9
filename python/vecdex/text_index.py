"""TextIndex: a vecdex index of texts, searched by text, with an encoder that embeds both.

The texts (when stored) and the encoder's identity live in a sidecar JSON file beside the index
file, ``<path>.texts.json``, written atomically after the index. The sidecar records the
number of rows and a hash of the index's ids, so a pair that does not belong together (a crash
between the two writes, or files copied separately) is refused on load instead of returning
wrong texts. It is a separate file, not a keyword attribute in the index, so that long texts do
not sit in the index's attribute dictionary (and in memory-mapped loads) and cannot be matched
by filters by accident.

This module imports no encoder dependency: any object with ``dim``, ``encode(texts, batch_size,
progress)`` and ``identity()`` works as the encoder (vecdex.encoders.TextEncoder does).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ._index import Index, _BaseIndex
from ._index import load as _load_index
from ._sidecar import ids_digest as _ids_digest
from ._sidecar import read_json, write_json_atomic

SIDECAR_SUFFIX = ".texts.json"
_FORMAT = 1


def _check_query_texts(texts):
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, bytes):
        raise TypeError("query_texts must be a str or a sequence of str, not bytes")
    items = list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"query_texts[{i}] is {type(t).__name__}, not str")
    return items, False


class TextIndex:
    """Texts in a vecdex index, searched by text with filters.

    >>> from vecdex.encoders import TextEncoder
    >>> ti = TextIndex(TextEncoder.default(), {"M": 16})       # or an Index / FlatIndex
    >>> ti.add(["a text", "another"], attributes={"lang": ["en", "en"]})
    >>> ids, dists, texts = ti.search("some query", k=5, filter={"lang": "en"}, return_texts=True)
    """

    def __init__(self, encoder, index_or_params=None):
        self.encoder = encoder
        dim = int(encoder.dim)
        if index_or_params is None or isinstance(index_or_params, dict):
            params = dict(index_or_params or {})
            params.setdefault("metric", "cosine")
            if params.pop("dim", dim) != dim:
                raise ValueError(f"dim in the index params differs from the encoder's dim {dim}")
            self.index = Index(dim=dim, **params)
        elif isinstance(index_or_params, _BaseIndex):
            if index_or_params.dim != dim:
                raise ValueError(f"the index has dim {index_or_params.dim} but the encoder makes {dim}-d vectors")
            self.index = index_or_params
        else:
            raise TypeError("index_or_params must be a vecdex Index or FlatIndex, a dict of Index "
                            f"parameters, or None; got {type(index_or_params).__name__}")
        self._texts = {}

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"TextIndex({len(self)} rows, {len(self._texts)} texts stored, index={self.index!r})"

    def add(self, texts, ids=None, attributes=None, store_texts: bool = True, batch_size: int = 32,
            progress: bool = False, num_threads: int = 0) -> np.ndarray:
        """Encode `texts` and add them; returns their int64 ids (given, or continuing from the
        largest id present plus one). store_texts=False keeps only the vectors and attributes."""
        if self.index.read_only:
            raise ValueError("the index is read-only (loaded with mmap=True)")
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of str; wrap a single text in a list")
        texts = list(texts)
        if ids is None:
            start = int(self.index.ids().max()) + 1 if len(self.index) else 0
            ids = np.arange(start, start + len(texts), dtype=np.int64)
        else:
            ids = np.asarray(ids).reshape(-1)
            if ids.shape[0] != len(texts):
                raise ValueError(f"len(ids) = {ids.shape[0]} but {len(texts)} texts were given")
        vectors = self.encoder.encode(texts, batch_size=batch_size, progress=progress)
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64)
        self.index.add(vectors, ids=ids, attributes=attributes, num_threads=num_threads)
        ids = ids.astype(np.int64)
        if store_texts:
            self._texts.update(zip(ids.tolist(), texts))
        return ids

    def get_texts(self, ids) -> list:
        """Stored texts of `ids` (None where a text was not stored or the id is -1)."""
        return [self._texts.get(int(i)) for i in np.asarray(ids).reshape(-1)]

    def search(self, query_texts, k: int = 10, filter=None, return_texts: bool = False,
               batch_size: int = 32, **search_kw):
        """Encode `query_texts` and search: (ids, dists[, texts][, plans]).

        One str gives 1-D results, a sequence gives (nq, k) arrays; `texts` then is a list (of
        lists) of the stored texts, None for missing results (-1) and texts not stored.
        `filter` and the other keywords (ef, rerank, num_threads, explain, plan) go to the
        index's search."""
        queries, single = _check_query_texts(query_texts)
        vectors = self.encoder.encode(queries, batch_size=batch_size)
        res = self.index.search(vectors[0] if single else vectors, k=k, filter=filter, **search_kw)
        ids, dists, rest = res[0], res[1], tuple(res[2:])
        out = (ids, dists)
        if return_texts:
            if single:
                texts = self.get_texts(ids)
            else:
                texts = [self.get_texts(row) for row in ids]
            out += (texts,)
        return out + rest

    def save(self, path) -> None:
        """Write the index to `path` and the texts + encoder identity to `path` + '.texts.json'
        (each atomically: temporary file, then rename)."""
        path = os.fspath(path)
        self.index.save(path)
        ids = self.index.ids()
        doc = {"format": _FORMAT, "encoder": self.encoder.identity(), "n": int(len(ids)),
               "ids_sha256": _ids_digest(ids), "texts": [[i, t] for i, t in self._texts.items()]}
        write_json_atomic(path + SIDECAR_SUFFIX, doc)

    @classmethod
    def load(cls, path, encoder, mmap: bool = False) -> "TextIndex":
        """Open a TextIndex saved with save(). Raises ValueError when `encoder` is not the one it
        was built with (other model name or dim; other weights of the same model, e.g. an int8
        version, only warn) or when the sidecar does not belong to the index file."""
        path = os.fspath(path)
        side = path + SIDECAR_SUFFIX
        doc = read_json(side, "text sidecar (was the index saved by TextIndex.save?)")
        if doc.get("format") != _FORMAT:
            raise ValueError(f"{side!r}: unsupported sidecar format {doc.get('format')!r}")
        saved, mine = doc["encoder"], encoder.identity()
        for key in ("name", "dim"):
            if saved.get(key) != mine.get(key):
                raise ValueError(f"{path!r} was built with encoder {key} {saved.get(key)!r}, "
                                 f"but the given encoder has {mine.get(key)!r}")
        for key in ("pooling", "normalize", "max_length", "model_sha256"):
            if saved.get(key) != mine.get(key):
                warnings.warn(f"{path!r} was built with {key}={saved.get(key)!r}, the encoder has "
                              f"{mine.get(key)!r}: vectors may differ slightly", RuntimeWarning, stacklevel=2)
                break
        index = _load_index(path, mmap=mmap)
        ids = index.ids()
        if len(ids) != doc["n"] or _ids_digest(ids) != doc["ids_sha256"]:
            raise ValueError(f"{side!r} does not belong to {path!r} (rows or ids differ): was one of them "
                             "replaced or a save interrupted between the two files?")
        obj = cls(encoder, index)
        obj._texts = {int(i): t for i, t in doc["texts"]}
        return obj


__all__ = ["TextIndex", "SIDECAR_SUFFIX"]
