"""SIMD distance kernels: every available level vs scalar vs numpy float64."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import vecdex
from vecdex import _core

ALL_KNOWN_LEVELS = ("scalar", "avx2", "avx512", "neon")
LEVELS = list(vecdex.available_simd_levels())
DIMS = [1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 383, 384, 768, 1536]
EPS32 = float(np.finfo(np.float32).eps)


def _tol(terms_abs_sum, d):
    """Absolute tolerance for a float32 sum of d terms.

    Rounding error of a float32 accumulation is bounded by ~d*eps*sum|terms|
    (worst case) and is ~sqrt(d)*eps*sum|terms| in practice; we allow
    8*sqrt(d)*eps*sum|terms| (+ a tiny absolute floor).  Dropping even one
    element of a length-d vector gives an error of ~sum|terms|/d, which is
    still well above this for every d tested (1536: 6.5e-4 vs 2.3e-5 rel).
    """
    return 8.0 * np.sqrt(d) * EPS32 * terms_abs_sum + 1e-30


def _pair(rng, d, kind):
    if kind == "normal":
        a = rng.normal(size=d)
        b = rng.normal(size=d)
    elif kind == "offset":  # large common offset: stresses cancellation in l2
        a = rng.normal(size=d) + 10.0
        b = rng.normal(size=d) + 10.0
    elif kind == "wide":  # mixed magnitudes
        a = rng.normal(size=d) * np.exp(rng.uniform(-4, 4, size=d))
        b = rng.normal(size=d) * np.exp(rng.uniform(-4, 4, size=d))
    else:
        raise ValueError(kind)
    return a.astype(np.float32), b.astype(np.float32)


def test_levels_sane():
    assert "scalar" in LEVELS
    assert len(set(LEVELS)) == len(LEVELS)
    assert set(LEVELS) <= set(ALL_KNOWN_LEVELS)
    assert vecdex.simd_level() in LEVELS


def test_default_level_is_best_available():
    # without VECDEX_SIMD, the import picks the best level this CPU supports
    if os.environ.get("VECDEX_SIMD"):
        pytest.skip("VECDEX_SIMD set in the environment")
    order = ["scalar", "neon", "avx2", "avx512"]
    best = max(LEVELS, key=order.index)
    assert vecdex.simd_level() == best


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("kind", ["normal", "offset", "wide"])
def test_single_kernels_vs_numpy_and_scalar(level, d, kind):
    rng = np.random.default_rng(1000 * d + len(kind))
    for _ in range(3):
        a, b = _pair(rng, d, kind)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)

        # squared L2
        diff = a64 - b64
        exact = float(diff @ diff)
        got = _core.kernel_l2sq(a, b, level)
        ref = _core.kernel_l2sq(a, b, "scalar")
        assert isinstance(got, float)
        # the kernel sees float32 inputs; tolerance relative to sum of |terms|
        # computed in float64 of the float32 inputs (kernel may expand or not)
        tol_l2 = _tol(float(diff @ diff) + 0.0, d)
        # an implementation is free to compute (a-b)^2 directly: its error is
        # relative to the result itself
        assert abs(got - exact) <= tol_l2, (level, d, got, exact)
        assert abs(got - ref) <= 2 * tol_l2, (level, d, got, ref)
        assert got >= 0.0

        # inner product
        exact = float(a64 @ b64)
        tol_dot = _tol(float(np.abs(a64 * b64).sum()), d)
        got = _core.kernel_dot(a, b, level)
        ref = _core.kernel_dot(a, b, "scalar")
        assert isinstance(got, float)
        assert abs(got - exact) <= tol_dot, (level, d, got, exact)
        assert abs(got - ref) <= 2 * tol_dot, (level, d, got, ref)

        # cosine similarity
        na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
        exact = float(a64 @ b64 / (na * nb))
        got = _core.kernel_cosine(a, b, level)
        ref = _core.kernel_cosine(a, b, "scalar")
        tol_cos = 4 * _tol(1.0, d) + 4 * EPS32
        assert abs(got - exact) <= tol_cos, (level, d, got, exact)
        assert abs(got - ref) <= 2 * tol_cos, (level, d, got, ref)
        assert -1.0 - 1e-5 <= got <= 1.0 + 1e-5


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", DIMS)
def test_identities(level, d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=d).astype(np.float32)
    a64 = a.astype(np.float64)
    assert abs(_core.kernel_l2sq(a, a, level)) <= _tol(4 * float(a64 @ a64), d)
    assert _core.kernel_cosine(a, a, level) == pytest.approx(1.0, abs=1e-5)
    assert _core.kernel_cosine(a, -a, level) == pytest.approx(-1.0, abs=1e-5)
    # scale invariance of cosine
    assert _core.kernel_cosine(a, 3.5 * a, level) == pytest.approx(1.0, abs=1e-5)
    # zero vector: cosine similarity defined as 0, dot 0, l2 = |a|^2
    z = np.zeros(d, dtype=np.float32)
    assert _core.kernel_cosine(a, z, level) == 0.0
    assert _core.kernel_cosine(z, a, level) == 0.0
    assert _core.kernel_cosine(z, z, level) == 0.0
    assert _core.kernel_dot(a, z, level) == 0.0
    assert _core.kernel_l2sq(a, z, level) == pytest.approx(float(a64 @ a64), rel=1e-5)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", DIMS)
def test_batch_kernels(level, d):
    rng = np.random.default_rng(7 * d + 1)
    for n in (0, 1, 3, 17):
        q = rng.normal(size=d).astype(np.float32)
        X = (rng.normal(size=(n, d)) + rng.normal()).astype(np.float32)
        q64, X64 = q.astype(np.float64), X.astype(np.float64)

        got = np.asarray(_core.kernel_l2sq_batch(q, X, level))
        ref = np.asarray(_core.kernel_l2sq_batch(q, X, "scalar"))
        assert got.shape == (n,)
        assert got.dtype == np.float32
        exact = ((X64 - q64) ** 2).sum(1)
        # a batch path may use |q|^2+|x|^2-2q.x, whose error scales with the norms
        scale = (q64 @ q64) + (X64 * X64).sum(1) + exact
        tol = _tol(scale, d) + 2 * EPS32 * np.abs(exact)
        assert np.all(np.abs(got - exact) <= tol), (level, d, n, got, exact)
        assert np.all(np.abs(got - ref) <= 2 * tol)
        for i in range(n):
            single = _core.kernel_l2sq(q, X[i], level)
            assert abs(got[i] - single) <= 2 * tol[i]

        got = np.asarray(_core.kernel_dot_batch(q, X, level))
        ref = np.asarray(_core.kernel_dot_batch(q, X, "scalar"))
        assert got.shape == (n,)
        assert got.dtype == np.float32
        exact = X64 @ q64
        tol = _tol(np.abs(X64 * q64).sum(1), d) + 2 * EPS32 * np.abs(exact)
        assert np.all(np.abs(got - exact) <= tol), (level, d, n, got, exact)
        assert np.all(np.abs(got - ref) <= 2 * tol)
        for i in range(n):
            single = _core.kernel_dot(q, X[i], level)
            assert abs(got[i] - single) <= 2 * tol[i]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", DIMS)
def test_four_query_kernels(level, d):
    """l2sq_batch4 / dot_batch4 (four queries against each row) equal the exact values and the
    scalar table within float32 rounding, including awkward dims and n = 0."""
    rng = np.random.default_rng(11 * d + 5)
    for n in (0, 1, 3, 17):
        Q = (rng.normal(size=(4, d)) + rng.normal()).astype(np.float32)
        X = (rng.normal(size=(n, d)) + rng.normal()).astype(np.float32)
        Q64, X64 = Q.astype(np.float64), X.astype(np.float64)

        got = np.asarray(_core.kernel_l2sq_batch4(Q, X, level))
        ref = np.asarray(_core.kernel_l2sq_batch4(Q, X, "scalar"))
        assert got.shape == (n, 4) and got.dtype == np.float32
        exact = ((X64[:, None, :] - Q64[None, :, :]) ** 2).sum(2)
        tol = _tol(exact, d) + 2 * EPS32 * np.abs(exact)
        assert np.all(np.abs(got - exact) <= tol), (level, d, n)
        assert np.all(np.abs(got - ref) <= 2 * tol)

        got = np.asarray(_core.kernel_dot_batch4(Q, X, level))
        ref = np.asarray(_core.kernel_dot_batch4(Q, X, "scalar"))
        assert got.shape == (n, 4) and got.dtype == np.float32
        exact = X64 @ Q64.T
        tol = _tol(np.abs(X64[:, None, :] * Q64[None, :, :]).sum(2), d) + 2 * EPS32 * np.abs(exact)
        assert np.all(np.abs(got - exact) <= tol), (level, d, n)
        assert np.all(np.abs(got - ref) <= 2 * tol)


@pytest.mark.parametrize("level", LEVELS)
def test_batch_kernels_strided_rows(level):
    # a row-sliced (but row-contiguous) matrix view must give the same result
    rng = np.random.default_rng(3)
    d = 37
    big = rng.normal(size=(40, d)).astype(np.float32)
    X = big[5:30]
    q = rng.normal(size=d).astype(np.float32)
    a = np.asarray(_core.kernel_l2sq_batch(q, X, level))
    b = np.asarray(_core.kernel_l2sq_batch(q, np.ascontiguousarray(X), level))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("level", [lv for lv in ALL_KNOWN_LEVELS if lv not in LEVELS] + ["bogus", ""])
def test_unsupported_level_raises(level):
    a = np.ones(8, dtype=np.float32)
    X = np.ones((2, 8), dtype=np.float32)
    for fn in (_core.kernel_l2sq, _core.kernel_dot, _core.kernel_cosine):
        with pytest.raises(ValueError):
            fn(a, a, level)
    for fn in (_core.kernel_l2sq_batch, _core.kernel_dot_batch):
        with pytest.raises(ValueError):
            fn(a, X, level)


def test_kernel_length_mismatch_raises():
    # reading past the end of the shorter buffer would be memory-unsafe
    a = np.ones(8, dtype=np.float32)
    b = np.ones(9, dtype=np.float32)
    for fn in (_core.kernel_l2sq, _core.kernel_dot, _core.kernel_cosine):
        with pytest.raises((ValueError, TypeError)):
            fn(a, b, "scalar")
    for fn in (_core.kernel_l2sq_batch, _core.kernel_dot_batch):
        with pytest.raises((ValueError, TypeError)):
            fn(a, np.ones((3, 9), dtype=np.float32), "scalar")


# --------------------------------------------------------------------------
# VECDEX_SIMD environment variable (checked in fresh interpreters)
# --------------------------------------------------------------------------
_PROBE = "import vecdex; print(vecdex.simd_level()); print(','.join(vecdex.available_simd_levels()))"


def _probe(value):
    env = dict(os.environ)
    if value is None:
        env.pop("VECDEX_SIMD", None)
    else:
        env["VECDEX_SIMD"] = value
    r = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, (value, r.returncode, r.stderr)
    lines = r.stdout.strip().splitlines()
    return lines[0], lines[1].split(","), r.stderr


@pytest.mark.parametrize("level", LEVELS)
def test_env_forces_supported_level(level):
    got, avail, err = _probe(level)
    assert got == level
    # forcing a level does not change what the CPU supports
    assert avail == LEVELS


def test_env_scalar():
    got, _, _ = _probe("scalar")
    assert got == "scalar"


def test_env_unset_matches_in_process():
    got, _, _ = _probe(None)
    if os.environ.get("VECDEX_SIMD") is None:
        assert got == vecdex.simd_level()


@pytest.mark.parametrize("level", [lv for lv in ALL_KNOWN_LEVELS if lv not in LEVELS])
def test_env_unsupported_level_clamped_with_warning(level):
    got, _, err = _probe(level)
    assert got in LEVELS
    assert err.strip(), "expected a warning on stderr for an unsupported VECDEX_SIMD"


@pytest.mark.parametrize("value", ["bogus", "AVX9000"])
def test_env_unknown_level_warns_and_uses_auto(value):
    auto, _, _ = _probe(None)
    got, _, err = _probe(value)
    assert got == auto
    assert err.strip(), "expected a warning on stderr for an unknown VECDEX_SIMD"


_E2E = r"""
import sys, json
sys.path.insert(0, sys.argv[1])
import numpy as np
import vecdex
from conftest import clustered, assert_valid_knn, recall
out = {"level": vecdex.simd_level()}
base, queries = clustered(1500, 33, seed=4, n_queries=40)
for metric in ("l2", "ip", "cosine"):
    flat = vecdex.FlatIndex(dim=33, metric=metric)
    flat.add(base)
    ids, dists = flat.search(queries, k=10)
    assert_valid_knn(ids, dists, base, queries, 10, metric)
    h = vecdex.Index(dim=33, metric=metric, M=12, ef_construction=80, seed=0)
    h.add(base, num_threads=1)
    hids, hd = h.search(queries, k=10, ef=100)
    out[metric] = [ids.tolist(), recall(hids, base, queries, 10, metric)]
print(json.dumps(out))
"""


def test_every_level_gives_exact_flat_results_end_to_end(tmp_path):
    """With VECDEX_SIMD forcing each level, whole-index searches are still
    exact (FlatIndex) / high recall (HNSW) and agree across levels."""
    import json

    script = tmp_path / "e2e.py"
    script.write_text(_E2E)
    here = os.path.dirname(os.path.abspath(__file__))
    res = {}
    for level in LEVELS:
        env = dict(os.environ, VECDEX_SIMD=level)
        r = subprocess.run([sys.executable, str(script), here], env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, (level, r.stderr[-3000:])
        res[level] = json.loads(r.stdout.strip().splitlines()[-1])
        assert res[level]["level"] == level
        for metric in ("l2", "ip", "cosine"):
            assert res[level][metric][1] >= 0.95, (level, metric, res[level][metric][1])
    for level in LEVELS:
        for metric in ("l2", "ip", "cosine"):
            a = np.array(res[level][metric][0])
            b = np.array(res["scalar"][metric][0])
            # continuous data: near-ties within float32 noise are vanishingly rare
            assert np.mean(a == b) >= 0.995, (level, metric)
