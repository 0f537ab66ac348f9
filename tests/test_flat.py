"""FlatIndex must be exact: compare against numpy brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import vecdex

from conftest import METRICS, assert_valid_knn, brute_force, clustered, exact_distances


@st.composite
def flat_case(draw):
    n = draw(st.integers(0, 300))
    dim = draw(st.integers(1, 40))
    k = draw(st.integers(1, n + 5))
    nq = draw(st.integers(0, 12))
    metric = draw(st.sampled_from(METRICS))
    seed = draw(st.integers(0, 2**32 - 1))
    integer_data = draw(st.booleans())  # small ints -> lots of exact ties
    return n, dim, k, nq, metric, seed, integer_data


@given(flat_case())
def test_flat_matches_brute_force(case):
    n, dim, k, nq, metric, seed, integer_data = case
    rng = np.random.default_rng(seed)
    if integer_data:
        base = rng.integers(-3, 4, size=(n, dim)).astype(np.float32)
        queries = rng.integers(-3, 4, size=(nq, dim)).astype(np.float32)
        if metric == "cosine":  # zero vectors have no direction
            base[np.all(base == 0, axis=1), 0] = 1
            queries[np.all(queries == 0, axis=1), 0] = 1
    else:
        base = rng.normal(size=(n, dim)).astype(np.float32)
        queries = rng.normal(size=(nq, dim)).astype(np.float32)
    index = vecdex.FlatIndex(dim=dim, metric=metric)
    index.add(base)
    assert len(index) == n
    ids, dists = index.search(queries, k=k)
    assert_valid_knn(ids, dists, base, queries, k, metric)
    # the default ids are 0..n-1 in insertion order
    np.testing.assert_array_equal(index.ids(), np.arange(n))


@given(
    n=st.integers(1, 200),
    dim=st.integers(1, 24),
    k=st.integers(1, 30),
    metric=st.sampled_from(METRICS),
    seed=st.integers(0, 2**32 - 1),
)
def test_flat_custom_ids_and_batches(n, dim, k, metric, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, dim)).astype(np.float32)
    ext = rng.choice(2**62, size=n, replace=False).astype(np.int64) * 2 + 1  # < 2**63
    queries = rng.normal(size=(5, dim)).astype(np.float32)
    index = vecdex.FlatIndex(dim=dim, metric=metric)
    cuts = sorted(rng.integers(0, n + 1, size=2).tolist())
    for a, b in [(0, cuts[0]), (cuts[0], cuts[1]), (cuts[1], n)]:
        index.add(base[a:b], ids=ext[a:b].astype(np.uint64))
    assert len(index) == n
    np.testing.assert_array_equal(index.ids(), ext)
    ids, dists = index.search(queries, k=k)
    assert_valid_knn(ids, dists, base, queries, k, metric, ext_ids=ext)


@pytest.mark.parametrize("metric", METRICS)
def test_flat_clustered_exact(metric):
    base, queries = clustered(3000, 48, seed=1, n_queries=50)
    index = vecdex.FlatIndex(dim=48, metric=metric)
    index.add(base)
    ids, dists = index.search(queries, k=20)
    assert_valid_knn(ids, dists, base, queries, 20, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_flat_one_d_query(metric):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 8)).astype(np.float32)
    index = vecdex.FlatIndex(dim=8, metric=metric)
    index.add(base)
    q = rng.normal(size=8).astype(np.float32)
    ids, dists = index.search(q, k=5)
    assert ids.shape == (5,) and dists.shape == (5,)
    assert ids.dtype == np.int64 and dists.dtype == np.float32
    ids2, dists2 = index.search(q[None, :], k=5)
    np.testing.assert_array_equal(ids, ids2[0])
    np.testing.assert_array_equal(dists, dists2[0])
    assert_valid_knn(ids[None], dists[None], base, q[None], 5, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_flat_empty_index(metric):
    index = vecdex.FlatIndex(dim=6, metric=metric)
    assert len(index) == 0
    ids, dists = index.search(np.ones((3, 6), dtype=np.float32), k=4)
    assert ids.shape == (3, 4) and dists.shape == (3, 4)
    assert np.all(ids == -1) and np.all(np.isposinf(dists))
    ids, dists = index.search(np.ones(6, dtype=np.float32), k=2)
    assert ids.shape == (2,) and np.all(ids == -1) and np.all(np.isposinf(dists))


@pytest.mark.parametrize("metric", METRICS)
def test_flat_zero_queries(metric):
    index = vecdex.FlatIndex(dim=6, metric=metric)
    index.add(np.random.default_rng(0).normal(size=(10, 6)).astype(np.float32))
    ids, dists = index.search(np.zeros((0, 6), dtype=np.float32), k=3)
    assert ids.shape == (0, 3) and dists.shape == (0, 3)
    assert ids.dtype == np.int64 and dists.dtype == np.float32


def test_flat_padding_when_n_lt_k(metric):
    rng = np.random.default_rng(5)
    base = rng.normal(size=(3, 4)).astype(np.float32)
    index = vecdex.FlatIndex(dim=4, metric=metric)
    index.add(base)
    ids, dists = index.search(rng.normal(size=(2, 4)).astype(np.float32), k=7)
    assert np.all(np.sort(ids[:, :3], axis=1) == np.arange(3))
    assert np.all(ids[:, 3:] == -1)
    assert np.all(np.isfinite(dists[:, :3])) and np.all(np.isposinf(dists[:, 3:]))


def test_flat_empty_add_is_noop(metric):
    index = vecdex.FlatIndex(dim=5, metric=metric)
    index.add(np.zeros((0, 5), dtype=np.float32))
    assert len(index) == 0
    index.add(np.ones((2, 5), dtype=np.float32))
    index.add(np.zeros((0, 5), dtype=np.float32))
    assert len(index) == 2
    np.testing.assert_array_equal(index.ids(), [0, 1])


def test_flat_exact_self_match():
    # every stored vector is its own nearest neighbour under l2 (distance 0)
    base = clustered(500, 16, seed=2)
    index = vecdex.FlatIndex(dim=16, metric="l2")
    index.add(base)
    ids, dists = index.search(base, k=1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(500))
    assert np.all(np.abs(dists[:, 0]) <= 1e-3)


def test_flat_default_ids_continue_from_max():
    index = vecdex.FlatIndex(dim=3, metric="l2")
    index.add(np.eye(3, dtype=np.float32)[:2], ids=[10, 4])
    index.add(np.eye(3, dtype=np.float32)[2:])
    np.testing.assert_array_equal(index.ids(), [10, 4, 11])
    index.add(np.ones((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(index.ids(), [10, 4, 11, 12, 13])


@pytest.mark.parametrize("metric", METRICS)
def test_flat_get_vectors(metric):
    rng = np.random.default_rng(9)
    base = rng.normal(size=(20, 7)).astype(np.float32) * 3
    index = vecdex.FlatIndex(dim=7, metric=metric)
    index.add(base, ids=np.arange(100, 120))
    got = index.get_vectors([105, 100, 119])
    assert got.dtype == np.float32 and got.shape == (3, 7)
    want = base[[5, 0, 19]].astype(np.float64)
    if metric == "cosine":
        want = want / np.linalg.norm(want, axis=1, keepdims=True)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_flat_ip_distance_definition():
    # ip distance is 1 - dot, so it can be negative; check sign / ordering
    base = np.array([[1, 0], [2, 0], [-1, 0]], dtype=np.float32)
    index = vecdex.FlatIndex(dim=2, metric="ip")
    index.add(base)
    ids, dists = index.search(np.array([1, 0], dtype=np.float32), k=3)
    np.testing.assert_array_equal(ids, [1, 0, 2])
    want = exact_distances(base, np.array([[1.0, 0.0]]), "ip")[0]
    np.testing.assert_allclose(want, [0.0, -1.0, 2.0])
    np.testing.assert_allclose(dists, want[[1, 0, 2]], atol=1e-6)


def test_flat_brute_force_helper_sanity():
    # the reference itself: l2 on a trivial configuration
    base = np.array([[0, 0], [3, 4]], dtype=np.float32)
    ids, d = brute_force(base, np.array([[0, 0]], dtype=np.float32), 3, "l2")
    np.testing.assert_array_equal(ids, [[0, 1, -1]])
    np.testing.assert_allclose(d[0, :2], [0, 25])
    assert np.isinf(d[0, 2])
