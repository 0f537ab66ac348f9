"""Deleting vectors: ``delete(ids)`` on Index (HNSW) and FlatIndex (tombstones).

The oracle is independent of the code under test: the tests keep their own record of which rows
are live (row -> id, deleted or not) and compare searches with conftest's float64 brute force over
the live rows only. Contract checked:
* a deleted id is never returned (any plan, filtered or not, quantised or not), listed by ids(),
  readable by get_vectors / get_attributes, or counted by len() / filter_count;
* FlatIndex (quantization none): the exact k nearest live rows; Index: recall >= 0.95 at a large
  ef; missing results are -1 / +inf;
* delete is all or nothing; its id is free to be added again (a new row);
* save / load / mmap keep deletions; a corrupt DELR section raises ValueError.
"""

from __future__ import annotations

import struct
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vecdex
from vdx_file import rewrite, sections
from vecdex import field
from vecdex.filters import compile_filter

from conftest import METRICS, assert_valid_knn, clustered, dist_tolerance, exact_distances, recall

KINDS = ("hnsw", "flat")


def _new(kind, dim, metric="l2", **kw):
    if kind == "hnsw":
        return vecdex.Index(dim=dim, metric=metric, M=8, ef_construction=64, seed=7, **kw)
    return vecdex.FlatIndex(dim=dim, metric=metric, **kw)


def _search(index, q, k, ef=None, **kw):
    if isinstance(index, vecdex.Index):
        return index.search(q, k=k, ef=ef, **kw)
    return index.search(q, k=k, **kw)


class Model:
    """What the index should hold: every row ever added, its id, its group, and whether it is live."""

    def __init__(self, dim):
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.ids = np.zeros(0, dtype=np.int64)
        self.group = np.zeros(0, dtype=np.int64)
        self.live = np.zeros(0, dtype=bool)

    def add(self, index, vectors, ids, group):
        index.add(vectors, ids=ids, attributes={"g": group})
        self.vectors = np.vstack([self.vectors, vectors])
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.group = np.concatenate([self.group, np.asarray(group, dtype=np.int64)])
        self.live = np.concatenate([self.live, np.ones(len(ids), dtype=bool)])

    def delete(self, index, ids):
        index.delete(ids)
        for i in ids:
            (rows,) = np.nonzero((self.ids == i) & self.live)
            assert len(rows) == 1
            self.live[rows[0]] = False

    def rows(self, mask=None):
        m = self.live if mask is None else self.live & mask
        return self.vectors[m], self.ids[m]

    def dead_ids(self):
        return set(self.ids[~self.live].tolist()) - set(self.ids[self.live].tolist())


def _build(kind, metric, n, dim, delete_frac, seed, **kw):
    rng = np.random.default_rng(seed)
    index = _new(kind, dim, metric, schema={"g": "int"}, **kw)
    model = Model(dim)
    base = clustered(n, dim, n_clusters=max(1, min(20, n // 10)), seed=seed)
    ids = rng.permutation(10 * n)[:n] + 3  # sparse, shuffled ids
    model.add(index, base, ids, rng.integers(0, 4, size=n))
    n_del = int(round(delete_frac * n))
    if n_del:
        victims = rng.choice(ids, size=n_del, replace=False)
        # in a few calls, as an application would
        for part in np.array_split(victims, int(rng.integers(1, 4))):
            model.delete(index, part)
    return index, model, rng


def _check_no_dead(model, ids):
    dead = model.dead_ids()
    assert not (set(ids.ravel().tolist()) & dead), "a deleted id was returned"


def _assert_padded(ids, dists, m):
    assert np.all(ids[:, m:] == -1)
    assert np.all(np.isposinf(dists[:, m:]))


# --------------------------------------------------------------------------
# property test: search after deletes == brute force over the live rows
# --------------------------------------------------------------------------
# indexes of 1-250 rows with 0-100% of them deleted, searched with or without a filter
_AFTER_DELETES = dict(n=st.integers(1, 250), dim=st.integers(2, 12),
                      frac=st.sampled_from([0.0, 0.02, 0.3, 0.75, 0.95, 1.0]), metric=st.sampled_from(METRICS),
                      k=st.integers(1, 25), filtered=st.booleans(), seed=st.integers(0, 2**31 - 1))


@given(**_AFTER_DELETES)
def test_flat_search_equals_brute_force_over_live_rows(n, dim, frac, metric, k, filtered, seed):
    index, model, rng = _build("flat", metric, n, dim, frac, seed)
    queries = clustered(5, dim, seed=seed + 1)
    if filtered:
        ids, dists, plans = index.search(queries, k=k, filter=field("g") < 2, explain=True)
        base, ext = model.rows(model.group < 2)
    else:
        ids, dists, plans = index.search(queries, k=k, explain=True)
        base, ext = model.rows()
    assert all(p["matches"] == len(ext) for p in plans)
    _check_no_dead(model, ids)
    assert_valid_knn(ids, dists, base, queries, k, metric, ext_ids=ext, exact=True)
    _assert_padded(ids, dists, min(k, len(ext)))
    assert len(index) == int(model.live.sum())


@given(**_AFTER_DELETES, plan=st.sampled_from(["auto", "auto", "exact_scan", "post_filter", "filtered_graph"]))
def test_hnsw_search_after_deletes(n, dim, frac, metric, k, filtered, plan, seed):
    index, model, rng = _build("hnsw", metric, n, dim, frac, seed)
    queries = clustered(5, dim, seed=seed + 1)
    flt = field("g") < 2 if filtered else None
    ids, dists, plans = index.search(queries, k=k, ef=256, filter=flt, plan=plan, explain=True)
    base, ext = model.rows(model.group < 2) if filtered else model.rows()
    assert all(p["matches"] == len(ext) for p in plans)
    _check_no_dead(model, ids)
    # every result is a live (matching) row at its exact distance, ascending, no duplicates
    assert_valid_knn(ids, dists, base, queries, k, metric, ext_ids=ext, exact=False)
    # with fewer than k live rows every one of them is found (the fall-back scan guarantees it)
    m = min(k, len(ext))
    assert np.all(ids[:, :m] >= 0)
    _assert_padded(ids, dists, m)
    # a forced filtered_graph walk (matching rows only, bridging two hops) may strand on tiny
    # sparse data, deletions or not: the planner would not choose it there, so only validity
    # is asked of it; the planner's choice, exact scans and post-filtered walks must find the
    # nearest live rows
    if len(ext) and plan != "filtered_graph":
        assert recall(ids, base, queries, k, metric, ids=ext) >= 0.95


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("filtered", [False, True])
@pytest.mark.parametrize("plan", ["auto", "post_filter", "filtered_graph"])
def test_hnsw_recall_after_many_deletes(metric, filtered, plan):
    # a fixed seed, a realistic size; the forced plans walk the graph, which still routes
    # through the deleted rows (the planner prefers an exact scan at this size)
    dim = 16
    index, model, rng = _build("hnsw", metric, 3000, dim, 0.4, seed=11)
    queries = clustered(100, dim, seed=12)
    flt = field("g") != 3 if filtered else None
    # inner product on unnormalised data needs a wider beam on this graph, deletions or not
    # (without any, ef=128 finds ~0.85 of the true neighbours)
    ef = 400 if metric == "ip" else 128
    ids, dists, plans = index.search(queries, k=10, ef=ef, filter=flt, plan=plan, explain=True)
    if plan != "auto":
        assert {p["plan"] for p in plans} == {plan}
    base, ext = model.rows(model.group != 3) if filtered else model.rows()
    _check_no_dead(model, ids)
    assert_valid_knn(ids, dists, base, queries, 10, metric, ext_ids=ext, exact=False)
    assert recall(ids, base, queries, 10, metric, ids=ext) >= 0.95


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("quantization", ["sq8", "rabitq4"])
@pytest.mark.parametrize("filtered", [False, True])
def test_quantised_rerank_after_deletes(kind, quantization, filtered):
    dim, metric = 32, "l2"
    index, model, rng = _build(kind, metric, 1500, dim, 0.5, seed=5, quantization=quantization)
    queries = clustered(60, dim, seed=6)
    flt = field("g") <= 2 if filtered else None
    ids, dists = _search(index, queries, 10, ef=128 if kind == "hnsw" else None, rerank=8, filter=flt)
    base, ext = model.rows(model.group <= 2) if filtered else model.rows()
    _check_no_dead(model, ids)
    # re-ranked: each returned distance is the exact one of its (live) row
    assert_valid_knn(ids, dists, base, queries, 10, metric, ext_ids=ext, exact=False)
    assert recall(ids, base, queries, 10, metric, ids=ext) >= 0.95


@pytest.mark.parametrize("kind", KINDS)
def test_k_larger_than_live_rows_pads(kind):
    index, model, _ = _build(kind, "l2", 40, 4, 0.9, seed=3)
    live = int(model.live.sum())
    assert live == len(index) == 4
    ids, dists = _search(index, clustered(3, 4, seed=4), 10)
    assert np.all(ids[:, :live] >= 0)
    assert sorted(ids[0, :live].tolist()) == sorted(model.rows()[1].tolist())
    _assert_padded(ids, dists, live)


# --------------------------------------------------------------------------
# everything deleted
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_delete_everything(kind):
    index, model, _ = _build(kind, "cosine", 120, 8, 1.0, seed=2)
    assert len(index) == 0
    assert index.ids().shape == (0,)
    q = clustered(4, 8, seed=9)
    for flt in (None, field("g") >= 0):
        ids, dists, plans = _search(index, q, 5, filter=flt, explain=True)
        assert np.all(ids == -1) and np.all(np.isposinf(dists))
        assert all(p["plan"] == "empty" and p["matches"] == 0 for p in plans)
    ast = compile_filter(field("g") >= 0, index.schema)
    assert index._native.filter_count(ast) == 0
    assert len(index._native.filter_ids(ast)) == 0
    assert "size=0" in repr(index)
    # and the index still takes new vectors, which are then found
    fresh = clustered(30, 8, seed=10)
    index.add(fresh, ids=np.arange(1000, 1030), attributes={"g": [1] * 30})
    ids, dists = _search(index, fresh[:3], 1, ef=64)
    assert ids[:, 0].tolist() == [1000, 1001, 1002]


# --------------------------------------------------------------------------
# what a deleted id looks like through the rest of the API
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_deleted_rows_are_invisible(kind):
    index, model, _ = _build(kind, "l2", 200, 6, 0.0, seed=4)
    victims = model.ids[[0, 5, 77, 199]]
    model.delete(index, victims)
    assert len(index) == 196
    assert index.ids().tolist() == model.ids[model.live].tolist()  # insertion order, live only
    for v in victims:
        for call in (lambda: index.get_vectors([v]), lambda: index.get_attributes([v]),
                     lambda: index.update_attributes([v], {"g": [1]})):
            with pytest.raises(ValueError, match=f"id {v} "):
                call()
    for g in range(4):
        ast = compile_filter(field("g") == g, index.schema)
        want = model.ids[model.live & (model.group == g)]
        assert index._native.filter_count(ast) == len(want)
        assert index._native.filter_ids(ast).tolist() == want.tolist()
    # a query placed exactly on a deleted vector does not find it
    q = model.vectors[[0, 5, 77, 199]]
    ids, _ = _search(index, q, 20, ef=200)
    _check_no_dead(model, ids)
    # deleting more works, and deleted ids cannot be deleted twice
    with pytest.raises(ValueError, match=f"id {victims[1]} is not in the index"):
        index.delete([victims[1]])


@pytest.mark.parametrize("kind", KINDS)
def test_memory_usage_counts_the_deleted_bitset(kind):
    index, model, _ = _build(kind, "l2", 1000, 4, 0.0, seed=1)
    before = index.memory_usage()
    assert before.get("deleted", 0) == 0
    index.delete(model.ids[:10])
    after = index.memory_usage()
    assert after["deleted"] >= 1000 // 8
    assert after["total"] == sum(v for k, v in after.items() if k != "total")


@pytest.mark.parametrize("kind", KINDS)
def test_readd_deleted_id(kind):
    dim = 8
    index, model, rng = _build(kind, "l2", 300, dim, 0.0, seed=8)
    victim = int(model.ids[42])
    old = model.vectors[42].copy()
    model.delete(index, [victim])
    new = (model.vectors[43] + 0.01).astype(np.float32)  # elsewhere: beside another row
    model.add(index, new[None], [victim], [3])
    assert len(index) == 300
    np.testing.assert_array_equal(index.get_vectors([victim])[0], new)
    assert index.get_attributes([victim])["g"] == [3]
    assert index.ids().tolist().count(victim) == 1
    assert index.ids()[-1] == victim  # the new row comes last
    # a query at the old vector never sees the old row: the id, if returned, is at the new distance
    ids, dists = _search(index, old[None], 300, ef=400)
    hits = np.nonzero(ids[0] == victim)[0]
    assert len(hits) == 1
    want = exact_distances(new[None], old[None], "l2")[0, 0]
    assert abs(dists[0, hits[0]] - want) <= dist_tolerance(new[None], old[None], "l2")[0]
    ids, dists = _search(index, new[None], 1, ef=64)
    assert ids[0, 0] == victim and dists[0, 0] <= 1e-6
    # it can be deleted again; then neither row is visible
    model.delete(index, [victim])
    assert victim not in index.ids().tolist()
    ids, _ = _search(index, np.vstack([old, new]), 300, ef=400)
    assert victim not in ids.ravel().tolist()


@pytest.mark.parametrize("kind", KINDS)
def test_default_ids_continue_after_deleted_ones(kind):
    index = _new(kind, 4)
    index.add(np.eye(4, dtype=np.float32))  # ids 0..3
    index.delete([3])
    index.add(np.ones((1, 4), dtype=np.float32))
    assert index.ids().tolist() == [0, 1, 2, 4]


@pytest.mark.parametrize("kind", KINDS)
def test_add_after_deletes_keeps_working(kind):
    dim = 12
    index, model, rng = _build(kind, "l2", 800, dim, 0.5, seed=21)
    extra = clustered(800, dim, seed=22)
    model.add(index, extra, np.arange(10**6, 10**6 + 800), rng.integers(0, 4, size=800))
    model.delete(index, rng.choice(model.ids[model.live], size=200, replace=False))
    queries = clustered(50, dim, seed=23)
    ids, dists = _search(index, queries, 10, ef=128)
    base, ext = model.rows()
    _check_no_dead(model, ids)
    assert_valid_knn(ids, dists, base, queries, 10, "l2", ext_ids=ext, exact=kind == "flat")
    assert recall(ids, base, queries, 10, "l2", ids=ext) >= 0.95


# --------------------------------------------------------------------------
# errors: all or nothing
# --------------------------------------------------------------------------
def _snapshot(index, queries):
    return (len(index), index.ids().tolist(), *(a.tolist() for a in _search(index, queries, 5, ef=64)))


@pytest.mark.parametrize("kind", KINDS)
def test_delete_errors_change_nothing(kind):
    index, model, _ = _build(kind, "l2", 100, 4, 0.1, seed=13)
    live = model.ids[model.live]
    dead = sorted(model.dead_ids())[0]
    q = clustered(3, 4, seed=14)
    before = _snapshot(index, q)
    absent = int(model.ids.max()) + 1
    cases = [
        ([live[0], absent, live[1]], ValueError, f"id {absent} is not in the index"),
        ([live[0], dead], ValueError, f"id {dead} is not in the index"),
        ([live[2], live[3], live[2]], ValueError, f"id {live[2]} is given twice"),
        ([live[0], -1], ValueError, "non-negative"),
        (np.array([[live[0]]]), ValueError, "1-D"),
        (np.array([float(live[0])]), TypeError, "integers"),
        (np.array([True]), TypeError, "integers"),
        (["a"], TypeError, "integers"),
        ([2**64 - 1], ValueError, r"2\*\*63"),
    ]
    for ids, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            index.delete(ids)
        assert _snapshot(index, q) == before, ids
    index.delete([])  # nothing to do
    index.delete(np.zeros(0, dtype=np.int64))
    assert _snapshot(index, q) == before
    index.delete(int(live[0]))  # one int is one id
    assert len(index) == before[0] - 1


@pytest.mark.parametrize("kind", KINDS)
def test_delete_on_mmap_index_is_read_only(tmp_path, kind):
    index, model, _ = _build(kind, "l2", 50, 4, 0.0, seed=1)
    path = tmp_path / "ix.vdx"
    index.save(path)
    ro = vecdex.load(path, mmap=True)
    with pytest.raises(ValueError, match="read-only"):
        ro.delete([model.ids[0]])
    with pytest.raises(ValueError, match="read-only"):
        ro.delete([])  # the same check as add(), before anything else
    assert len(ro) == 50


# --------------------------------------------------------------------------
# save / load / mmap
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_keeps_deletions(tmp_path, kind, mmap):
    dim = 8
    index, model, rng = _build(kind, "cosine", 500, dim, 0.3, seed=31)
    # a re-added id: the file then holds it twice, once on a deleted row
    victim = int(model.ids[model.live][0])
    model.delete(index, [victim])
    model.add(index, clustered(1, dim, seed=32), [victim], [0])
    path = tmp_path / "ix.vdx"
    index.save(path)
    assert b"DELR" in sections(path.read_bytes())
    back = vecdex.load(path, mmap=mmap)
    assert len(back) == len(index) == int(model.live.sum())
    assert back.ids().tolist() == index.ids().tolist()
    queries = clustered(20, dim, seed=33)
    for flt in (None, field("g") == 1):
        a = _search(index, queries, 10, ef=100, filter=flt)
        b = _search(back, queries, 10, ef=100, filter=flt)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        _check_no_dead(model, b[0])
    np.testing.assert_array_equal(back.get_vectors([victim]), index.get_vectors([victim]))
    dead = sorted(model.dead_ids())
    with pytest.raises(ValueError, match="not in the index"):
        back.get_vectors(dead[:1])
    assert back.memory_usage()["deleted"] > 0
    if not mmap:
        # the loaded index keeps deleting and adding, and saves again
        more = [int(i) for i in back.ids()[:5]]
        back.delete(more)
        back.add(clustered(1, dim, seed=34), ids=[dead[0]], attributes={"g": [2]})
        back.save(tmp_path / "again.vdx")
        again = vecdex.load(tmp_path / "again.vdx")
        assert again.ids().tolist() == back.ids().tolist()
        assert not set(more) & set(again.ids().tolist())


@pytest.mark.parametrize("kind", KINDS)
def test_no_deletions_no_section(tmp_path, kind):
    index, model, _ = _build(kind, "l2", 50, 4, 0.0, seed=1)
    index.save(tmp_path / "ix.vdx")
    assert b"DELR" not in sections((tmp_path / "ix.vdx").read_bytes())
    assert vecdex.load(tmp_path / "ix.vdx").ids().tolist() == model.ids.tolist()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mmap", [False, True])
def test_corrupt_deleted_section(tmp_path, kind, mmap):
    n = 100  # not a multiple of 64: the last word has bits past the last row
    index, model, _ = _build(kind, "l2", n, 4, 0.0, seed=41)
    victim = int(model.ids[3])
    model.delete(index, [victim, int(model.ids[70])])
    model.add(index, clustered(1, 4, seed=42), [victim], [0])  # row n: victim again
    path = tmp_path / "ix.vdx"
    index.save(path)
    blob = path.read_bytes()
    off, length, _ = sections(blob)[b"DELR"]
    words = list(struct.unpack_from(f"<{length // 8}Q", blob, off))
    assert length == ((n + 1 + 63) // 64) * 8
    assert words[0] == 1 << 3 and words[1] == 1 << (70 - 64)

    def bad(new_words):
        return rewrite(blob, b"DELR", struct.pack(f"<{len(new_words)}Q", *new_words), same_length=False)

    cases = {
        "short": bad(words[:-1]),
        "past the last row": bad(words[:-1] + [words[-1] | (1 << 63)]),
        "two live rows with one id": bad([words[0] & ~(1 << 3)] + words[1:]),
    }
    for name, corrupt in cases.items():
        p = tmp_path / f"{name}.vdx"
        p.write_bytes(corrupt)
        with pytest.raises(ValueError, match="corrupt"):
            vecdex.load(p, mmap=mmap)
    # the untouched file loads
    assert vecdex.load(path, mmap=mmap).ids().tolist() == index.ids().tolist()


# --------------------------------------------------------------------------
# threads
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_searches_concurrent_with_deletes(kind):
    dim = 16
    index, model, rng = _build(kind, "l2", 3000, dim, 0.0, seed=51)
    queries = clustered(32, dim, seed=52)
    order = rng.permutation(model.ids)
    deleted_before = set()  # ids whose delete() returned before a search began
    lock = threading.Lock()
    errors = []
    searches = [0]  # completed searches, all threads together
    done = threading.Event()

    def searcher(filtered):
        try:
            while not done.is_set():
                with lock:
                    gone = set(deleted_before)
                ids, _ = _search(index, queries, 10, ef=64, filter=field("g") < 3 if filtered else None,
                                 num_threads=1)
                assert not (set(ids.ravel().tolist()) & gone)
                with lock:
                    searches[0] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=searcher, args=(f,)) for f in (False, True, False)]
    for t in threads:
        t.start()
    try:
        for part in np.array_split(order[:2900], 29):
            index.delete(part)
            with lock:
                deleted_before.update(int(i) for i in part)
                start = searches[0]
            # let a few searches run against this state before the next delete
            deadline = time.monotonic() + 5.0
            while not errors and time.monotonic() < deadline:
                with lock:
                    if searches[0] >= start + 3:
                        break
                time.sleep(0.001)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert searches[0] >= 29 * 3
    assert len(index) == 100
    assert sorted(index.ids().tolist()) == sorted(int(i) for i in order[2900:])
