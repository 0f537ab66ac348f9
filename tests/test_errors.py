"""Bad inputs raise ValueError/TypeError; odd-but-valid inputs are converted."""

from __future__ import annotations

import numpy as np
import pytest

import vecdex

from conftest import METRICS

KINDS = ("hnsw", "flat")


def _new(kind, dim=8, metric="l2"):
    if kind == "hnsw":
        return vecdex.Index(dim=dim, metric=metric, M=8, ef_construction=32, seed=0)
    return vecdex.FlatIndex(dim=dim, metric=metric)


def _add1(index, x, **kw):
    """Single-threaded add so HNSW graphs built from equal data are identical."""
    index.add(x, num_threads=1, **kw)


def _filled(kind, n=40, dim=8, metric="l2"):
    index = _new(kind, dim, metric)
    index.add(np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32))
    return index


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


# --------------------------------------------------------------------------
# constructor
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, -1, -100])
def test_bad_dim(dim):
    with pytest.raises(ValueError, match="(?i)dim"):
        vecdex.Index(dim=dim)
    with pytest.raises(ValueError, match="(?i)dim"):
        vecdex.FlatIndex(dim=dim)


@pytest.mark.parametrize("metric", ["L3", "euclidean?", "", "dot-product"])
def test_unknown_metric(metric):
    with pytest.raises(ValueError, match="(?i)metric"):
        vecdex.Index(dim=4, metric=metric)
    with pytest.raises(ValueError, match="(?i)metric"):
        vecdex.FlatIndex(dim=4, metric=metric)


@pytest.mark.parametrize("m", [1, 0, -3])
def test_bad_M(m):
    with pytest.raises(ValueError, match="M"):
        vecdex.Index(dim=4, M=m)


def test_M_two_is_allowed():
    index = vecdex.Index(dim=4, M=2, ef_construction=10)
    index.add(np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))
    assert len(index) == 50


def test_constructor_defaults():
    index = vecdex.Index(dim=3)
    assert index.dim == 3 and len(index) == 0
    assert index.metric in METRICS
    flat = vecdex.FlatIndex(dim=3)
    assert flat.dim == 3 and len(flat) == 0


# --------------------------------------------------------------------------
# add
# --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 8), (1, 1, 1, 8), ()])
def test_add_wrong_ndim(kind, shape):
    index = _new(kind)
    with pytest.raises(ValueError):
        index.add(np.ones(shape, dtype=np.float32))
    assert len(index) == 0


@pytest.mark.parametrize("shape", [(5, 7), (5, 9), (9,), (7,), (1, 1), (0, 3)])
def test_add_dim_mismatch(kind, shape):
    index = _new(kind)
    with pytest.raises(ValueError, match="(?i)dim"):
        index.add(np.ones(shape, dtype=np.float32))
    assert len(index) == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 17, 39])
def test_add_non_finite(kind, bad, where):
    index = _filled(kind, n=5)
    x = np.random.default_rng(1).normal(size=(40, 8)).astype(np.float32)
    x.ravel()[where * 8 + 3] = bad
    with pytest.raises(ValueError, match="(?i)nan|finite|inf"):
        index.add(x)
    # a rejected add must not partially insert anything
    assert len(index) == 5
    np.testing.assert_array_equal(index.ids(), np.arange(5))
    # float64 input that only becomes non-finite after conversion to float32
    with pytest.raises(ValueError, match="(?i)nan|finite|inf"):
        index.add(np.full((1, 8), 1e300))
    assert len(index) == 5


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_search_non_finite(kind, bad):
    index = _filled(kind)
    q = np.zeros((3, 8), dtype=np.float32)
    q[1, 2] = bad
    with pytest.raises(ValueError, match="(?i)nan|finite|inf"):
        index.search(q, k=3)
    with pytest.raises(ValueError, match="(?i)nan|finite|inf"):
        index.search(q[1], k=3)


# the contract: ValueError/TypeError (an OverflowError would not satisfy it)
@pytest.mark.parametrize("ids", [[-1, 0], [0, -5], np.array([-1, 3], dtype=np.int64),
                                 np.array([2, -2**63], dtype=np.int64)])
def test_negative_ids(kind, ids):
    index = _new(kind)
    with pytest.raises((ValueError, TypeError)):
        index.add(np.ones((2, 8), dtype=np.float32), ids=ids)
    assert len(index) == 0


@pytest.mark.parametrize("big", [2**63, 2**63 + 1, 2**64 - 1])
def test_too_large_ids(kind, big):
    index = _new(kind)
    with pytest.raises((ValueError, TypeError)):
        index.add(np.ones((2, 8), dtype=np.float32), ids=np.array([0, big], dtype=np.uint64))
    with pytest.raises((ValueError, TypeError)):
        index.add(np.ones((1, 8), dtype=np.float32), ids=[big])
    with pytest.raises((ValueError, TypeError)):
        index.add(np.ones((1, 8), dtype=np.float32), ids=[2**70])
    assert len(index) == 0


def test_max_id_allowed(kind):
    index = _new(kind)
    index.add(np.ones((1, 8), dtype=np.float32), ids=[2**63 - 1])
    np.testing.assert_array_equal(index.ids(), [2**63 - 1])
    ids, _ = index.search(np.ones(8, dtype=np.float32), k=1)
    assert ids[0] == 2**63 - 1


def test_default_id_after_max_id_overflows(kind):
    # default ids continue from max+1; after 2**63-1 there is no valid next id
    index = _new(kind)
    index.add(np.ones((1, 8), dtype=np.float32), ids=[2**63 - 1])
    with pytest.raises((ValueError, TypeError, OverflowError)):
        index.add(np.ones((1, 8), dtype=np.float32))
    assert len(index) == 1


@pytest.mark.parametrize("nids", [0, 1, 3, 5])
def test_ids_length_mismatch(kind, nids):
    index = _new(kind)
    with pytest.raises(ValueError):
        index.add(np.ones((4, 8), dtype=np.float32), ids=np.arange(nids))
    assert len(index) == 0


def test_ids_wrong_ndim(kind):
    index = _new(kind)
    with pytest.raises(ValueError):
        index.add(np.ones((4, 8), dtype=np.float32), ids=np.arange(4).reshape(2, 2))


def test_duplicate_ids_within_call(kind):
    index = _new(kind)
    with pytest.raises(ValueError, match="(?i)duplicate"):
        index.add(np.ones((3, 8), dtype=np.float32), ids=[4, 5, 4])
    assert len(index) == 0


def test_ids_already_present(kind):
    index = _new(kind)
    index.add(np.ones((3, 8), dtype=np.float32), ids=[1, 2, 3])
    with pytest.raises(ValueError, match="(?i)already|exist|present|duplicate"):
        index.add(np.ones((2, 8), dtype=np.float32), ids=[7, 2])
    assert len(index) == 3
    np.testing.assert_array_equal(index.ids(), [1, 2, 3])


def test_non_integer_ids(kind):
    index = _new(kind)
    with pytest.raises((TypeError, ValueError)):
        index.add(np.ones((2, 8), dtype=np.float32), ids=[0.5, 1.5])
    with pytest.raises(TypeError):
        index.add(np.ones((2, 8), dtype=np.float32), ids=["a", "b"])
    assert len(index) == 0


@pytest.mark.parametrize("arr", [
    np.array([["a"] * 8]),
    np.array([[object()] * 8], dtype=object),
    np.ones((2, 8), dtype=np.complex64),
    np.ones((2, 8), dtype=np.complex128),
])
def test_add_bad_dtype(kind, arr):
    index = _new(kind)
    with pytest.raises(TypeError):
        index.add(arr)
    assert len(index) == 0


@pytest.mark.parametrize("arr", [
    np.array(["x"] * 8),
    np.ones(8, dtype=np.complex64),
])
def test_search_bad_dtype(kind, arr):
    index = _filled(kind)
    with pytest.raises(TypeError):
        index.search(arr, k=2)


def test_add_not_array(kind):
    index = _new(kind)
    with pytest.raises((TypeError, ValueError)):
        index.add("hello")
    with pytest.raises((TypeError, ValueError)):
        index.add(None)
    with pytest.raises((TypeError, ValueError)):
        index.add([[1.0] * 8, [1.0] * 7])  # ragged
    assert len(index) == 0


def test_empty_add_noop(kind):
    index = _filled(kind, n=3)
    index.add(np.zeros((0, 8), dtype=np.float32))
    index.add(np.zeros((0, 8), dtype=np.float32), ids=np.zeros(0, dtype=np.int64))
    assert len(index) == 3


# --------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, -1])
def test_bad_k(kind, k):
    index = _filled(kind)
    with pytest.raises(ValueError, match="k"):
        index.search(np.ones((1, 8), dtype=np.float32), k=k)


@pytest.mark.parametrize("k", [2.5, "3", None])
def test_non_integer_k(kind, k):
    index = _filled(kind)
    with pytest.raises((TypeError, ValueError)):
        index.search(np.ones((1, 8), dtype=np.float32), k=k)


def test_numpy_integer_k(kind):
    index = _filled(kind)
    a = index.search(np.ones((1, 8), dtype=np.float32), k=np.int64(4))
    b = index.search(np.ones((1, 8), dtype=np.float32), k=4)
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("ef", [0, -1])
def test_bad_ef(ef):
    index = _filled("hnsw")
    with pytest.raises(ValueError, match="ef"):
        index.search(np.ones((1, 8), dtype=np.float32), k=3, ef=ef)


@pytest.mark.parametrize("shape", [(1, 7), (1, 9), (7,), (2, 3, 8), (), (0, 7)])
def test_search_bad_shape(kind, shape):
    index = _filled(kind)
    with pytest.raises(ValueError):
        index.search(np.ones(shape, dtype=np.float32), k=2)


def test_search_empty_index_bad_dim_still_raises(kind):
    index = _new(kind)
    with pytest.raises(ValueError, match="(?i)dim"):
        index.search(np.ones((1, 3), dtype=np.float32), k=2)


# --------------------------------------------------------------------------
# conversions: same results as float32 C-contiguous input
# --------------------------------------------------------------------------
def _ref_results(kind, metric, base, queries, k=7):
    index = _new(kind, base.shape[1], metric)
    _add1(index, np.ascontiguousarray(base, dtype=np.float32))
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k=k)


def _variants(x32):
    """Equivalent representations of a float32 matrix (exactly representable)."""
    wide = np.zeros((x32.shape[0] * 2, x32.shape[1] * 3), dtype=np.float32)
    wide[::2, ::3] = x32
    return {
        "float64": x32.astype(np.float64),
        "fortran": np.asfortranarray(x32),
        "strided": wide[::2, ::3],
        "reversed": x32[::-1][::-1],
        "transposed": np.ascontiguousarray(x32.T).T,
        "list": x32.tolist(),
        "tuple": tuple(tuple(r) for r in x32.tolist()),
        "big-endian": x32.astype(">f4"),
        "readonly": _readonly(x32),
    }


def _readonly(x):
    y = x.copy()
    y.setflags(write=False)
    return y


@pytest.mark.parametrize("metric", METRICS)
def test_input_conversions(kind, metric):
    rng = np.random.default_rng(21)
    base = rng.normal(size=(60, 6)).astype(np.float32)
    queries = rng.normal(size=(9, 6)).astype(np.float32)
    ref = _ref_results(kind, metric, base, queries)
    for name, b in _variants(base).items():
        index = _new(kind, 6, metric)
        _add1(index, b)
        np.testing.assert_array_equal(index.get_vectors(np.arange(60)),
                                      _stored(base, metric), err_msg=name)
        for qname, q in _variants(queries).items():
            got = index.search(q, k=7)
            np.testing.assert_array_equal(got[0], ref[0], err_msg=f"{name}/{qname}")
            np.testing.assert_array_equal(got[1], ref[1], err_msg=f"{name}/{qname}")


def _stored(base, metric):
    idx = vecdex.FlatIndex(dim=base.shape[1], metric=metric)
    idx.add(base)
    return idx.get_vectors(np.arange(len(base)))


@pytest.mark.parametrize("dtype", [np.float16, np.int8, np.int32, np.int64, np.uint8, np.float64])
def test_other_numeric_dtypes(kind, dtype):
    rng = np.random.default_rng(22)
    if np.issubdtype(dtype, np.integer):
        lo = 0 if np.issubdtype(dtype, np.unsignedinteger) else -5
        base = rng.integers(lo, 6, size=(50, 5)).astype(dtype)
        queries = rng.integers(lo, 6, size=(4, 5)).astype(dtype)
    else:
        base = rng.normal(size=(50, 5)).astype(dtype)
        queries = rng.normal(size=(4, 5)).astype(dtype)
    ref = _ref_results(kind, "l2", base.astype(np.float32), queries.astype(np.float32))
    index = _new(kind, 5, "l2")
    _add1(index, base)
    got = index.search(queries, k=7)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])


def test_float64_rounding_matches_float32_cast(kind):
    # values that are not representable in float32 are rounded exactly as numpy does
    rng = np.random.default_rng(23)
    base = rng.normal(size=(30, 4))
    index = _new(kind, 4, "l2")
    index.add(base)
    np.testing.assert_array_equal(index.get_vectors(np.arange(30)), base.astype(np.float32))


@pytest.mark.parametrize("ids_variant", ["list", "int32", "uint64", "int64-strided", "uint8"])
def test_id_conversions(kind, ids_variant):
    x = np.random.default_rng(24).normal(size=(5, 8)).astype(np.float32)
    want = np.array([3, 1, 4, 10, 5], dtype=np.int64)
    ids = {
        "list": want.tolist(),
        "int32": want.astype(np.int32),
        "uint64": want.astype(np.uint64),
        "int64-strided": np.repeat(want, 2)[::2],
        "uint8": want.astype(np.uint8),
    }[ids_variant]
    index = _new(kind)
    index.add(x, ids=ids)
    np.testing.assert_array_equal(index.ids(), want)
    np.testing.assert_array_equal(index.get_vectors(want), x)


def test_single_vector_add_1d(kind):
    index = _new(kind)
    v = np.arange(8, dtype=np.float32)
    index.add(v)
    index.add(v + 1, ids=[9])
    assert len(index) == 2
    np.testing.assert_array_equal(index.ids(), [0, 9])
    np.testing.assert_array_equal(index.get_vectors([9]), (v + 1)[None])
