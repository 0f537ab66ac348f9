"""Quantised storage (fp16, bf16, sq8, sq8u, sq4) in FlatIndex and Index.

Everything is checked against numpy float64 brute force on the original vectors: recall with
re-ranking, decode error within each code's bound, exact distances after re-ranking, and save /
load / mmap round trips.
"""
from __future__ import annotations

import numpy as np
import pytest

import vecdex
from conftest import METRICS, brute_force, clustered, exact_distances, recall

QUANTS = ("fp16", "bf16", "sq8", "sq8u", "sq4")
K = 10
# Candidates re-scored per result: 4-bit codes (15 steps per dimension) need a deeper pool.
RERANK = {"fp16": 2, "bf16": 2, "sq8": 4, "sq8u": 4, "sq4": 10}


@pytest.fixture(scope="module")
def data():
    base, queries = clustered(4000, 48, n_clusters=40, seed=7, n_queries=100)
    return base, queries


def _stored(base, metric):
    """What the index stores: cosine rows are unit-normalised."""
    if metric != "cosine":
        return base.astype(np.float64)
    b = base.astype(np.float64)
    return b / np.linalg.norm(b, axis=1, keepdims=True)


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("metric", METRICS)
def test_flat_rerank_recall(data, quant, metric):
    base, queries = data
    index = vecdex.FlatIndex(dim=base.shape[1], metric=metric, quantization=quant)
    index.add(base)
    ids, dists = index.search(queries, k=K, rerank=RERANK[quant])
    assert recall(ids, base, queries, K, metric) >= 0.95
    # Re-ranked distances are exact distances of the returned ids.
    exact = exact_distances(base, queries, metric)
    np.testing.assert_allclose(dists, np.take_along_axis(exact, ids, axis=1), rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(dists, axis=1) >= 0)


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_hnsw_rerank_recall(data, quant, metric):
    base, queries = data
    index = vecdex.Index(dim=base.shape[1], metric=metric, M=16, ef_construction=100, seed=1, quantization=quant)
    index.add(base)
    ids, _ = index.search(queries, k=K, ef=128, rerank=RERANK[quant])
    assert recall(ids, base, queries, K, metric) >= 0.95


@pytest.mark.parametrize("quant", QUANTS)
def test_decode_error_within_bound(data, quant):
    base, _ = data
    index = vecdex.FlatIndex(dim=base.shape[1], metric="l2", quantization=quant, keep_full_vectors=False)
    index.add(base)
    decoded = index.get_vectors(np.arange(len(base))).astype(np.float64)
    x = base.astype(np.float64)
    err = np.abs(decoded - x)
    if quant == "fp16":
        assert np.all(err <= np.abs(x) * 2.0**-11 + 2.0**-24)
    elif quant == "bf16":
        assert np.all(err <= np.abs(x) * 2.0**-8)
    else:
        if quant == "sq8u":
            step = np.full(x.shape[1], (x.max() - x.min()) / 255)
        else:
            levels = 255 if quant == "sq8" else 15
            step = (x.max(axis=0) - x.min(axis=0)) / levels
        # Rounding to the nearest of the evenly spaced levels: at most half a step (+ float slack).
        assert np.all(err <= step / 2 * (1 + 1e-4) + 1e-6)


@pytest.mark.parametrize("quant", QUANTS)
def test_bytes_per_vector(data, quant):
    base, _ = data
    n, d = base.shape
    index = vecdex.FlatIndex(dim=d, metric="l2", quantization=quant, keep_full_vectors=False)
    index.add(base)
    mem = index.memory_usage()
    per_row = {"fp16": 2 * d, "bf16": 2 * d, "sq8": d, "sq8u": d + 4, "sq4": (d + 1) // 2}[quant]
    assert n * per_row <= mem["codes"] <= n * per_row * 1.3 + 8 * d + 4096
    assert mem["vectors"] == 0
    full = vecdex.FlatIndex(dim=d, metric="l2", quantization=quant)
    full.add(base)
    assert full.memory_usage()["vectors"] >= n * d * 4


@pytest.mark.parametrize("quant", QUANTS)
def test_rerank_without_full_vectors_raises(data, quant):
    base, queries = data
    index = vecdex.Index(dim=base.shape[1], metric="l2", quantization=quant, keep_full_vectors=False)
    index.add(base[:500])
    ids, _ = index.search(queries[:3], k=5)  # approximate distances, allowed
    assert ids.shape == (3, 5)
    with pytest.raises(ValueError, match="keep_full_vectors"):
        index.search(queries[:3], k=5, rerank=2)


def test_unknown_quantization_raises():
    with pytest.raises(ValueError, match="quantization"):
        vecdex.Index(dim=4, quantization="sq3")
    with pytest.raises(ValueError, match="quantization"):
        vecdex.FlatIndex(dim=4, quantization=8)


def test_train_before_add_sets_ranges(data):
    base, _ = data
    d = base.shape[1]
    sample = base[:200] * 4.0  # a wider range than the data
    a = vecdex.FlatIndex(dim=d, metric="l2", quantization="sq8", keep_full_vectors=False)
    a.train(sample)
    a.add(base[:100])
    decoded = a.get_vectors(np.arange(100)).astype(np.float64)
    step = (sample.max(axis=0) - sample.min(axis=0)).astype(np.float64) / 255
    assert np.all(np.abs(decoded - base[:100]) <= step / 2 * (1 + 1e-4) + 1e-6)
    with pytest.raises(ValueError, match="before the first add"):
        a.train(sample)


@pytest.mark.parametrize("quant", QUANTS + ("rabitq1", "rabitq3", "rabitq4", "rabitq8"))
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("keep", [True, False])
def test_save_load_round_trip(tmp_path, data, quant, kind, keep):
    base, queries = data
    d = base.shape[1]
    if kind == "flat":
        index = vecdex.FlatIndex(dim=d, metric="cosine", quantization=quant, keep_full_vectors=keep)
    else:
        index = vecdex.Index(dim=d, metric="cosine", M=8, ef_construction=40, quantization=quant, keep_full_vectors=keep)
    index.add(base[:1500])
    want = index.search(queries, k=K)
    path = tmp_path / "q.vdx"
    index.save(path)
    for mmap in (False, True):
        loaded = vecdex.load(path, mmap=mmap)
        assert type(loaded) is type(index)
        assert loaded.quantization == quant and loaded.has_full_vectors == keep
        got = loaded.search(queries, k=K)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    # A loaded (not mapped) quantised index keeps accepting vectors, encoded with the saved
    # quantiser state exactly as the original encodes them.
    loaded = vecdex.load(path)
    loaded.add(base[1500:1600])
    index.add(base[1500:1600])
    assert len(loaded) == 1600
    np.testing.assert_array_equal(loaded.search(queries, k=K)[1], index.search(queries, k=K)[1])


@pytest.mark.parametrize("quant", ["sq8", "sq4", "sq8u"])
def test_values_outside_trained_range_saturate(quant):
    d = 8
    index = vecdex.FlatIndex(dim=d, metric="l2", quantization=quant, keep_full_vectors=False)
    index.add(np.zeros((2, d), np.float32) + np.array([[0.0], [1.0]], np.float32))
    index.add(np.full((1, d), 10.0, np.float32))  # far outside [0, 1]
    v = index.get_vectors([2])
    np.testing.assert_allclose(v, np.ones((1, d)), atol=1e-6)
    ids, _ = index.search(np.full(d, 10.0, np.float32), k=1)
    assert ids[0] in (1, 2)


def test_quantized_search_matches_own_brute_force(data):
    """Without re-ranking, FlatIndex on codes is exact with respect to the decoded vectors."""
    base, queries = data
    index = vecdex.FlatIndex(dim=base.shape[1], metric="l2", quantization="sq8", keep_full_vectors=False)
    index.add(base)
    decoded = index.get_vectors(np.arange(len(base)))
    want_ids, _ = brute_force(decoded, queries, K, "l2")
    ids, _ = index.search(queries, k=K)
    assert recall(ids, decoded, queries, K, "l2", tol=1e-3) >= 0.99


@pytest.mark.parametrize("bits", [4, 8])
def test_pq_settings_shape_the_codes_and_survive_save(tmp_path, data, bits):
    base, queries = data
    n, d = base.shape
    index = vecdex.FlatIndex(dim=d, metric="l2", quantization="pq", pq_subquantizers=12, pq_bits=bits)
    index.add(base)
    code_bytes = index.memory_usage()["codes"]
    per_row = 12 * bits // 8
    codebooks = 12 * 2**bits * (d // 12) * 4
    # Held bytes may include growth capacity, but scale with the code width.
    assert n * per_row <= code_bytes <= 3 * (n + 32) * per_row + codebooks + 4096
    want = index.search(queries, k=K, rerank=10)
    assert recall(want[0], base, queries, K, "l2") >= 0.95
    index.save(tmp_path / "pq.vdx")
    got = vecdex.load(tmp_path / "pq.vdx").search(queries, k=K, rerank=10)
    np.testing.assert_array_equal(got[0], want[0])


def test_pq_settings_are_checked():
    with pytest.raises(ValueError, match="pq_bits"):
        vecdex.Index(dim=16, quantization="pq", pq_bits=5)
    with pytest.raises(ValueError, match="only to quantization='pq'"):
        vecdex.FlatIndex(dim=16, quantization="sq8", pq_subquantizers=4)
    with pytest.raises(ValueError, match="subquantizers"):
        vecdex.FlatIndex(dim=16, quantization="pq", pq_subquantizers=17)
    with pytest.raises(ValueError, match="pq_subquantizers"):
        vecdex.FlatIndex(dim=16, quantization="pq", pq_subquantizers=0)
