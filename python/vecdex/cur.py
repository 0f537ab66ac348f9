"""CURIndex: k-nearest-neighbour search under an expensive scorer (a cross-encoder) by CUR matrix
factorisation, after ANNCUR (Yadav et al., EMNLP 2022) and ADACUR (Findings of EMNLP 2023 /
ICLR 2024).

Indexing scores k_q anchor queries against every item: R (k_q x n). Item i's embedding is
column i of R. At search time the query's exact scores on a few items are fitted by least squares
over those embeddings, which approximates its score on every item; the best approximated items are
scored exactly, and the top-k by exact score is returned.

* ANNCUR (``method="anncur"``): one round. k_i anchor items are scored, the query's
  coefficients are fitted on them (pseudo-inverse of R on those columns), and the rest of the
  budget goes to the best approximated items.
* ADACUR (``method="adacur"``, the default): the budget is split over rounds; every round refits
  on all items scored so far and scores the best unscored ones next. The first round may come
  from a dual-encoder retrieval (``seed=``), and the dual encoder's similarity may be blended in
  as one more fitted feature (``blend``, on whenever the query's vector is at hand).

R, the least-squares solves, the approximate scores and the top-k selection are native
(vecdex._core.CurIndex); this module only calls the scorer. The scorer is any callable
``scorer(query, items) -> scores`` (one float per item, higher is better), e.g.
``vecdex.encoders.CrossEncoder(...).score``.
"""
from __future__ import annotations

import json
import numbers
import os
import time

import numpy as np

from . import _core
from ._sidecar import ids_digest, read_json, write_json_atomic
from ._validation import as_ids, positive_int, thread_count

SIDECAR_SUFFIX = ".cur.json"
_FORMAT = 1
METHODS = ("adacur", "anncur")
SOLVERS = ("pinv", "ridge")
APPROXIMATIONS = ("dense", "hnsw")
# Ridge strength per method, chosen by leave-one-out over the debian anchor queries (never the test
# queries; bench/RESULTS_cur.md). ADACUR refits on the items it judged best, which are alike and
# make an ill-conditioned system; ANNCUR's random anchor items are diverse and need less.
DEFAULT_RIDGE = {"adacur": 0.1, "anncur": 0.01}
_HNSW_DEFAULTS = {"M": 16, "ef_construction": 200, "ef": 128}


def _rng(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral)):
        raise TypeError(f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}")
    return np.random.default_rng(random_state)


def _progress(iterable, enabled: bool, desc: str, total: int):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return iterable
    return tqdm(iterable, desc=desc, total=total)


class CURIndex:
    """Items searched under an expensive scorer through a CUR approximation of its score matrix.

    >>> from vecdex.encoders import CrossEncoder
    >>> ce = CrossEncoder("debian-cross-encoder-onnx")
    >>> index = vecdex.CURIndex(ce.score, descriptions, anchor_queries=past_queries[:100])
    >>> ids, scores = index.search("convert images on the command line", k=10, budget=100)

    scorer: ``scorer(query, items) -> scores``, one finite float per item, higher is better.
    items: the items, in any form the scorer takes (str for a cross-encoder; save() needs them
        JSON-serialisable). ids: one int per item (default 0, 1, ...).
    anchor_queries: the k_q anchor queries, or None with ``n_anchor_queries`` drawn from
        ``query_log`` (without replacement, by ``random_state``).
    anchor_scores: the anchor queries' scores of the items, (k_q, n), when already computed
        (otherwise the scorer is called once per anchor query with all items).
    storage: "float32" or "float16" for R.
    item_vectors / dual_encoder: dual-encoder vectors of the items, given (n, d) or computed with
        ``dual_encoder.encode(items)``; used only for the blend.
    approximate: how the best approximated items are found. "dense" (default) scores every item
        (one native matrix-vector product per round: a few ms per 100k items). "hnsw" searches
        an inner-product HNSW graph over the item embeddings (dual-encoder vectors appended)
        instead, for very large n; `hnsw` sets its M, ef_construction and search ef (default
        16, 200, 128). The graph is rebuilt on load.
    """

    def __init__(self, scorer, items, anchor_queries=None, ids=None, *, n_anchor_queries=None, query_log=None,
                 anchor_scores=None, storage: str = "float32", item_vectors=None, dual_encoder=None,
                 approximate: str = "dense", hnsw: dict | None = None, progress: bool = False, random_state=None):
        if not callable(scorer):
            raise TypeError(f"scorer must be callable as scorer(query, items), got {type(scorer).__name__}")
        if storage not in ("float32", "float16"):
            raise ValueError(f"unknown storage {storage!r}: expected 'float32' or 'float16'")
        self.scorer = scorer
        self.dual_encoder = dual_encoder
        self.progress = bool(progress)
        self._approximate, self._hnsw_params = self._check_approximate(approximate, hnsw)
        self._graph = None
        items = self._check_items(items)
        if anchor_queries is None:
            if n_anchor_queries is None or query_log is None:
                raise ValueError("give anchor_queries, or n_anchor_queries with a query_log to draw them from")
            n_anchor_queries = positive_int(n_anchor_queries, "n_anchor_queries")
            log = list(query_log)
            if n_anchor_queries > len(log):
                raise ValueError(f"n_anchor_queries={n_anchor_queries} but the query log holds {len(log)} queries")
            pick = _rng(random_state).choice(len(log), n_anchor_queries, replace=False)
            anchor_queries = [log[int(i)] for i in np.sort(pick)]
        elif n_anchor_queries is not None or query_log is not None:
            raise ValueError("give either anchor_queries or n_anchor_queries with query_log, not both")
        if isinstance(anchor_queries, (str, bytes)):
            raise TypeError("anchor_queries must be a sequence of queries, not one query")
        self._anchor_queries = list(anchor_queries)
        if not self._anchor_queries:
            raise ValueError("anchor_queries is empty: CUR needs at least one anchor query")
        side_dim = 0
        if item_vectors is not None or dual_encoder is not None:
            if items:
                item_vectors = self._item_vectors(items, item_vectors)  # encoded once, here
                side_dim = int(item_vectors.shape[1])
            elif item_vectors is not None:
                side_dim = int(np.shape(item_vectors)[1]) if np.ndim(item_vectors) == 2 else 0
            else:
                side_dim = int(dual_encoder.dim)
            if side_dim <= 0:
                raise ValueError("item_vectors must have shape (n, d) with d > 0")
        self._core = _core.CurIndex(len(self._anchor_queries), storage, side_dim)
        self._items: dict[int, object] = {}
        self._make_graph()
        if items:
            self._add(items, ids, anchor_scores, item_vectors)
        elif anchor_scores is not None or ids is not None:
            raise ValueError("anchor_scores and ids need items")

    # ---- construction ---------------------------------------------------------------------

    @staticmethod
    def _check_items(items):
        if isinstance(items, (str, bytes)):
            raise TypeError("items must be a sequence of items, not one str")
        return list(items)

    @staticmethod
    def _check_approximate(approximate, hnsw):
        if approximate not in APPROXIMATIONS:
            raise ValueError(f"unknown approximate {approximate!r}: expected one of {APPROXIMATIONS}")
        params = dict(_HNSW_DEFAULTS)
        if hnsw is not None:
            if approximate != "hnsw":
                raise ValueError("hnsw= sets the graph of approximate='hnsw'")
            unknown = set(hnsw) - set(_HNSW_DEFAULTS)
            if unknown:
                raise ValueError(f"unknown hnsw parameters {sorted(unknown)}: expected {sorted(_HNSW_DEFAULTS)}")
            params.update({k: positive_int(v, f"hnsw[{k!r}]") for k, v in hnsw.items()})
        return approximate, params

    def _make_graph(self):
        """The inner-product graph of approximate='hnsw', over [embedding | dual-encoder vector]
        rows: a fit's approximate score is then one inner product with [coefficients | weight x
        query vector]."""
        if self._approximate != "hnsw":
            return
        from ._index import Index

        self._graph = Index(dim=self.anchor_count + int(self._core.side_dim), metric="ip",
                            M=self._hnsw_params["M"], ef_construction=self._hnsw_params["ef_construction"])

    def _graph_add(self, ids: np.ndarray) -> None:
        if self._graph is None or ids.size == 0:
            return
        ids = ids.astype(np.uint64)
        rows = self._core.embeddings(ids)
        if self._core.side_dim:
            rows = np.hstack([rows, self._core.side_vectors(ids)])
        self._graph.add(rows, ids=ids)

    def _call(self, query, items) -> np.ndarray:
        """The scorer on (query, items), checked: one finite float per item."""
        out = self.scorer(query, list(items))
        try:
            scores = np.asarray(out, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise TypeError(f"the scorer must return numbers, got {type(out).__name__}") from None
        if scores.shape[0] != len(items):
            raise ValueError(f"the scorer returned {scores.shape[0]} scores for {len(items)} items")
        if not np.all(np.isfinite(scores)):
            raise ValueError("the scorer returned NaN or infinite scores")
        return scores

    def _item_vectors(self, items, item_vectors):
        if item_vectors is None:
            if self.dual_encoder is None:
                raise ValueError("this index keeps dual-encoder vectors: give item_vectors or a dual_encoder")
            vectors = self.dual_encoder.encode(list(items))
        else:
            vectors = item_vectors
        vectors = np.asarray(vectors)
        if vectors.dtype.kind not in "fiu":
            raise TypeError(f"item_vectors must be numeric, got dtype {vectors.dtype}")
        if vectors.ndim != 2 or vectors.shape[0] != len(items):
            raise ValueError(f"item_vectors must have shape ({len(items)}, d), got {vectors.shape}")
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _anchor_scores_of(self, items) -> np.ndarray:
        """R's columns for new items: every anchor query scored against them (k_q scorer calls)."""
        rows = [self._call(q, items) for q in _progress(self._anchor_queries, self.progress, "anchor queries",
                                                        len(self._anchor_queries))]
        return np.stack(rows)

    def _add(self, items, ids, anchor_scores, item_vectors) -> np.ndarray:
        n = len(items)
        if ids is None:
            start = int(self._core.next_default_id)
            ids = np.arange(start, start + n, dtype=np.uint64)
        else:
            ids = as_ids(ids, n)
        if anchor_scores is None:
            scores = self._anchor_scores_of(items)
        else:
            scores = np.asarray(anchor_scores)
            if scores.dtype.kind not in "fiu":
                raise TypeError(f"anchor_scores must be numeric, got dtype {scores.dtype}")
            want = (self.anchor_count, n)
            if scores.shape != want:
                raise ValueError(f"anchor_scores must have shape {want} (anchor queries, items), got {scores.shape}")
        side = self._item_vectors(items, item_vectors) if self._core.side_dim else None
        if side is not None and side.shape[1] != self._core.side_dim:
            raise ValueError(f"item_vectors have dimension {side.shape[1]}, the index keeps {self._core.side_dim}")
        self._core.add(ids, np.ascontiguousarray(np.asarray(scores, dtype=np.float32).T), side)
        for i, item in zip(ids.tolist(), items):
            self._items[int(i)] = item
        self._graph_add(ids)
        return ids.astype(np.int64)

    def add(self, items, ids=None, *, anchor_scores=None, item_vectors=None) -> np.ndarray:
        """Add items: each costs one scorer pair per anchor query (the scorer is called k_q times,
        each time with all new items); nothing is rebuilt. Returns the ids given to them."""
        items = self._check_items(items)
        if not items:
            return np.zeros(0, dtype=np.int64)
        return self._add(items, ids, anchor_scores, item_vectors)

    def remove(self, ids) -> None:
        """Delete items (all or none: an unknown or repeated id raises ValueError)."""
        arr = np.asarray(ids).reshape(-1)
        ids = as_ids(arr, arr.shape[0])
        self._core.remove(ids)
        if self._graph is not None:
            self._graph.delete(ids)
        for i in ids.tolist():
            self._items.pop(int(i), None)

    # ---- inspection --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._core)

    def __contains__(self, id_) -> bool:
        return isinstance(id_, numbers.Integral) and id_ >= 0 and int(id_) in self._core

    def __repr__(self) -> str:
        return (f"CURIndex(items={len(self)}, anchor_queries={self.anchor_count}, storage={self._core.storage!r}, "
                f"dual_encoder_dim={self._core.side_dim}, approximate={self._approximate!r})")

    @property
    def anchor_count(self) -> int:
        return int(self._core.anchor_count)

    @property
    def anchor_queries(self) -> list:
        return list(self._anchor_queries)

    def ids(self) -> np.ndarray:
        return self._core.ids()

    def get_items(self, ids) -> list:
        return [self._items[int(i)] for i in np.asarray(ids).reshape(-1)]

    def embeddings(self, ids) -> np.ndarray:
        """Stored item embeddings (their columns of R), (n, k_q)."""
        arr = np.asarray(ids).reshape(-1)
        return self._core.embeddings(as_ids(arr, arr.shape[0]))

    def memory_usage(self) -> int:
        """Bytes held by the native part (R, dual-encoder vectors, ids, and the graph of
        approximate='hnsw')."""
        graph = self._graph.memory_usage()["total"] if self._graph is not None else 0
        return int(self._core.memory_bytes()) + int(graph)

    # ---- search ------------------------------------------------------------------------------

    def search(self, query, k: int = 10, budget: int = 100, rounds: int = 5, seed=None, *, method: str = "adacur",
               anchor_items=None, n_anchor_items=None, blend: bool | None = None, query_vector=None,
               solver: str = "ridge", rcond: float = 1e-3, ridge: float | None = None, early_stop: bool = True,
               return_info: bool = False, random_state=None, num_threads: int = 0):
        """The k items with the highest exact scores among those the search scored: (ids, scores),
        best first (ties by id), at most `budget` scorer pairs in all.

        method: "adacur" (rounds of refitting) or "anncur" (one round; `n_anchor_items` items,
            default budget // 2, are scored first, chosen at random unless `anchor_items` are given).
        seed: for ADACUR's first round, a dual-encoder retrieval: a TextIndex (or anything with
            ``.search(query, k=...)`` returning ids first), a callable ``seed(query, n) -> ids``,
            or a sequence of ids, best first. Without one (and without anchor_items) the first
            round is drawn at random.
        blend: fit the dual encoder's similarity as one more feature (needs item vectors; the
            query's vector is `query_vector` or ``dual_encoder.encode([query])``). None (the
            default) blends when it can be done: a `query_vector` is given, or the index keeps
            item vectors and has a dual_encoder. The leave-one-out over the debian anchor queries
            found blending better at every budget (bench/RESULTS_cur.md).
        solver: "ridge" (penalty `ridge` x the mean diagonal of the Gram matrix; the default) or
            "pinv" (ANNCUR's truncated pseudo-inverse: singular values <= rcond x the largest
            dropped). `ridge` defaults to 0.1 for ADACUR and 0.01 for ANNCUR, chosen by
            leave-one-out over the debian anchor queries (bench/RESULTS_cur.md).
        early_stop: ADACUR stops when a round leaves the top-k unchanged.
        return_info: also return a dict: scored ids in scoring order with their exact scores,
            `calls` (pairs scored), `rounds`, and seconds inside and outside the scorer.
        """
        t_start = time.perf_counter()
        k = positive_int(k, "k")
        budget = positive_int(budget, "budget")
        rounds = positive_int(rounds, "rounds")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: expected one of {METHODS}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}: expected one of {SOLVERS}")
        if ridge is None:
            ridge = DEFAULT_RIDGE[method]
        for name, value in (("rcond", rcond), ("ridge", ridge)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise TypeError(f"{name} must be a finite number")
        if not 0 <= rcond < 1:
            raise ValueError(f"rcond must be in [0, 1), got {rcond}")
        if ridge <= 0:
            raise ValueError(f"ridge must be positive, got {ridge}")
        num_threads = thread_count(num_threads)
        if method == "anncur" and seed is not None:
            raise ValueError("seed applies to method='adacur'; ANNCUR scores anchor items first")
        rng = _rng(random_state)
        if blend is None:
            blend = query_vector is not None or bool(self._core.side_dim and self.dual_encoder is not None)
        side_query = self._side_query(query, query_vector) if blend else None

        live = self.ids()
        budget = min(budget, live.shape[0])
        scored_ids: list[int] = []
        scored_scores: list[float] = []
        seen: set[int] = set()
        scorer_seconds = 0.0

        def score(ids):
            nonlocal scorer_seconds
            new = [int(i) for i in ids if int(i) not in seen][: budget - len(scored_ids)]
            if not new:
                return
            t0 = time.perf_counter()
            values = self._call(query, [self._items[i] for i in new])
            scorer_seconds += time.perf_counter() - t0
            scored_ids.extend(new)
            scored_scores.extend(values.tolist())
            seen.update(new)

        def fit():
            return self._core.fit(np.asarray(scored_ids, dtype=np.uint64), np.asarray(scored_scores, dtype=np.float32),
                                  side_query, solver, float(rcond), float(ridge))

        def best(fitted, count):
            if self._graph is not None:
                ids = self._graph_best(fitted, count, side_query, seen, len(scored_ids), live.shape[0])
                if ids is not None:
                    return ids
            ids, _ = self._core.best(fitted, np.asarray(scored_ids, dtype=np.uint64), count, side_query, num_threads)
            return ids

        first = None
        if anchor_items is not None:
            first = self._check_live_ids(anchor_items, "anchor_items")
        rounds_run = 0
        if budget > 0 and method == "anncur":
            if first is None:
                n_first = budget // 2 if n_anchor_items is None else positive_int(n_anchor_items, "n_anchor_items")
                n_first = max(1, min(n_first, budget))
                first = live[np.sort(rng.choice(live.shape[0], n_first, replace=False))]
            score(first)
            if len(scored_ids) < budget:
                score(best(fit(), budget - len(scored_ids)))
            rounds_run = 1
        elif budget > 0:
            rounds = min(rounds, budget)
            sizes = [budget // rounds + (1 if r < budget % rounds else 0) for r in range(rounds)]
            if first is None:
                first = self._seed_ids(query, seed, sizes[0])
                if len(first) < sizes[0]:
                    rest = np.setdiff1d(live, first)
                    pick = rng.choice(rest.shape[0], min(sizes[0] - len(first), rest.shape[0]), replace=False)
                    first = np.concatenate([first, rest[np.sort(pick)]])
            score(first)
            rounds_run = 1
            previous = self._top(scored_ids, scored_scores, k)
            for size in sizes[1:]:
                if len(scored_ids) >= budget:
                    break
                score(best(fit(), min(size, budget - len(scored_ids))))
                rounds_run += 1
                current = self._top(scored_ids, scored_scores, k)
                if early_stop and np.array_equal(current, previous):
                    break
                previous = current
            if len(scored_ids) < budget and not early_stop:
                # rounds rounded down, or the seed gave fewer items: spend what is left
                score(best(fit(), budget - len(scored_ids)))

        order = self._top(scored_ids, scored_scores, k)
        ids = np.asarray(scored_ids, dtype=np.int64)[order] if order.size else np.zeros(0, dtype=np.int64)
        scores = np.asarray(scored_scores, dtype=np.float32)[order] if order.size else np.zeros(0, dtype=np.float32)
        if not return_info:
            return ids, scores
        total = time.perf_counter() - t_start
        info = {"calls": len(scored_ids), "rounds": rounds_run,
                "scored_ids": np.asarray(scored_ids, dtype=np.int64),
                "scored_scores": np.asarray(scored_scores, dtype=np.float32),
                "scorer_seconds": scorer_seconds, "other_seconds": total - scorer_seconds}
        return ids, scores, info

    def _graph_best(self, fitted, count, side_query, seen, n_scored, n_live):
        """The best `count` unscored items by the graph, or None when it finds too few (the
        caller then scores every item)."""
        q = fitted.coefficients
        side_dim = int(self._core.side_dim)
        if side_dim:
            tail = fitted.side_weight * side_query if fitted.uses_side else np.zeros(side_dim, np.float32)
            q = np.concatenate([q, tail.astype(np.float32)])
        k = min(count + n_scored, n_live)
        ids, _ = self._graph.search(q, k=k, ef=max(self._hnsw_params["ef"], k))
        fresh = [int(i) for i in ids.tolist() if i >= 0 and int(i) not in seen][:count]
        if len(fresh) < min(count, n_live - n_scored):
            return None
        return np.asarray(fresh, dtype=np.int64)

    @staticmethod
    def _top(scored_ids, scored_scores, k) -> np.ndarray:
        """Positions of the k best exact scores, best first, ties by id."""
        if not scored_ids:
            return np.zeros(0, dtype=np.int64)
        order = np.lexsort((np.asarray(scored_ids), -np.asarray(scored_scores, dtype=np.float64)))
        return order[:k]

    def _check_live_ids(self, ids, what) -> np.ndarray:
        arr = np.asarray(ids).reshape(-1)
        out = as_ids(arr, arr.shape[0]).astype(np.int64)
        if out.size == 0:
            raise ValueError(f"{what} is empty")
        if np.unique(out).size != out.size:
            raise ValueError(f"{what} holds an id twice")
        for i in out.tolist():
            if i not in self._core:
                raise ValueError(f"{what}: id {i} is not in the index")
        return out

    def _seed_ids(self, query, seed, n) -> np.ndarray:
        if seed is None:
            return np.zeros(0, dtype=np.int64)
        if hasattr(seed, "search"):
            ids = np.asarray(seed.search(query, k=n)[0]).reshape(-1)
        elif callable(seed):
            ids = np.asarray(seed(query, n)).reshape(-1)
        else:
            ids = np.asarray(seed).reshape(-1)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"the seed must give integer ids, got dtype {ids.dtype}")
        out, taken = [], set()
        for i in ids.tolist():
            if i >= 0 and i not in taken and i in self._core:
                out.append(i)
                taken.add(i)
            if len(out) == n:
                break
        return np.asarray(out, dtype=np.int64)

    def _side_query(self, query, query_vector) -> np.ndarray:
        if not self._core.side_dim:
            raise ValueError("blending needs dual-encoder vectors: build the index with item_vectors or "
                             "dual_encoder, or pass blend=False")
        if query_vector is None:
            if self.dual_encoder is None:
                raise ValueError("blending needs the query's dual-encoder vector: give query_vector or a "
                                 "dual_encoder")
            query_vector = self.dual_encoder.encode([query])[0]
        v = np.asarray(query_vector)
        if v.dtype.kind not in "fiu":
            raise TypeError(f"query_vector must be numeric, got dtype {v.dtype}")
        v = np.ascontiguousarray(v.reshape(-1), dtype=np.float32)
        if v.shape[0] != self._core.side_dim:
            raise ValueError(f"query_vector has dimension {v.shape[0]}, the index keeps {self._core.side_dim}")
        if not np.all(np.isfinite(v)):
            raise ValueError("query_vector holds NaN or infinity")
        return v

    # ---- persistence -------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write R, ids and dual-encoder vectors to `path` and the items and anchor queries to
        `path` + '.cur.json' (each atomically). Items and queries must be JSON-serialisable."""
        path = os.fspath(path)
        ids = self.ids()
        doc = {"format": _FORMAT, "n": int(len(ids)), "ids_sha256": ids_digest(ids),
               "approximate": self._approximate, "hnsw": self._hnsw_params,
               "anchor_queries": self._anchor_queries, "items": [[int(i), self._items[int(i)]] for i in ids.tolist()]}
        try:
            json.dumps(doc)
        except (TypeError, ValueError) as e:
            raise TypeError(f"save() needs JSON-serialisable items and anchor queries: {e}") from None
        self._core.save(path)
        write_json_atomic(path + SIDECAR_SUFFIX, doc)

    @classmethod
    def load(cls, path, scorer, *, dual_encoder=None, progress: bool = False) -> "CURIndex":
        """Open an index written by save(), with the scorer to search it."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such index file: {path!r}")
        if not callable(scorer):
            raise TypeError("scorer must be callable as scorer(query, items)")
        side = path + SIDECAR_SUFFIX
        doc = read_json(side, "CUR sidecar (was the index saved by CURIndex.save?)")
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"{side!r}: unsupported sidecar format")
        try:
            anchor_queries = list(doc["anchor_queries"])
            items = {int(i): item for i, item in doc["items"]}
            n, digest = int(doc["n"]), str(doc["ids_sha256"])
            approximate = doc.get("approximate", "dense")
            approximate, hnsw_params = cls._check_approximate(
                approximate, dict(doc.get("hnsw", {})) if approximate == "hnsw" else None)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{side!r} is not a valid CUR sidecar: {e!r}") from None
        native = _core.CurIndex.load(path)
        ids = native.ids()
        if len(ids) != n or ids_digest(ids) != digest or len(items) != n or any(int(i) not in items for i in ids):
            raise ValueError(f"the sidecar does not belong to {path!r} (rows or ids differ): was one of them "
                             "replaced or a save interrupted between the two files?")
        if len(anchor_queries) != native.anchor_count:
            raise ValueError(f"the sidecar holds {len(anchor_queries)} anchor queries, the index "
                             f"{native.anchor_count}")
        obj = cls.__new__(cls)
        obj.scorer = scorer
        obj.dual_encoder = dual_encoder
        obj.progress = bool(progress)
        obj._anchor_queries = anchor_queries
        obj._core = native
        obj._items = items
        obj._approximate, obj._hnsw_params, obj._graph = approximate, hnsw_params, None
        obj._make_graph()
        obj._graph_add(ids)
        return obj


__all__ = ["CURIndex", "SIDECAR_SUFFIX", "METHODS", "SOLVERS", "APPROXIMATIONS", "DEFAULT_RIDGE"]
