"""Range indexes (issue 5): Index.build_range_index(field), range predicates walked on it.

Every test compares against brute force over the rows the filter matches, computed here."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecdex
from vdx_file import rewrite, section_bytes
from vecdex import field

K = 10


def _clustered(n, dim, seed, n_clusters=16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)) * 2.0
    lab = rng.integers(0, n_clusters, size=n)
    return (centres[lab] + rng.normal(size=(n, dim))).astype(np.float32)


def _exact(base, queries, mask, k, metric="l2"):
    """ids (nq, k) of the k nearest rows with mask[q, row] (ties by row), -1 padded."""
    if metric == "l2":
        d = ((queries[:, None, :].astype(np.float64) - base[None].astype(np.float64)) ** 2).sum(axis=2)
    else:
        d = -(queries.astype(np.float64) @ base.T.astype(np.float64))
    d = np.where(mask, d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    out = np.where(np.take_along_axis(d, order, axis=1) < np.inf, order, -1)
    return out, d


def _recall(got, want):
    hits = total = 0
    for g, w in zip(got, want):
        w = set(w[w >= 0].tolist())
        total += len(w)
        hits += len(w & set(g[g >= 0].tolist()))
    return hits / total if total else 1.0


def _build(base, values, M=16, ef_construction=100, kind="int", extra=None, metric="l2"):
    index = vecdex.Index(dim=base.shape[1], metric=metric, M=M, ef_construction=ef_construction, seed=3,
                         schema={"x": kind, "tag": "keyword"})
    attrs = {"x": list(values), "tag": extra if extra is not None else ["a"] * len(base)}
    index.add(base, attributes=attrs)
    index.build_range_index("x")
    return index


def _in_range(values, lo, hi):
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    return (v >= lo) & (v <= hi)


# ------------------------------------------------------------------------------- correctness

@pytest.fixture(scope="module")
def dup_index():
    """3,000 rows, int values with many duplicates (0..299), some rows without a value."""
    rng = np.random.default_rng(11)
    base = _clustered(3000, 12, seed=11)
    values = [int(v) for v in rng.integers(0, 300, size=3000)]
    for i in rng.choice(3000, 40, replace=False):
        values[i] = None
    return base, values, _build(base, values)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lo=st.integers(-20, 320), width=st.integers(-3, 330), k=st.sampled_from([1, 5, 10, 50]),
       plan=st.sampled_from(["auto", "range_graph"]), seed=st.integers(0, 2**16))
def test_range_results_exact_membership(dup_index, lo, width, k, plan, seed):
    """Results are always inside the range, there are min(k, matches) of them, and they match
    the exact answer at recall >= 0.9 per batch (empty ranges, single values, both ends)."""
    base, values, index = dup_index
    hi = lo + width
    rng = np.random.default_rng(seed)
    queries = base[rng.integers(0, len(base), 8)] + rng.normal(scale=0.3, size=(8, base.shape[1])).astype(np.float32)
    mask = _in_range(values, lo, hi)
    matches = int(mask.sum())
    if plan == "range_graph" and matches > 0:
        ids, dist = index.search(queries, k=k, ef=max(64, k), filter=field("x").between(lo, hi), plan=plan)
    else:
        ids, dist = index.search(queries, k=k, ef=max(64, k), filter={"x": {"$gte": lo, "$lte": hi}})
    got = ids[ids >= 0]
    assert mask[got].all()
    assert ((ids >= 0).sum(axis=1) == min(k, matches)).all()
    assert np.isfinite(dist[ids >= 0]).all() and np.isinf(dist[ids < 0]).all()
    want, _ = _exact(base, queries, np.broadcast_to(mask, (len(queries), len(base))), k)
    assert _recall(ids, want) >= 0.9


def test_single_value_and_ends(dup_index):
    base, values, index = dup_index
    v = np.array([-1 if x is None else x for x in values])
    queries = base[:20] + 0.1
    for lo, hi in [(0, 0), (299, 299), (150, 150), (-5, 0), (299, 400), (0, 299), (301, 900), (10, 5)]:
        mask = (v >= lo) & (v <= hi)
        mask &= np.array([x is not None for x in values])
        for plan in ("auto", "range_graph") if mask.any() else ("auto",):
            ids, _ = index.search(queries, k=K, ef=100, filter=field("x").between(lo, hi), plan=plan)
            assert mask[ids[ids >= 0]].all()
            assert ((ids >= 0).sum(axis=1) == min(K, int(mask.sum()))).all()
            want, _ = _exact(base, queries, np.broadcast_to(mask, (20, len(base))), K)
            assert _recall(ids, want) >= 0.95, (lo, hi, plan)


@pytest.mark.parametrize("kind", ["int", "float"])
@pytest.mark.parametrize("correlated", [False, True])
@pytest.mark.parametrize("frac", [0.01, 0.1, 0.3])
def test_range_walk_recall(kind, correlated, frac):
    """The range walk itself (forced) reaches recall@10 >= 0.95 on random ranges of a given
    share of the rows, with the attribute independent of or correlated with the vectors."""
    n, dim = 8000, 24
    base = _clustered(n, dim, seed=5)
    rng = np.random.default_rng(6)
    if correlated:
        raw = base @ rng.normal(size=dim) + rng.normal(scale=0.5, size=n)
    else:
        raw = rng.normal(size=n)
    values = np.round(raw * 100).astype(np.int64) if kind == "int" else raw
    index = _build(base, [v.item() for v in values], kind=kind)
    srt = np.sort(values)
    queries = _clustered(100, dim, seed=7)
    width = max(1, int(frac * n))
    starts = rng.integers(0, n - width + 1, size=len(queries))
    filters, masks = [], []
    for s in starts:
        lo, hi = srt[s].item(), srt[s + width - 1].item()
        filters.append({"x": {"$gte": lo, "$lte": hi}})
        masks.append((values >= lo) & (values <= hi))
    masks = np.array(masks)
    ids, _, plans = index.search(queries, k=K, ef=64, filter=filters, plan="range_graph", explain=True)
    assert all(p["plan"] == "range_graph" for p in plans)
    assert all(masks[q, ids[q][ids[q] >= 0]].all() for q in range(len(queries)))
    want, _ = _exact(base, queries, masks, K)
    assert _recall(ids, want) >= 0.95
    # and the planner's own choice is at least as good
    ids_auto, _ = index.search(queries, k=K, ef=64, filter=filters)
    assert _recall(ids_auto, want) >= 0.95


def test_planner_chooses_by_span():
    n = 6000
    base = _clustered(n, 16, seed=1)
    values = list(range(n))
    index = _build(base, values)
    q = base[:5]
    plan_of = lambda lo, hi: {p["plan"] for p in index.search(q, k=K, ef=32, filter=field("x").between(lo, hi),
                                                                explain=True)[2]}
    assert plan_of(0, 20) == {"exact_scan"}          # a few rows: scanned
    assert plan_of(1000, 2499) == {"range_graph"}    # a quarter: the range index
    assert plan_of(0, n) == {"graph"}                # everything: the plain graph
    assert plan_of(0, int(0.8 * n)) <= {"post_filter", "exact_scan"}
    assert plan_of(n + 5, n + 10) == {"empty"}


def test_range_combined_with_other_predicates():
    """A range and-ed with a keyword predicate: the range index walks, the rest is checked."""
    n = 20000
    base = _clustered(n, 16, seed=2)
    rng = np.random.default_rng(2)
    values = rng.integers(0, 1000, size=n)
    tags = rng.choice(["a", "b"], size=n, p=[0.8, 0.2])
    index = _build(base, values.tolist(), extra=tags.tolist())
    queries = _clustered(50, 16, seed=3)
    flt = (field("x").between(100, 400)) & (field("tag") == "a")
    ids, _, plans = index.search(queries, k=K, ef=80, filter=flt, explain=True)
    mask = (values >= 100) & (values <= 400) & (tags == "a")
    assert {p["plan"] for p in plans} == {"range_graph"}
    assert mask[ids[ids >= 0]].all()
    want, _ = _exact(base, queries, np.broadcast_to(mask, (50, n)), K)
    assert _recall(ids, want) >= 0.95
    # a rare second predicate leaves the range to the general planner
    rare = (field("x").between(100, 400)) & (field("tag") == "b")
    plans = index.search(queries, k=K, filter=rare, explain=True)[2]
    assert "range_graph" not in {p["plan"] for p in plans}


# ------------------------------------------------------------------------------- live data

def test_delta_rows_and_updates_then_optimize(tmp_path):
    n = 4000
    base = _clustered(n + 500, 16, seed=9)
    values = np.arange(n + 500) % 1000
    index = _build(base[:n], values[:n].tolist())
    queries = base[n:n + 40] + 0.05
    # rows added after the build: the queries' own near-duplicates, inside the range
    index.add(base[n:], ids=np.arange(n, n + 500), attributes={"x": values[n:].tolist(), "tag": ["a"] * 500})
    mask = (values >= 0) & (values <= 300)
    for plan in ("auto", "range_graph"):
        ids, _ = index.search(queries, k=K, ef=64, filter=field("x").between(0, 300), plan=plan)
        assert mask[ids[ids >= 0]].all()
        want, _ = _exact(base, queries, np.broadcast_to(mask, (40, n + 500)), K)
        assert _recall(ids, want) >= 0.95
    # move rows into and out of the range by updating the field
    moved_in = np.arange(2000, 2100)
    moved_out = np.flatnonzero(mask[:n])[:200]
    index.update_attributes(moved_in, {"x": [5] * 100})
    index.update_attributes(moved_out, {"x": [900] * 200})
    values2 = values.copy()
    values2[moved_in] = 5
    values2[moved_out] = 900
    mask2 = (values2 >= 0) & (values2 <= 300)
    q2 = np.concatenate([base[moved_in[:20]] + 0.01, queries[:20]])
    want2, _ = _exact(base, q2, np.broadcast_to(mask2, (40, n + 500)), K)
    before = index.search(q2, k=K, ef=64, filter=field("x").between(0, 300), plan="range_graph")[0]
    assert mask2[before[before >= 0]].all()
    assert _recall(before, want2) >= 0.95
    index.optimize()
    after, _, plans = index.search(q2, k=K, ef=64, filter=field("x").between(0, 300), plan="range_graph",
                                   explain=True)
    assert mask2[after[after >= 0]].all()
    assert _recall(after, want2) >= 0.95
    # after optimize nothing is left to scan beside the walk: fewer distances than before
    index.save(tmp_path / "r.vdx")
    loaded = vecdex.load(tmp_path / "r.vdx")
    np.testing.assert_array_equal(
        loaded.search(q2, k=K, ef=64, filter=field("x").between(0, 300), plan="range_graph")[0], after)


# ------------------------------------------------------------------------------- persistence

@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, dup_index, mmap):
    base, values, index = dup_index
    path = tmp_path / "r.vdx"
    index.save(path)
    loaded = vecdex.load(path, mmap=mmap)
    assert loaded.range_index_fields == ["x"]
    assert loaded.memory_usage()["range_index"] == index.memory_usage()["range_index"] > 0
    queries = base[:30] + 0.2
    flt = [{"x": {"$gte": int(a), "$lte": int(a) + 40}} for a in np.arange(30) * 9]
    for plan in ("auto", "range_graph"):
        a = index.search(queries, k=K, ef=64, filter=flt, plan=plan)
        b = loaded.search(queries, k=K, ef=64, filter=flt, plan=plan)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    if mmap:
        with pytest.raises(ValueError, match="read-only"):
            loaded.build_range_index("x")
        with pytest.raises(ValueError, match="read-only"):
            loaded.optimize()


def test_corrupt_range_sections_raise(tmp_path, dup_index):
    """Range sections rewritten with valid checksums: the reader's own checks reject them."""
    _, _, index = dup_index
    path = tmp_path / "r.vdx"
    index.save(path)
    blob = path.read_bytes()
    links = bytearray(section_bytes(blob, b"RNL0"))
    links[2:4] = (0xFFFF).to_bytes(2, "little")  # position 0's first link: far outside its segment
    order = bytearray(section_bytes(blob, b"RNO0"))
    order[0:4], order[4:8] = order[4:8], order[0:4]  # two rows swapped: the order is no longer sorted
    keys = np.frombuffer(section_bytes(blob, b"RNK0"), np.int64).copy()
    keys[-1] = keys[0] - 1
    for sid, data in ((b"RNL0", bytes(links)), (b"RNO0", bytes(order)), (b"RNK0", keys.tobytes())):
        (tmp_path / "bad.vdx").write_bytes(rewrite(blob, sid, data))
        with pytest.raises(ValueError, match="range index"):
            vecdex.load(tmp_path / "bad.vdx")
    (tmp_path / "short.vdx").write_bytes(rewrite(blob, b"RNL0", bytes(links[:-2]), same_length=False))
    with pytest.raises(ValueError):
        vecdex.load(tmp_path / "short.vdx")


def test_memory_within_twice_the_plain_index():
    base = _clustered(20000, 64, seed=4)
    index = vecdex.Index(dim=64, M=16, ef_construction=60, schema={"x": "float"})
    index.add(base, attributes={"x": np.random.default_rng(0).normal(size=20000).tolist()})
    plain = index.memory_usage()["total"]
    index.build_range_index("x")
    mem = index.memory_usage()
    assert mem["total"] == plain + mem["range_index"]
    assert mem["total"] <= 2 * plain


# ------------------------------------------------------------------------------- bad input

def test_errors():
    base = _clustered(300, 8, seed=0)
    index = vecdex.Index(dim=8, schema={"x": "int", "name": "keyword"})
    index.add(base, attributes={"x": list(range(300)), "name": ["n"] * 300})
    with pytest.raises(ValueError, match="unknown field 'nope'"):
        index.build_range_index("nope")
    with pytest.raises(ValueError, match="'name'.*int or float"):
        index.build_range_index("name")
    with pytest.raises(TypeError):
        index.build_range_index(3)
    with pytest.raises(ValueError, match="range_graph"):
        index.search(base[:2], k=3, filter=field("x") > 5, plan="range_graph")
    index.build_range_index("x")
    with pytest.raises(ValueError, match="range_graph"):
        index.search(base[:2], k=3, filter=field("name") == "n", plan="range_graph")
    with pytest.raises(ValueError, match="range_graph"):
        index.search(base[:2], k=3, plan="range_graph")
    assert not hasattr(vecdex.FlatIndex(dim=8), "build_range_index")


def test_empty_and_tiny_indexes():
    index = vecdex.Index(dim=4, schema={"x": "int"})
    index.build_range_index("x")
    ids, _ = index.search(np.zeros((2, 4), np.float32), k=3, filter=field("x").between(0, 10))
    assert (ids == -1).all()
    index.add(np.eye(4, dtype=np.float32), attributes={"x": [1, 2, 3, None]})
    index.build_range_index("x")
    ids, _ = index.search(np.eye(4, dtype=np.float32), k=5, filter=field("x").between(2, 3), plan="range_graph")
    assert sorted(set(ids[ids >= 0].tolist())) == [1, 2]
    assert ((ids >= 0).sum(axis=1) == 2).all()


def test_deletes_respected():
    """Deleted rows never come back from a range search (walk, delta scan or fall-back), and the
    answer matches brute force over the live rows in range, before and after optimize()."""
    n = 5000
    base = _clustered(n + 300, 16, seed=21)
    values = np.random.default_rng(21).integers(0, 500, size=n + 300)
    index = _build(base[:n], values[:n].tolist())
    index.add(base[n:], ids=np.arange(n, n + 300), attributes={"x": values[n:].tolist(), "tag": ["a"] * 300})
    queries = base[::50][:60] + 0.02
    rng = np.random.default_rng(22)
    gone = rng.choice(n + 300, 1500, replace=False)
    # the queries' own near-duplicates among them, in the built part and in the delta
    gone = np.unique(np.concatenate([gone, np.arange(0, n + 300, 50)[:60]]))
    index.delete(gone)
    live = np.ones(n + 300, bool)
    live[gone] = False
    for step in ("before", "after"):
        for lo, hi in [(0, 120), (200, 210), (0, 499), (480, 499)]:
            mask = (values >= lo) & (values <= hi) & live
            for plan in ("auto", "range_graph"):
                ids, _ = index.search(queries, k=K, ef=80, filter=field("x").between(lo, hi), plan=plan)
                assert live[ids[ids >= 0]].all() and mask[ids[ids >= 0]].all()
                assert ((ids >= 0).sum(axis=1) == min(K, int(mask.sum()))).all()
                want, _ = _exact(base, queries, np.broadcast_to(mask, (len(queries), n + 300)), K)
                assert _recall(ids, want) >= 0.95, (step, lo, hi, plan)
        index.optimize()
