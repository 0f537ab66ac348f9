"""HNSW Index: recall vs exact search on seeded clustered data + invariants."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, strategies as st

import vecdex

from conftest import (
    METRICS,
    assert_valid_knn,
    clustered,
    exact_distances,
    normalize64,
    recall,
)

N, DIM, NQ, K = 5000, 32, 200, 10
M, EFC = 16, 100


def _data(metric, seed=0):
    # spread=1.0: the 50 clusters overlap, so low ef visibly loses recall
    # (ef=10 gives ~0.91 here) and the thresholds below are not trivially met.
    # "ip" uses the raw (unnormalised) vectors: real maximum-inner-product search.
    return clustered(N, DIM, seed=seed, n_queries=NQ, spread=1.0)


@pytest.fixture(scope="module", params=METRICS)
def built(request):
    metric = request.param
    base, queries = _data(metric)
    index = vecdex.Index(dim=DIM, metric=metric, M=M, ef_construction=EFC, seed=0)
    index.add(base)
    return metric, base, queries, index


def test_recall_default_ef(built):
    metric, base, queries, index = built
    ids, dists = index.search(queries, k=K)  # ef=None -> max(k, 64)
    r = recall(ids, base, queries, K, metric)
    assert r >= 0.95, f"{metric}: recall@10 {r:.4f} at default ef"


@pytest.mark.parametrize("ef", [64, 100, 200])
def test_recall_ef(built, ef):
    metric, base, queries, index = built
    ids, _ = index.search(queries, k=K, ef=ef)
    r = recall(ids, base, queries, K, metric)
    assert r >= 0.95, f"{metric}: recall@10 {r:.4f} at ef={ef}"


def test_recall_rises_with_ef(built):
    metric, base, queries, index = built
    rs = {ef: recall(index.search(queries, k=K, ef=ef)[0], base, queries, K, metric)
          for ef in (10, 32, 128, 400)}
    assert rs[400] >= 0.99, rs
    # monotonic up to noise, and a real gain over the smallest ef
    assert rs[32] >= rs[10] - 0.002, rs
    assert rs[128] >= rs[32] - 0.002, rs
    assert rs[400] >= rs[128] - 0.002, rs
    assert rs[400] > rs[10], rs


def test_recall_vs_flat_index(built):
    metric, base, queries, index = built
    flat = vecdex.FlatIndex(dim=DIM, metric=metric)
    flat.add(base)
    fids, fd = flat.search(queries, k=K)
    hids, hd = index.search(queries, k=K, ef=128)
    overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(fids.tolist(), hids.tolist())])
    assert overlap >= 0.95, overlap
    # the approximate k-th distance can never beat the exact k-th distance
    assert np.all(hd[:, -1] >= fd[:, -1] - 1e-4 * (1 + np.abs(fd[:, -1])))


def test_result_invariants(built):
    metric, base, queries, index = built
    ids, dists = index.search(queries, k=K, ef=64)
    # sorted, unique, dists = exact distance of the returned ids
    assert_valid_knn(ids, dists, base, queries, K, metric, exact=False)


def test_ef_none_is_max_k_64(built):
    metric, base, queries, index = built
    q = queries[:50]
    a = index.search(q, k=K)
    b = index.search(q, k=K, ef=64)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # k > 64: ef defaults to k
    a = index.search(q, k=80)
    b = index.search(q, k=80, ef=80)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_ef_smaller_than_k_raised_to_k(built):
    metric, base, queries, index = built
    q = queries[:20]
    ids, dists = index.search(q, k=50, ef=5)
    assert ids.shape == (20, 50)
    assert np.all(ids >= 0), "ef < k must be raised to k, so k results are found"
    ids2, dists2 = index.search(q, k=50, ef=50)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(dists, dists2)


def test_search_deterministic(built):
    metric, base, queries, index = built
    a = index.search(queries, k=K, ef=64)
    b = index.search(queries, k=K, ef=64)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_self_query_finds_itself(built):
    metric, base, queries, index = built
    if metric == "ip":
        pytest.skip("under ip a point need not be its own nearest neighbour")
    sel = np.arange(0, N, 50)
    ids, dists = index.search(base[sel], k=1, ef=64)
    assert np.mean(ids[:, 0] == sel) >= 0.98


def test_properties(built):
    metric, base, queries, index = built
    assert len(index) == N
    assert index.dim == DIM
    assert index.metric == metric
    assert index.M == M
    assert index.ef_construction == EFC
    ids = index.ids()
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, np.arange(N))


@pytest.mark.parametrize("metric", METRICS)
def test_custom_ids_and_batches(metric):
    n = 2000
    base, queries = clustered(n, 24, seed=3, n_queries=100, spread=0.8)
    rng = np.random.default_rng(4)
    ext = rng.choice(2**63 - 1, size=n, replace=False).astype(np.uint64)
    ext[0] = 2**63 - 1  # the largest allowed id
    ext[1] = 0
    index = vecdex.Index(dim=24, metric=metric, M=12, ef_construction=80, seed=1)
    for a, b in [(0, 1), (1, 300), (300, 301), (301, 1500), (1500, 1500), (1500, n)]:
        index.add(base[a:b], ids=ext[a:b])
    assert len(index) == n
    np.testing.assert_array_equal(index.ids(), ext.astype(np.int64))
    ids, dists = index.search(queries, k=K, ef=100)
    assert set(ids.ravel().tolist()) <= set(ext.astype(np.int64).tolist())
    r = recall(ids, base, queries, K, metric, ids=ext.astype(np.int64))
    assert r >= 0.95, r
    assert_valid_knn(ids, dists, base, queries, K, metric, ext_ids=ext.astype(np.int64), exact=False)


def test_default_ids_continue():
    index = vecdex.Index(dim=4, metric="l2", seed=0)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    index.add(x[:2])
    index.add(x[2:4], ids=[100, 7])
    index.add(x[4:])
    np.testing.assert_array_equal(index.ids(), [0, 1, 100, 7, 101, 102])


def test_batched_add_recall():
    base, queries = clustered(4000, 32, seed=5, n_queries=100)
    index = vecdex.Index(dim=32, metric="l2", M=16, ef_construction=100, seed=0)
    for chunk in np.array_split(np.arange(4000), 7):
        index.add(base[chunk])
    np.testing.assert_array_equal(index.ids(), np.arange(4000))
    r = recall(index.search(queries, k=K, ef=100)[0], base, queries, K, "l2")
    assert r >= 0.95, r


@pytest.mark.parametrize("metric", METRICS)
def test_seed_reproducible_single_thread(metric):
    base, queries = clustered(1500, 16, seed=6, n_queries=60)
    res = []
    for _ in range(2):
        index = vecdex.Index(dim=16, metric=metric, M=8, ef_construction=50, seed=42)
        index.add(base[:700], num_threads=1)
        index.add(base[700:], num_threads=1)
        res.append(index.search(queries, k=K, ef=20))
    np.testing.assert_array_equal(res[0][0], res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])


def test_different_seed_still_good():
    base, queries = clustered(1500, 16, seed=6, n_queries=60)
    for seed in (1, 2):
        index = vecdex.Index(dim=16, metric="l2", M=8, ef_construction=50, seed=seed)
        index.add(base, num_threads=1)
        assert recall(index.search(queries, k=K, ef=64)[0], base, queries, K, "l2") >= 0.95


@pytest.mark.parametrize("num_threads", [0, 2, 4])
def test_multithreaded_add_recall(num_threads):
    base, queries = clustered(N, DIM, seed=7, n_queries=NQ, spread=1.0)
    index = vecdex.Index(dim=DIM, metric="l2", M=M, ef_construction=EFC, seed=0)
    index.add(base, num_threads=num_threads)
    assert len(index) == N
    np.testing.assert_array_equal(np.sort(index.ids()), np.arange(N))
    ids, dists = index.search(queries, k=K, ef=100)
    r = recall(ids, base, queries, K, "l2")
    assert r >= 0.95, r
    assert_valid_knn(ids, dists, base, queries, K, "l2", exact=False)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n", [0, 1, 2, 5, 9])
def test_small_index_padding(metric, n):
    rng = np.random.default_rng(n)
    base = rng.normal(size=(n, 6)).astype(np.float32)
    queries = rng.normal(size=(4, 6)).astype(np.float32)
    index = vecdex.Index(dim=6, metric=metric, M=4, ef_construction=16, seed=0)
    index.add(base)
    ids, dists = index.search(queries, k=10)
    # with fewer than ef nodes the search is exhaustive: exact answer + padding
    assert_valid_knn(ids, dists, base, queries, 10, metric, exact=True)


@given(
    n=st.integers(0, 120),
    dim=st.integers(1, 12),
    k=st.integers(1, 20),
    metric=st.sampled_from(METRICS),
    seed=st.integers(0, 2**32 - 1),
)
def test_small_index_exhaustive_property(n, dim, k, metric, seed):
    # With ef > n the search visits every node reachable from the entry point.
    # For the metric cases (l2, cosine) a single-threaded build of a graph this
    # small (M=8 -> up to 16 links on layer 0) reaches every node, so the answer
    # is exact.  "ip" is not a metric (a point is not its own nearest neighbour)
    # and the pruning heuristic can legitimately orphan nodes there, so only the
    # result invariants are checked for it.
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, dim)).astype(np.float32)
    queries = rng.normal(size=(3, dim)).astype(np.float32)
    index = vecdex.Index(dim=dim, metric=metric, M=8, ef_construction=64, seed=seed % 1000)
    index.add(base, num_threads=1)
    ids, dists = index.search(queries, k=k, ef=max(n, k, 1) + 10)
    assert_valid_knn(ids, dists, base, queries, k, metric, exact=(metric != "ip"))


def _level0_graph(path):
    """(links per row, entry row) read straight from a saved HNSW file (see docs/format.md)."""
    raw = open(path, "rb").read()
    count, table_offset = struct.unpack_from("<I", raw, 40)[0], struct.unpack_from("<Q", raw, 48)[0]
    sections = {}
    for i in range(count):
        sid, _crc, off, length = struct.unpack_from("<IIQQ", raw, table_offset + 32 * i)
        sections[sid.to_bytes(4, "little").decode()] = raw[off : off + length]
    params = dict(line.split("=", 1) for line in sections["PARM"].decode().splitlines())
    n = struct.unpack_from("<Q", raw, 32)[0]
    level0 = np.frombuffer(sections["GL0L"], dtype=np.uint32).reshape(n, -1)
    return [row[1 : 1 + row[0]] for row in level0], int(params["entry"])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("num_threads", [1, 2, 4])
def test_every_node_reachable_from_entry(tmp_path, metric, num_threads):
    """No node may be cut off from the entry point on layer 0, whatever the metric or threads.

    The pruning heuristic alone cuts off a node in roughly one build of this size in 150 (far
    more under "ip", which is not a metric, with M=4), and a race once lost 10-25 nodes over
    these builds; the index repairs reachability after adds.
    """
    n = 300
    lost = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        base = rng.normal(size=(n, 8)).astype(np.float32)
        index = vecdex.Index(dim=8, metric=metric, M=4, ef_construction=32, seed=seed)
        index.add(base, num_threads=num_threads)
        path = tmp_path / f"g{seed}.vdx"
        index.save(path)
        links, entry = _level0_graph(path)
        reached, stack = {entry}, [entry]
        while stack:
            for v in links[stack.pop()]:
                if int(v) not in reached:
                    reached.add(int(v))
                    stack.append(int(v))
        if len(reached) != n:
            lost.append((seed, sorted(set(range(n)) - reached)))
    assert not lost, f"rows unreachable from the entry point (seed, rows): {lost}"


def test_every_node_found_by_exhaustive_search():
    """With k = ef = n a search returns every row (metric data, several threads)."""
    n = 300
    for seed in range(8):
        rng = np.random.default_rng(seed)
        base = rng.normal(size=(n, 8)).astype(np.float32)
        index = vecdex.Index(dim=8, metric="l2", M=8, ef_construction=64, seed=seed)
        index.add(base, num_threads=2)
        ids, _ = index.search(base[:1], k=n, ef=n)
        assert set(ids[0].tolist()) == set(range(n)), f"seed {seed}"


def test_cosine_query_scale_invariant(built):
    metric, base, queries, index = built
    if metric != "cosine":
        pytest.skip("cosine only")
    q = queries[:50]
    a = index.search(q, k=K, ef=64)
    b = index.search(q * np.float32(7.25), k=K, ef=64)
    c = index.search(q * np.float32(0.01), k=K, ef=64)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)
    np.testing.assert_allclose(a[1], c[1], atol=1e-5)


def test_cosine_stored_vectors_normalised():
    rng = np.random.default_rng(11)
    x = (rng.normal(size=(50, 10)) * rng.uniform(0.1, 50, size=(50, 1))).astype(np.float32)
    for cls in (vecdex.Index, vecdex.FlatIndex):
        index = cls(dim=10, metric="cosine")
        index.add(x, num_threads=1)
        got = index.get_vectors(np.arange(50))
        assert got.dtype == np.float32 and got.shape == (50, 10)
        np.testing.assert_allclose(np.linalg.norm(got.astype(np.float64), axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(got, normalize64(x), atol=1e-5)
        # and base scale does not change cosine results
        index2 = cls(dim=10, metric="cosine")
        index2.add(x * np.float32(3.0), num_threads=1)
        q = rng.normal(size=(5, 10)).astype(np.float32)
        np.testing.assert_array_equal(index.search(q, k=5)[0], index2.search(q, k=5)[0])


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_get_vectors_roundtrip(metric):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(30, 5)).astype(np.float32)
    index = vecdex.Index(dim=5, metric=metric)
    index.add(x, ids=np.arange(30)[::-1])
    np.testing.assert_array_equal(index.get_vectors([29, 0, 10]), x[[0, 29, 19]])


def test_dists_match_exact_distance_of_returned_ids(built):
    metric, base, queries, index = built
    ids, dists = index.search(queries[:100], k=K, ef=32)  # low ef: approximate answers too
    d = exact_distances(base, queries[:100], metric)
    want = np.take_along_axis(d, ids, axis=1)
    np.testing.assert_allclose(dists, want, rtol=1e-4, atol=1e-4)


def test_one_d_query(built):
    metric, base, queries, index = built
    ids, dists = index.search(queries[0], k=K, ef=64)
    assert ids.shape == (K,) and dists.shape == (K,)
    ids2, dists2 = index.search(queries[:1], k=K, ef=64)
    np.testing.assert_array_equal(ids, ids2[0])
    np.testing.assert_array_equal(dists, dists2[0])


def test_zero_queries(built):
    metric, base, queries, index = built
    ids, dists = index.search(np.zeros((0, DIM), dtype=np.float32), k=K)
    assert ids.shape == (0, K) and dists.shape == (0, K)
    assert ids.dtype == np.int64 and dists.dtype == np.float32


def test_duplicate_vectors():
    # every vector stored 5 times (ties everywhere): insertion and search still work
    u, queries = clustered(600, 16, seed=1, n_queries=100)
    base = np.repeat(u, 5, axis=0)
    index = vecdex.Index(dim=16, metric="l2", M=8, ef_construction=100, seed=0)
    index.add(base, num_threads=1)
    ids, dists = index.search(queries, k=K, ef=64)
    assert recall(ids, base, queries, K, "l2") >= 0.95
    assert_valid_knn(ids, dists, base, queries, K, "l2", exact=False)
    # an exact copy of a stored vector finds a copy at distance 0
    sid, sd = index.search(u[:100], k=1, ef=64)
    assert np.all(sd[:, 0] <= 1e-5)
    assert np.all(sid[:, 0] // 5 == np.arange(100))
