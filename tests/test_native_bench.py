"""The native benchmark binary ``vecdex-bench`` on tiny generated files.

Skipped unless a built binary is found: ``VECDEX_BENCH_BIN``, then ``vecdex-bench`` on PATH, then
next to the running Python (where pip installs it into a virtual environment's bin/ when the
build has ``VECDEX_BUILD_BENCH=ON``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import brute_force, clustered


def _find_bench():
    env = os.environ.get("VECDEX_BENCH_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    found = shutil.which("vecdex-bench")
    if found:
        return found
    beside = Path(sys.executable).parent / "vecdex-bench"
    return str(beside) if os.access(beside, os.X_OK) else None


BENCH = _find_bench()
pytestmark = pytest.mark.skipif(BENCH is None, reason="vecdex-bench not built (set VECDEX_BENCH_BIN)")

ROW = re.compile(r"^\s*(\S+)\s*\|\s*([0-9.]+)\s*\|\s*([0-9.]+)\s*\|\s*([0-9.]+)\s*$", re.M)


def run_bench(*args):
    return subprocess.run([BENCH, *map(str, args)], capture_output=True, text=True, timeout=120)


def table(stdout):
    """(ef, recall, qps) per table row."""
    return [(ef, float(r), float(q)) for ef, r, q, _ in ROW.findall(stdout)]


def write_vecs(path, a, dtype):
    a = np.ascontiguousarray(a, dtype=dtype)
    dims = np.full((a.shape[0], 1), a.shape[1], dtype=np.int32)
    with open(path, "wb") as f:
        f.write(np.hstack([dims.view(np.uint8).reshape(a.shape[0], 4),
                           a.view(np.uint8).reshape(a.shape[0], -1)]).tobytes())


@pytest.fixture
def data(tmp_path):
    base, queries = clustered(600, 16, n_clusters=8, seed=3, n_queries=40)
    np.save(tmp_path / "base.npy", base)
    np.save(tmp_path / "queries.npy", queries)
    return tmp_path, base, queries


def test_help():
    r = run_bench("--help")
    assert r.returncode == 0
    assert "usage: vecdex-bench" in r.stdout


def test_npy_sweep_computes_ground_truth(data):
    d, _, _ = data
    r = run_bench("--base", d / "base.npy", "--queries", d / "queries.npy", "--metric", "l2",
                  "--ef", "10,64", "--k", "5", "--repeat", "1", "--build-threads", "1")
    assert r.returncode == 0, r.stderr
    assert "recall@5" in r.stdout
    assert "computed exactly with FlatIndex" in r.stdout
    rows = table(r.stdout)
    assert [ef for ef, _, _ in rows] == ["10", "64"]
    assert all(0.0 <= rec <= 1.0 and qps > 0 for _, rec, qps in rows)
    assert rows[-1][1] >= 0.95  # 600 points, ef=64: HNSW is all but exact
    assert "QPS at recall>=0.95:" in r.stdout


def test_fvecs_with_ivecs_ground_truth_and_flat_index(data):
    d, base, queries = data
    write_vecs(d / "base.fvecs", base, np.float32)
    write_vecs(d / "queries.fvecs", queries, np.float32)
    gt, _ = brute_force(base, queries, 10, "cosine")
    write_vecs(d / "gt.ivecs", gt, np.int32)
    r = run_bench("--base", d / "base.fvecs", "--queries", d / "queries.fvecs", "--gt", d / "gt.ivecs",
                  "--metric", "cosine", "--index", "flat", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    assert "gt.ivecs" in r.stdout and "computed exactly" not in r.stdout
    rows = table(r.stdout)
    assert len(rows) == 1 and rows[0][0] == "exact"
    assert rows[0][1] == pytest.approx(1.0)


def test_save_then_load(data):
    d, _, _ = data
    common = ["--base", d / "base.npy", "--queries", d / "queries.npy", "--ef", "32", "--repeat", "1"]
    r = run_bench(*common, "--save", d / "index.vdx")
    assert r.returncode == 0, r.stderr
    r2 = run_bench(*common, "--load", d / "index.vdx")
    assert r2.returncode == 0, r2.stderr
    assert table(r2.stdout)[0][1] == table(r.stdout)[0][1]


def _truncated_npy(d):
    raw = (d / "base.npy").read_bytes()
    (d / "bad.npy").write_bytes(raw[:-7])
    return d / "bad.npy", "truncated"


def _float64_npy(d):
    np.save(d / "bad.npy", np.load(d / "base.npy").astype(np.float64))
    return d / "bad.npy", "'<f8' is not supported"


def _truncated_fvecs(d):
    write_vecs(d / "bad.fvecs", np.load(d / "base.npy"), np.float32)
    raw = (d / "bad.fvecs").read_bytes()
    (d / "bad.fvecs").write_bytes(raw[:-3])
    return d / "bad.fvecs", "not a multiple of the record size"


def _inconsistent_fvecs(d):
    rec = np.array([3, 0, 0, 0], dtype=np.int32).tobytes()
    bad = np.array([2, 0, 0, 0], dtype=np.int32).tobytes()  # same length, other dimension
    (d / "bad.fvecs").write_bytes(rec + bad)
    return d / "bad.fvecs", "record 1 has dimension 2"


@pytest.mark.parametrize("make_bad", [_truncated_npy, _float64_npy, _truncated_fvecs, _inconsistent_fvecs])
def test_broken_base_file_is_an_error(data, make_bad):
    d, _, _ = data
    bad, message = make_bad(d)
    r = run_bench("--base", bad, "--queries", d / "queries.npy", "--repeat", "1")
    assert r.returncode != 0
    assert "error:" in r.stderr and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.returncode > 0  # an exit, not a signal


def test_mismatched_dimensions_and_ground_truth(data):
    d, _, queries = data
    np.save(d / "q8.npy", queries[:, :8].copy())
    r = run_bench("--base", d / "base.npy", "--queries", d / "q8.npy")
    assert r.returncode == 1 and "dimension 8" in r.stderr

    np.save(d / "gt.npy", np.full((len(queries), 10), 10_000, dtype=np.int64))
    r = run_bench("--base", d / "base.npy", "--queries", d / "queries.npy", "--gt", d / "gt.npy")
    assert r.returncode == 1 and "not a row of the base" in r.stderr


@pytest.mark.parametrize("args", [[], ["--k", "abc"], ["--ef", "10,,20"], ["--bogus", "1"], ["--metric", "hamming"]])
def test_bad_command_line_exits_2(data, args):
    d, _, _ = data
    r = run_bench("--base", d / "base.npy", *(["--queries", d / "queries.npy"] if args else []), *args)
    assert r.returncode == 2
    assert "error:" in r.stderr
