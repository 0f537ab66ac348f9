"""Product quantisation (quantization="pq") in FlatIndex and Index.

Defaults under test: 4-bit codes (16 centroids per sub-space, fast-scan layout) with
dim // 2 sub-quantizers, i.e. two dimensions per sub-vector and dim / 4 bytes per row.
Everything is checked against numpy float64 brute force on the original vectors: recall with
re-ranking, exact distances after re-ranking, decode quality, memory, save / load / mmap round
trips, and bit-identical results at every SIMD level (the fast-scan sums are integers and the
encoder never fuses multiply-adds).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecdex
from conftest import METRICS, clustered, exact_distances, recall

if "pq" not in getattr(vecdex._index, "QUANTIZATIONS", ()):
    pytest.skip("pq quantization not built in", allow_module_level=True)

from vecdex import _core  # noqa: E402

K = 10
RERANK = 10  # 2 bits per dimension: a deeper candidate pool than sq8


@pytest.fixture(scope="module")
def data():
    base, queries = clustered(4000, 48, n_clusters=40, seed=7, n_queries=100)
    return base, queries


@pytest.mark.parametrize("metric", METRICS)
def test_flat_rerank_recall(data, metric):
    base, queries = data
    index = vecdex.FlatIndex(dim=base.shape[1], metric=metric, quantization="pq")
    assert index.quantization == "pq"
    index.add(base)
    ids, dists = index.search(queries, k=K, rerank=RERANK)
    assert recall(ids, base, queries, K, metric) >= 0.95
    exact = exact_distances(base, queries, metric)
    np.testing.assert_allclose(dists, np.take_along_axis(exact, ids, axis=1), rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(dists, axis=1) >= 0)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_hnsw_rerank_recall(data, metric):
    base, queries = data
    index = vecdex.Index(dim=base.shape[1], metric=metric, M=16, ef_construction=100, seed=1, quantization="pq")
    index.add(base)
    ids, _ = index.search(queries, k=K, ef=128, rerank=RERANK)
    assert recall(ids, base, queries, K, metric) >= 0.95


def test_codes_rank_better_than_chance(data):
    """Without re-ranking the ranking comes from the codes alone: far from exact, far from random."""
    base, queries = data
    index = vecdex.FlatIndex(dim=base.shape[1], metric="l2", quantization="pq", keep_full_vectors=False)
    index.add(base)
    ids, dists = index.search(queries, k=K)
    assert recall(ids, base, queries, K, "l2") >= 0.3
    assert np.all(np.diff(dists, axis=1) >= 0)
    # Estimated distances to every row track the exact ones.
    ids, dists = index.search(queries[:10], k=len(base))
    assert np.all(np.sort(ids, axis=1) == np.arange(len(base)))
    exact = np.take_along_axis(exact_distances(base, queries[:10], "l2"), ids, axis=1)
    for row_est, row_exact in zip(dists, exact):
        assert np.corrcoef(row_est, row_exact)[0, 1] > 0.9


def test_decode_quality(data):
    base, _ = data
    index = vecdex.FlatIndex(dim=base.shape[1], metric="l2", quantization="pq", keep_full_vectors=False)
    index.add(base)
    decoded = index.get_vectors(np.arange(len(base))).astype(np.float64)
    x = base.astype(np.float64)
    err = ((decoded - x) ** 2).sum(axis=1).mean()
    spread = ((x - x.mean(axis=0)) ** 2).sum(axis=1).mean()
    assert err < 0.1 * spread


def test_bytes_per_vector(data):
    base, _ = data
    n, d = base.shape
    index = vecdex.FlatIndex(dim=d, metric="l2", quantization="pq", keep_full_vectors=False)
    index.add(base)
    mem = index.memory_usage()
    per_row = d // 4  # d/2 sub-quantizers of 4 bits
    # codes (whole blocks of 32 rows, geometric growth) + codebooks (16 centroids per sub-space,
    # plus their transposed copy and norms)
    assert n * per_row <= mem["codes"] <= n * per_row * 2.1 + 16 * d * 4 * 3 + 4096
    assert mem["vectors"] == 0


def test_train_before_add(data):
    base, queries = data
    d = base.shape[1]
    a = vecdex.FlatIndex(dim=d, metric="l2", quantization="pq")
    a.train(base[:2000])
    a.add(base[:100])
    a.add(base[100:])
    ids, _ = a.search(queries, k=K, rerank=RERANK)
    assert recall(ids, base, queries, K, "l2") >= 0.95
    with pytest.raises(ValueError, match="before the first add"):
        a.train(base[:10])


def test_tiny_first_batch_then_more(data):
    """Fewer training rows than centroids: codebooks are the rows themselves; later rows still encode."""
    base, queries = data
    d = base.shape[1]
    index = vecdex.FlatIndex(dim=d, metric="l2", quantization="pq")
    index.add(base[:5])
    index.add(base[5:300])
    ids, dists = index.search(queries[:10], k=5, rerank=60)  # 300 candidates: exact
    want = np.argsort(exact_distances(base[:300], queries[:10], "l2"), axis=1, kind="stable")[:, :5]
    assert recall(ids, base[:300], queries[:10], 5, "l2") == 1.0
    assert ids.shape == want.shape


@pytest.mark.parametrize("dim", [1, 3, 7, 33])
def test_dims_not_divisible(dim):
    base, queries = clustered(1500, dim, n_clusters=20, seed=dim, n_queries=20)
    index = vecdex.FlatIndex(dim=dim, metric="l2", quantization="pq")
    index.add(base)
    # dim 1 has a single sub-space of 16 cells (~90 rows each, equal estimates): a deep pool.
    ids, dists = index.search(queries, k=5, rerank=60)
    assert recall(ids, base, queries, 5, "l2") >= 0.9
    decoded = vecdex.FlatIndex(dim=dim, metric="l2", quantization="pq", keep_full_vectors=False)
    decoded.add(base)
    assert decoded.get_vectors(np.arange(10)).shape == (10, dim)


def test_unaligned_sizes_and_threads(data):
    """Row counts that end mid-block, and scans split across threads at arbitrary rows."""
    base, queries = data
    d = base.shape[1]
    for n in (1, 31, 33, 1001):
        index = vecdex.FlatIndex(dim=d, metric="l2", quantization="pq", keep_full_vectors=False)
        index.add(base[:n])
        one, d1 = index.search(queries[:3], k=min(K, n), num_threads=1)
        many, dm = index.search(queries[:3], k=min(K, n), num_threads=4)
        np.testing.assert_array_equal(one, many)
        np.testing.assert_array_equal(d1, dm)
        assert np.all(one >= 0) and np.all(one < n)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("keep", [True, False])
def test_save_load_round_trip(tmp_path, data, kind, keep):
    base, queries = data
    d = base.shape[1]
    if kind == "flat":
        index = vecdex.FlatIndex(dim=d, metric="cosine", quantization="pq", keep_full_vectors=keep)
    else:
        index = vecdex.Index(dim=d, metric="cosine", M=8, ef_construction=40, quantization="pq",
                             keep_full_vectors=keep)
    index.add(base[:1500])
    want = index.search(queries, k=K)
    path = tmp_path / "pq.vdx"
    index.save(path)
    for mmap in (False, True):
        loaded = vecdex.load(path, mmap=mmap)
        assert loaded.quantization == "pq"
        assert loaded.has_full_vectors == keep
        assert len(loaded) == 1500
        got = loaded.search(queries, k=K)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(loaded.get_vectors(np.arange(20)), index.get_vectors(np.arange(20)))
        if not mmap:
            loaded.add(base[1500:1600])  # appends into the partly filled last block
            assert len(loaded) == 1600
            ids, _ = loaded.search(base[1550:1551], k=1, rerank=50 if keep else None)
            if keep:
                assert ids[0, 0] == 1550


def test_rerank_without_full_vectors_raises(data):
    base, queries = data
    index = vecdex.Index(dim=base.shape[1], metric="l2", quantization="pq", keep_full_vectors=False)
    index.add(base[:500])
    ids, _ = index.search(queries[:3], k=5)
    assert ids.shape == (3, 5)
    with pytest.raises(ValueError, match="keep_full_vectors"):
        index.search(queries[:3], k=5, rerank=2)


# --------------------------------------------------------------------------
# Bit-identical at every SIMD level
# --------------------------------------------------------------------------
_RUN = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import vecdex
    sys.path.insert(0, {tests!r})
    from conftest import clustered
    base, queries = clustered(3000, 40, n_clusters=30, seed=3, n_queries=30)
    out = {{"level": vecdex.simd_level()}}
    for metric in ("l2", "ip"):
        index = vecdex.FlatIndex(dim=40, metric=metric, quantization="pq", keep_full_vectors=False)
        index.add(base)
        ids, dists = index.search(queries, k=10, num_threads=1)
        out[metric] = [ids.tolist(), dists.astype(np.float64).tolist(),
                       index.get_vectors(np.arange(50)).astype(np.float64).tolist()]
    print(json.dumps(out))
    """
)


def _run_level(level):
    env = dict(os.environ)
    env["VECDEX_SIMD"] = level
    code = _RUN.format(tests=os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_simd_levels_bit_identical():
    """Codes (nearest centroid) and fast-scan estimates do not depend on the SIMD level."""
    levels = vecdex.available_simd_levels()
    if len(levels) < 2:
        pytest.skip("only one SIMD level on this machine")
    ref = _run_level("scalar")
    assert ref["level"] == "scalar"
    for level in levels:
        if level == "scalar":
            continue
        got = _run_level(level)
        assert got["level"] == level
        for metric in ("l2", "ip"):
            assert got[metric] == ref[metric], (level, metric)


# --------------------------------------------------------------------------
# Kernel tables directly (when the test bindings of cpp/bindings/pq_kernels_py.h are built in)
# --------------------------------------------------------------------------
needs_kernels = pytest.mark.skipif(not hasattr(_core, "pq_kernel_tables"), reason="pq kernel bindings not built in")


@needs_kernels
@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 24, 96, 192, 257, 300])
def test_fastscan_tables_equal_scalar_and_numpy(m):
    rng = np.random.default_rng(m)
    nblocks = 3
    codes = rng.integers(0, 256, size=nblocks * 16 * m, dtype=np.uint8)
    lut = rng.integers(0, 256, size=16 * m, dtype=np.uint8)
    c = codes.reshape(nblocks, m, 16).astype(np.int64)
    t = lut.reshape(m, 16).astype(np.int64)
    want = np.zeros((nblocks, 32), dtype=np.int64)
    for s in range(m):
        want[:, :16] += t[s][c[:, s] & 15]
        want[:, 16:] += t[s][c[:, s] >> 4]
    want = (want.reshape(-1) % 65536).astype(np.uint16)  # modulo 2**16 past 257 * 255
    for name in _core.pq_kernel_tables():
        np.testing.assert_array_equal(_core.pq_fastscan4(name, codes, m, lut), want, err_msg=name)


@needs_kernels
@pytest.mark.parametrize("dsub", [1, 2, 3, 4, 8, 12])
@pytest.mark.parametrize("ksub", [16, 24, 256])
def test_nearest_tables_equal_scalar(dsub, ksub):
    rng = np.random.default_rng(dsub * 1000 + ksub)
    x = rng.normal(size=(700, dsub)).astype(np.float32)
    cb = rng.normal(size=(ksub, dsub)).astype(np.float32)
    cb[7] = cb[3]  # a tie: the lowest index wins
    ct = np.ascontiguousarray(cb.T)
    cnorm = (cb.astype(np.float32) ** 2).sum(axis=1, dtype=np.float32)
    ref = _core.pq_nearest("scalar", x, ct, cnorm)
    assert not np.any(ref == 7)
    true = ((x[:, None, :].astype(np.float64) - cb[None].astype(np.float64)) ** 2).sum(-1).argmin(axis=1)
    assert np.mean(ref == true) > 0.99
    for name in _core.pq_kernel_tables():
        np.testing.assert_array_equal(_core.pq_nearest(name, x, ct, cnorm), ref, err_msg=name)
