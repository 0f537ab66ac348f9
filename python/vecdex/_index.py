"""The Python face of the native indexes: numpy in, numpy out."""
from __future__ import annotations

import os

import numpy as np

from . import _core
from ._validation import as_ids, as_rows, positive_int, thread_count
from .filters import compile_filters

_METRICS = ("l2", "ip", "cosine")
_PLANS = ("auto", "exact_scan", "filtered_graph", "post_filter", "range_graph")
MAX_RABITQ_CENTROIDS = 64  # the core's kMaxRaBitQCentroids
QUANTIZATIONS = ("none", "fp16", "bf16", "sq8", "sq8u", "sq4", "pq") + tuple(f"rabitq{b}" for b in range(1, 9))


def _check_metric(metric) -> str:
    if not isinstance(metric, str) or metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of 'l2', 'ip', 'cosine'")
    return metric


def _check_quantization(quantization) -> str:
    if quantization is None:
        return "none"
    if not isinstance(quantization, str) or quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}: expected one of {', '.join(QUANTIZATIONS)}")
    return quantization


def _pq_settings(quantization, pq_subquantizers, pq_bits) -> tuple[int, int]:
    """(sub-quantizers, bits) for the core; 0 sub-quantizers means the default for the dimension."""
    if quantization != "pq" and (pq_subquantizers is not None or pq_bits != 4):
        raise ValueError("pq_subquantizers and pq_bits apply only to quantization='pq'")
    m = 0 if pq_subquantizers is None else positive_int(pq_subquantizers, "pq_subquantizers")
    if isinstance(pq_bits, bool) or pq_bits not in (4, 8):
        raise ValueError(f"pq_bits must be 4 or 8, got {pq_bits!r}")
    return m, int(pq_bits)


def _rabitq_centroids(quantization, rabitq_centroids) -> int:
    """Centroids for RaBitQ codes; 0 lets the core choose (k-means for 1-bit codes on clustered data)."""
    if rabitq_centroids is None:
        return 0
    if not quantization.startswith("rabitq"):
        raise ValueError("rabitq_centroids applies only to quantization='rabitq1' ... 'rabitq8'")
    c = positive_int(rabitq_centroids, "rabitq_centroids")
    if c > MAX_RABITQ_CENTROIDS:
        raise ValueError(f"rabitq_centroids must be at most {MAX_RABITQ_CENTROIDS}, got {c}")
    return c


def _check_rerank(rerank) -> int:
    if rerank is None:
        return 0
    return positive_int(rerank, "rerank")


def _check_attributes(attributes, required: bool = False):
    if attributes is None and not required:
        return None
    if not isinstance(attributes, dict):
        raise TypeError(f"attributes must be a dict of field name -> values, got {type(attributes).__name__}")
    return attributes


def _compile_search_filter(filter, schema, nq):
    """(distinct ASTs or None, index of each query's AST or None) for the native search.

    One filter applies to every query; a list (or tuple) gives one filter per query; a 1-D query
    takes one filter (or a list of one)."""
    if filter is None:
        return None, None
    compiled = compile_filters(filter, schema, nq)
    if isinstance(compiled, list) and not compiled:  # no queries: nothing to filter
        return None, None
    if not isinstance(compiled, list):
        return ([compiled], None) if compiled != ("all",) else (None, None)
    distinct, index = [], {}
    of_query = np.empty(nq, dtype=np.uint32)
    for q, ast in enumerate(compiled):
        key = repr(ast)
        if key not in index:
            index[key] = len(distinct)
            distinct.append(ast)
        of_query[q] = index[key]
    return distinct, of_query


def _declare_schema(native, schema) -> None:
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise TypeError(f"schema must be a dict of field name -> type name, got {type(schema).__name__}")
    native.declare_schema(schema)


def _check_path(path) -> str:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fsdecode(path)


class _BaseIndex:
    """Shared behaviour of FlatIndex and Index; wraps one native index object."""

    _native: _core.IndexBase

    @property
    def dim(self) -> int:
        return self._native.dim

    @property
    def metric(self) -> str:
        return self._native.metric

    @property
    def read_only(self) -> bool:
        """True for a memory-mapped index, which can be searched but not changed."""
        return self._native.read_only

    @property
    def quantization(self) -> str:
        """How vectors are stored for search: 'none' (float32) or one of QUANTIZATIONS."""
        return self._native.quantization

    @property
    def has_full_vectors(self) -> bool:
        """Whether float32 vectors are kept (always for quantization='none'), so results can be re-ranked."""
        return self._native.has_full_vectors

    def __len__(self) -> int:
        return len(self._native)

    def train(self, sample) -> None:
        """Fit the quantiser's value ranges on a sample, before the first add().

        Without it, the first add() trains on the vectors it adds. Quantisations without a
        trained range (none, fp16, bf16) accept and ignore it.
        """
        rows, _ = as_rows(sample, self.dim, "training vectors")
        self._native.train(rows)

    def add(self, vectors, ids=None, num_threads: int = 0, attributes=None) -> None:
        """Add vectors (n, dim) with optional ids; default ids continue after the largest id so far.

        attributes: {field: column} with one value per vector (None where missing): str for a
        keyword field, list of str for keywords, int, float (not NaN) or bool; numpy arrays work
        for numbers and booleans. A field not declared yet takes its type from the values. A
        rejected call (any bad id, vector or value) changes nothing.
        """
        rows, _ = as_rows(vectors, self.dim, "vectors")
        id_array = None if ids is None else as_ids(ids, rows.shape[0])
        self._native.add(rows, id_array, thread_count(num_threads), _check_attributes(attributes))

    def delete(self, ids) -> None:
        """Delete the vectors of `ids` (a 1-D array-like of ints, or one int); all or nothing.

        Every id must be in the index and appear once, else ValueError naming the first bad id,
        and nothing is deleted. Deleted vectors are never returned by search, ids(),
        get_vectors() or get_attributes() again and len() stops counting them; their ids are
        free, so adding one again stores a new vector. The rows stay in memory (and, in an
        Index, in the graph, which searches still walk through) until the index is rebuilt.
        """
        arr = np.asarray(ids)
        if arr.ndim > 1:
            raise ValueError(f"ids must be 1-D, got shape {arr.shape}")
        # Deletion cannot be undone: floats (even integral ones) and booleans are refused rather
        # than converted. An empty list (float64 to numpy) deletes nothing.
        if arr.size and arr.dtype.kind not in "iuO":
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        arr = np.atleast_1d(arr)
        self._native.delete(as_ids(arr, arr.shape[0]))

    @property
    def schema(self) -> dict:
        """Attribute fields and their types ('keyword', 'keywords', 'int', 'float', 'bool'), in declaration order."""
        return self._native.schema()

    def update_attributes(self, ids, attributes) -> None:
        """Replace the given fields' values for `ids` (other fields keep theirs); all or nothing."""
        arr = np.atleast_1d(np.asarray(ids))
        self._native.update_attributes(as_ids(arr, arr.shape[0]), _check_attributes(attributes, required=True))

    def get_attributes(self, ids, fields=None) -> dict:
        """{field: list of values for `ids`} (None where missing); every field when `fields` is None."""
        arr = np.atleast_1d(np.asarray(ids))
        if fields is not None:
            if isinstance(fields, str):
                fields = [fields]
            fields = list(fields)
            for f in fields:
                if not isinstance(f, str):
                    raise TypeError(f"field names must be str, got {type(f).__name__}")
        return self._native.get_attributes(as_ids(arr, arr.shape[0]), fields)

    def _search(self, queries, k, ef, num_threads, rerank, filter=None, explain=False, plan="auto"):
        k = positive_int(k, "k")
        rows, was_1d = as_rows(queries, self.dim, "queries")
        if not isinstance(explain, bool):
            raise TypeError(f"explain must be True or False, got {explain!r}")
        filters, of_query = _compile_search_filter(filter, self.schema, len(rows))
        if plan not in _PLANS:
            raise ValueError(f"unknown plan {plan!r}: expected one of {', '.join(map(repr, _PLANS))}")
        out = self._native.search(rows, k, ef, thread_count(num_threads), _check_rerank(rerank),
                                  filters=filters, filter_of_query=of_query, explain=explain, plan=plan)
        if was_1d:
            return tuple(x[0] for x in out)
        return out

    def save(self, path) -> None:
        """Write the index to `path` atomically: a failed save leaves an existing file untouched."""
        self._native.save(_check_path(path))

    def memory_usage(self) -> dict:
        """Bytes held, by part, and their total."""
        parts = dict(self._native.memory_usage())
        parts["total"] = sum(parts.values())
        return parts

    def ids(self) -> np.ndarray:
        """The ids of the vectors in the index (deleted ones left out), in insertion order."""
        return self._native.ids()

    def get_vectors(self, ids) -> np.ndarray:
        """Stored vectors for `ids` (normalised, for cosine)."""
        arr = np.atleast_1d(np.asarray(ids))
        return self._native.get_vectors(as_ids(arr, arr.shape[0]))

    @classmethod
    def _wrap(cls, native):
        obj = cls.__new__(cls)
        obj._native = native
        return obj

    @classmethod
    def load(cls, path, mmap: bool = False):
        """Open an index saved with save(); mmap=True maps the file read-only instead of copying it."""
        path = _check_path(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such index file: {path!r}")
        native = _core.load(path, bool(mmap))
        wrapper = _WRAPPERS[type(native)]
        if cls is not _BaseIndex and wrapper is not cls:
            raise ValueError(f"{path!r} holds a {wrapper.__name__}, not a {cls.__name__}; use vecdex.load()")
        return wrapper._wrap(native)


class FlatIndex(_BaseIndex):
    """Exact search over every stored vector.

    >>> index = FlatIndex(dim=384, metric="cosine")
    """

    def __init__(
        self,
        dim: int,
        metric: str = "l2",
        quantization: str | None = None,
        keep_full_vectors: bool = True,
        pq_subquantizers: int | None = None,
        pq_bits: int = 4,
        schema: dict | None = None,
        rabitq_centroids: int | None = None,
    ):
        quantization = _check_quantization(quantization)
        m, bits = _pq_settings(quantization, pq_subquantizers, pq_bits)
        self._native = _core.FlatIndex(
            positive_int(dim, "dim"), _check_metric(metric), quantization, bool(keep_full_vectors), m, bits,
            _rabitq_centroids(quantization, rabitq_centroids),
        )
        _declare_schema(self._native, schema)

    def search(self, queries, k: int = 10, num_threads: int = 0, rerank: int | None = None, filter=None,
               explain: bool = False):
        """k nearest by scanning every vector: ids (nq, k) int64 and distances (nq, k) float32, ascending.

        Exact for quantization='none'. For a quantised index the scan ranks by the codes, and
        rerank * k of the best are re-scored with the full vectors (default rerank=1, so the
        returned distances are exact). Missing results (fewer than k stored, or fewer matching
        the filter) are id -1 with distance +inf; a 1-D query gives 1-D results.

        filter: a `vecdex.field(...)` expression or a Mongo-style dict, applied to every query,
        or a list with one filter per query. Only matching rows are returned; with few matches
        only those are scored. explain=True adds a third result: one dict per query with the
        plan ("exact_scan", "flat_scan" or "empty"), the matches and the distances computed.
        """
        return self._search(queries, k, 0, num_threads, rerank, filter, explain)

    def __repr__(self) -> str:
        q = "" if self.quantization == "none" else f", quantization={self.quantization!r}"
        return f"vecdex.FlatIndex(dim={self.dim}, metric={self.metric!r}{q}, size={len(self)})"


class Index(_BaseIndex):
    """Approximate nearest-neighbour search on an HNSW graph.

    >>> index = Index(dim=384, metric="cosine", M=16, ef_construction=200, seed=0)
    """

    def __init__(
        self,
        dim: int,
        metric: str = "l2",
        M: int = 16,
        ef_construction: int = 200,
        seed: int = 0,
        quantization: str | None = None,
        keep_full_vectors: bool = True,
        pq_subquantizers: int | None = None,
        pq_bits: int = 4,
        schema: dict | None = None,
        rabitq_centroids: int | None = None,
    ):
        M = positive_int(M, "M")
        if M < 2:
            raise ValueError(f"M must be at least 2, got {M}")
        quantization = _check_quantization(quantization)
        pq_m, pq_b = _pq_settings(quantization, pq_subquantizers, pq_bits)
        ef_construction = positive_int(ef_construction, "ef_construction")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        self._native = _core.HnswIndex(
            positive_int(dim, "dim"),
            _check_metric(metric),
            M,
            ef_construction,
            int(seed),
            quantization,
            bool(keep_full_vectors),
            pq_m,
            pq_b,
            _rabitq_centroids(quantization, rabitq_centroids),
        )
        _declare_schema(self._native, schema)

    @property
    def M(self) -> int:
        return self._native.M

    @property
    def ef_construction(self) -> int:
        return self._native.ef_construction

    @property
    def seed(self) -> int:
        return self._native.seed

    def search(self, queries, k: int = 10, ef: int | None = None, num_threads: int = 0, rerank: int | None = None,
               filter=None, explain: bool = False, plan: str = "auto"):
        """Approximate k nearest: ids (nq, k) int64 and distances (nq, k) float32, ascending.

        ef is the search beam (default max(k, 64); raised to k when smaller): larger is slower and
        more accurate. For a quantised index the graph is walked on the codes and rerank * k
        candidates are re-scored with the full vectors (default rerank=1: exact distances for what
        is returned); rerank needs keep_full_vectors=True. Missing results are id -1 with distance
        +inf; a 1-D query gives 1-D results.

        filter: a `vecdex.field(...)` expression or a Mongo-style dict, applied to every query,
        or a list with one filter per query. The filter is evaluated natively from the attribute
        postings, and a planner picks per query: an exact scan of the matching rows when they are
        few, else a graph walk that scores only matching rows (or, when most rows match, every
        row), with an exact scan as fall-back whenever the walk finds fewer than k while more
        rows match. A range predicate on a field with a range index (`build_range_index`) that
        keeps under half of the rows is walked on that index ("range_graph"). Only matching rows
        are ever returned. explain=True adds a third result: one dict per query with the plan
        ("graph", "filtered_graph", "post_filter", "range_graph", "exact_scan", "empty"), the
        matches, the selectivity, ef, whether the fall-back ran, and the distances computed.

        plan overrides the planner for every query: "exact_scan" (exact, with or without a
        filter), "filtered_graph" or "post_filter" (filtered queries only), "range_graph"
        (queries whose filter has a range on a field with a range index); "auto" (default)
        lets it choose.
        """
        ef = 0 if ef is None else positive_int(ef, "ef")
        return self._search(queries, k, ef, num_threads, rerank, filter, explain, plan)

    def build_range_index(self, field: str, M: int | None = None, ef_construction: int | None = None,
                          num_threads: int = 0) -> None:
        """Build (or rebuild) a range index over an int or float attribute `field`.

        Range predicates on the field (`field("x").between(lo, hi)`, `{"x": {"$gte": lo}}`),
        alone or and-ed with others, then walk graphs built for segments of the field's sorted
        order, so the walk stays inside the range. Rows added later, and rows whose value of the
        field changes, are searched exactly beside it until `optimize()` rebuilds. The index is
        saved, loaded and memory-mapped with the rest; `memory_usage()["range_index"]` is its size.
        M (default 12) links per row in each segment's graph and the build beam ef_construction
        (default 64) trade memory and build time for recall.
        """
        if not isinstance(field, str):
            raise TypeError(f"field must be a str, got {type(field).__name__}")
        M = 0 if M is None else positive_int(M, "M")
        if M == 1 or M > 256:
            raise ValueError(f"M must be between 2 and 256, got {M}")
        efc = 0 if ef_construction is None else positive_int(ef_construction, "ef_construction")
        self._native.build_range_index(field, M, efc, thread_count(num_threads))

    def optimize(self, num_threads: int = 0) -> None:
        """Rebuild every range index over all rows (folding in rows added or changed since)."""
        self._native.optimize(thread_count(num_threads))

    @property
    def range_index_fields(self) -> list:
        """The fields that have a range index."""
        return list(self._native.range_index_fields)

    def __repr__(self) -> str:
        return (
            f"vecdex.Index(dim={self.dim}, metric={self.metric!r}, M={self.M}, "
            f"ef_construction={self.ef_construction}"
            + ("" if self.quantization == "none" else f", quantization={self.quantization!r}")
            + f", size={len(self)})"
        )


_WRAPPERS = {_core.FlatIndex: FlatIndex, _core.HnswIndex: Index}


def load(path, mmap: bool = False):
    """Open any vecdex index file, returning an Index or a FlatIndex."""
    return _BaseIndex.load(path, mmap)
