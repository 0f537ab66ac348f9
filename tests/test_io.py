"""save / load / mmap, corruption handling and atomic saves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecdex

from conftest import METRICS, clustered

KINDS = ("hnsw", "flat")


def _make(kind, metric, n=800, dim=16, seed=0, ids=None):
    base = clustered(n, dim, seed=seed)
    if kind == "hnsw":
        index = vecdex.Index(dim=dim, metric=metric, M=8, ef_construction=40, seed=3)
    else:
        index = vecdex.FlatIndex(dim=dim, metric=metric)
    index.add(base, ids=ids)
    return index, base


def _cls(kind):
    return vecdex.Index if kind == "hnsw" else vecdex.FlatIndex


def _search(index, q, k=10):
    if isinstance(index, vecdex.Index):
        return index.search(q, k=k, ef=50)
    return index.search(q, k=k)


def _assert_same_index(a, b, queries):
    assert type(a) is type(b)
    assert len(a) == len(b)
    assert a.dim == b.dim
    assert a.metric == b.metric
    np.testing.assert_array_equal(a.ids(), b.ids())
    if len(a):
        np.testing.assert_array_equal(a.get_vectors(a.ids()), b.get_vectors(b.ids()))
    ra, rb = _search(a, queries), _search(b, queries)
    np.testing.assert_array_equal(ra[0], rb[0])
    np.testing.assert_array_equal(ra[1], rb[1])
    if isinstance(a, vecdex.Index):
        assert a.M == b.M
        assert a.ef_construction == b.ef_construction


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("mmap", [False, True])
def test_roundtrip(tmp_path, kind, metric, mmap):
    rng = np.random.default_rng(1)
    ext = rng.choice(2**63 - 1, size=800, replace=False).astype(np.uint64)
    index, base = _make(kind, metric, ids=ext)
    queries = clustered(30, 16, seed=99)
    p = tmp_path / f"idx.{kind}"
    index.save(str(p))
    assert p.exists() and p.stat().st_size > 800 * 16 * 4

    loaded = _cls(kind).load(str(p), mmap=mmap)
    _assert_same_index(index, loaded, queries)
    anyk = vecdex.load(str(p), mmap=mmap)
    assert isinstance(anyk, _cls(kind))
    _assert_same_index(index, anyk, queries)
    # os.PathLike works as well as str
    _assert_same_index(index, _cls(kind).load(p), queries)


@pytest.mark.parametrize("kind", KINDS)
def test_roundtrip_empty(tmp_path, kind):
    index = _cls(kind)(dim=5, metric="l2")
    p = tmp_path / "empty.vdx"
    index.save(str(p))
    for mmap in (False, True):
        loaded = vecdex.load(str(p), mmap=mmap)
        assert isinstance(loaded, _cls(kind))
        assert len(loaded) == 0 and loaded.dim == 5 and loaded.metric == "l2"
        ids, dists = _search(loaded, np.ones((2, 5), dtype=np.float32), k=3)
        assert np.all(ids == -1) and np.all(np.isposinf(dists))


@pytest.mark.parametrize("kind", KINDS)
def test_loaded_index_is_writable_and_ids_continue(tmp_path, kind):
    index, base = _make(kind, "l2", n=300)
    p = tmp_path / "a.vdx"
    index.save(str(p))
    loaded = _cls(kind).load(str(p))
    extra = clustered(50, 16, seed=7)
    loaded.add(extra)
    index.add(extra)
    np.testing.assert_array_equal(loaded.ids(), np.arange(350))
    if kind == "flat":
        q = clustered(20, 16, seed=8)
        np.testing.assert_array_equal(_search(loaded, q)[0], _search(index, q)[0])
    # the file on disk is unchanged by the in-memory add
    assert len(vecdex.load(str(p))) == 300


@pytest.mark.parametrize("kind", KINDS)
def test_mmap_is_read_only(tmp_path, kind):
    index, _ = _make(kind, "cosine", n=200)
    p = tmp_path / "ro.vdx"
    index.save(str(p))
    ro = _cls(kind).load(str(p), mmap=True)
    with pytest.raises(ValueError, match="(?i)read.?only"):
        ro.add(np.ones((1, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="(?i)read.?only"):
        ro.add(np.ones(16, dtype=np.float32))
    assert len(ro) == 200
    # still searchable after the failed add
    q = clustered(5, 16, seed=4)
    np.testing.assert_array_equal(_search(ro, q)[0], _search(index, q)[0])


@pytest.mark.parametrize("kind", KINDS)
def test_mmap_index_can_be_saved_elsewhere(tmp_path, kind):
    index, _ = _make(kind, "l2", n=200)
    p = tmp_path / "a.vdx"
    index.save(str(p))
    ro = vecdex.load(str(p), mmap=True)
    p2 = tmp_path / "b.vdx"
    ro.save(str(p2))
    _assert_same_index(index, vecdex.load(str(p2)), clustered(5, 16, seed=4))


@pytest.mark.parametrize("kind", KINDS)
def test_load_wrong_kind_raises(tmp_path, kind):
    index, _ = _make(kind, "l2", n=50)
    p = tmp_path / "k.vdx"
    index.save(str(p))
    other = vecdex.FlatIndex if kind == "hnsw" else vecdex.Index
    with pytest.raises((ValueError, TypeError)):
        other.load(str(p))


def test_missing_file(tmp_path):
    for fn in (vecdex.load, vecdex.Index.load, vecdex.FlatIndex.load):
        with pytest.raises(OSError):  # FileNotFoundError is an OSError
            fn(str(tmp_path / "nope.vdx"))
        with pytest.raises(OSError):
            fn(str(tmp_path / "nope.vdx"), mmap=True)


def test_load_directory_raises(tmp_path):
    with pytest.raises((OSError, ValueError)):
        vecdex.load(str(tmp_path))


@pytest.mark.parametrize("mmap", [False, True])
def test_wrong_magic_and_garbage(tmp_path, mmap):
    index, _ = _make("hnsw", "l2", n=100)
    p = tmp_path / "m.vdx"
    index.save(str(p))
    data = bytearray(p.read_bytes())
    data[0:4] = b"XXXX"
    p.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        vecdex.load(str(p), mmap=mmap)
    for blob in (b"", b"\x00", b"\x00" * 4096, b"not a vecdex index at all" * 100,
                 np.random.default_rng(0).bytes(10000)):
        p.write_bytes(blob)
        for fn in (vecdex.load, vecdex.Index.load, vecdex.FlatIndex.load):
            with pytest.raises(ValueError):
                fn(str(p), mmap=mmap)


# --------------------------------------------------------------------------
# truncation / bit flips: run in a subprocess so a segfault is a test failure
# rather than a crashed test run
# --------------------------------------------------------------------------
_CORRUPT_SCRIPT = textwrap.dedent(
    r"""
    import json, os, sys
    import numpy as np
    import vecdex
    src, workdir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    data = open(src, "rb").read()
    size = len(data)
    results = []
    tmp = os.path.join(workdir, "corrupt.vdx")
    rng = np.random.default_rng(2024)
    cases = []
    if mode == "truncate":
        offs = set(range(0, min(size, 160)))            # every byte of the header area
        offs |= {size - 1, size - 2, size - 4, size - 8, size - 16, size - 64, size // 2}
        offs |= set(int(x) for x in rng.integers(0, size, size=120))
        for o in sorted(o for o in offs if 0 <= o < size):
            cases.append(("trunc", o, data[:o]))
    else:
        offs = set(range(0, min(size, 96)))
        offs |= set(int(x) for x in rng.integers(0, size, size=150))
        offs |= {size - 1, size - 4, size - 8}
        for o in sorted(offs):
            bit = int(rng.integers(0, 8))
            b = bytearray(data)
            b[o] ^= (1 << bit)
            cases.append(("flip", o, bytes(b)))
    orig = vecdex.load(src)
    qs = np.random.default_rng(7).normal(size=(20, orig.dim)).astype(np.float32)

    def fingerprint(ix):
        fp = [type(ix).__name__, len(ix), ix.dim, ix.metric,
              getattr(ix, "M", None), getattr(ix, "ef_construction", None)]
        ids = ix.ids()
        fp.append(ids.tobytes())
        fp.append(ix.get_vectors(ids).tobytes() if len(ids) else b"")
        if isinstance(ix, vecdex.Index):
            r = ix.search(qs, k=10, ef=len(ix) + 10)
        else:
            r = ix.search(qs, k=10)
        fp += [r[0].tobytes(), r[1].tobytes()]
        return fp

    want = fingerprint(orig)
    for what, off, blob in cases:
        with open(tmp, "wb") as f:
            f.write(blob)
        for mmap in ((False, True) if what == "trunc" else (False,)):
            try:
                idx = vecdex.load(tmp, mmap=mmap)
                # it loaded: acceptable only if nothing observable changed
                # (e.g. a flip in alignment padding that no section covers)
                try:
                    same = fingerprint(idx) == want
                except Exception as e:
                    same = False
                results.append([what, off, mmap, "LOADED-SAME" if same else "LOADED-DIFFERENT", ""])
            except ValueError as e:
                results.append([what, off, mmap, "ValueError", str(e)[:200]])
            except BaseException as e:
                results.append([what, off, mmap, type(e).__name__, str(e)[:200]])
            finally:
                idx = None
    print(json.dumps(results))
    """
)


def _run_corruption(tmp_path, src, mode):
    script = tmp_path / "corrupt.py"
    script.write_text(_CORRUPT_SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(src), str(tmp_path), mode],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"loader crashed (rc={r.returncode}) on a corrupted file:\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", KINDS)
def test_truncated_files_raise_value_error(tmp_path, kind):
    index, _ = _make(kind, "cosine", n=300, dim=8)
    src = tmp_path / "src.vdx"
    index.save(str(src))
    results = _run_corruption(tmp_path, src, "truncate")
    assert len(results) > 200
    bad = [r for r in results if r[3] != "ValueError"]
    assert not bad, f"{len(bad)} truncations not rejected with ValueError, e.g. {bad[:8]}"


@pytest.mark.parametrize("kind", KINDS)
def test_bit_flips_raise_value_error(tmp_path, kind):
    index, _ = _make(kind, "l2", n=300, dim=8)
    src = tmp_path / "src.vdx"
    index.save(str(src))
    results = _run_corruption(tmp_path, src, "flip")
    assert len(results) > 100
    # a flip must be rejected, unless it hit bytes that carry no information
    # (alignment padding) and the loaded index is indistinguishable
    bad = [r for r in results if r[3] not in ("ValueError", "LOADED-SAME")]
    assert not bad, f"{len(bad)} bit flips not rejected with ValueError, e.g. {bad[:8]}"
    rejected = sum(r[3] == "ValueError" for r in results)
    assert rejected >= 0.8 * len(results), results


def test_truncation_message_is_descriptive(tmp_path):
    index, _ = _make("flat", "l2", n=100)
    p = tmp_path / "t.vdx"
    index.save(str(p))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="(?i)corrupt|truncat|checksum|short|size"):
        vecdex.load(str(p))


# --------------------------------------------------------------------------
# atomic save
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_save_overwrites_existing(tmp_path, kind):
    p = tmp_path / "o.vdx"
    small, _ = _make(kind, "l2", n=50, seed=1)
    big, _ = _make(kind, "l2", n=500, seed=2)
    small.save(str(p))
    big.save(str(p))
    _assert_same_index(big, vecdex.load(str(p)), clustered(5, 16, seed=3))
    small.save(str(p))  # shrinking over a larger file as well
    _assert_same_index(small, vecdex.load(str(p)), clustered(5, 16, seed=3))


def test_save_to_missing_directory_fails_cleanly(tmp_path):
    index, _ = _make("flat", "l2", n=20)
    with pytest.raises(Exception) as ei:
        index.save(str(tmp_path / "no" / "such" / "dir" / "x.vdx"))
    assert isinstance(ei.value, (OSError, ValueError, RuntimeError)), type(ei.value)
    assert not (tmp_path / "no").exists()


def test_save_to_directory_path_keeps_directory(tmp_path):
    index, _ = _make("flat", "l2", n=20)
    d = tmp_path / "adir"
    d.mkdir()
    (d / "keep").write_text("x")
    with pytest.raises(Exception):
        index.save(str(d))
    assert (d / "keep").read_text() == "x"


_FAILED_SAVE_SCRIPT = textwrap.dedent(
    r"""
    import resource, signal, sys
    import numpy as np
    import vecdex
    kind, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 64)).astype(np.float32)
    cls = vecdex.Index if kind == "hnsw" else vecdex.FlatIndex
    big = cls(dim=64, metric="l2")
    big.add(x)
    # any write beyond `limit` bytes now fails with EFBIG instead of killing us
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        big.save(path)
    except Exception as e:
        print("RAISED", type(e).__name__, str(e)[:200])
    else:
        print("NO-ERROR")
    """
)


@pytest.mark.parametrize("kind", KINDS)
def test_failed_save_keeps_old_file(tmp_path, kind):
    """A save that fails mid-write (file size limit -> EFBIG) must raise and
    leave the previous file byte-identical and loadable."""
    p = tmp_path / "keep.vdx"
    old, _ = _make(kind, "l2", n=100, dim=16)
    old.save(str(p))
    before = p.read_bytes()
    assert len(before) < 200_000
    script = tmp_path / "failsave.py"
    script.write_text(_FAILED_SAVE_SCRIPT)
    r = subprocess.run([sys.executable, str(script), kind, str(p), "200000"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "RAISED" in r.stdout, f"save past RLIMIT_FSIZE did not raise: {r.stdout!r}"
    assert p.read_bytes() == before, "a failed save modified the existing file"
    # and the partial temp file was cleaned up
    assert sorted(x.name for x in tmp_path.iterdir()) == ["failsave.py", "keep.vdx"]
    _assert_same_index(old, vecdex.load(str(p)), clustered(5, 16, seed=3))
