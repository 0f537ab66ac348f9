"""memory_usage() and repr()."""

from __future__ import annotations

import numpy as np
import pytest

import vecdex

from conftest import METRICS


def _new(kind, dim, metric="l2"):
    if kind == "hnsw":
        return vecdex.Index(dim=dim, metric=metric, M=16, ef_construction=40, seed=0)
    return vecdex.FlatIndex(dim=dim, metric=metric)


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_memory_usage(kind):
    n, dim = 2000, 24
    index = _new(kind, dim)
    empty = index.memory_usage()
    assert isinstance(empty, dict) and "total" in empty
    for key, val in empty.items():
        assert isinstance(key, str) and isinstance(val, int) and val >= 0, (key, val)
    index.add(np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32))
    mu = index.memory_usage()
    assert all(isinstance(v, int) and v >= 0 for v in mu.values()), mu
    total = mu["total"]
    assert total >= n * dim * 4, mu            # at least the raw vectors
    assert total >= n * 8 + n * dim * 4, mu    # ... plus the ids
    if kind == "hnsw":
        # plus at least one link per node on layer 0 (4 bytes each)
        assert total >= n * dim * 4 + n * 8 + n * 4, mu
    others = {k: v for k, v in mu.items() if k != "total"}
    if others:
        assert total >= max(others.values()), mu
        assert total == sum(others.values()), f"total is not the sum of the parts: {mu}"
    assert total > empty["total"]
    # it is not absurd either (< 20x the raw data + 10 MB)
    assert total < 20 * (n * dim * 4) + 10 * 2**20, mu


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_memory_grows(kind):
    index = _new(kind, 16)
    rng = np.random.default_rng(1)
    index.add(rng.normal(size=(500, 16)).astype(np.float32))
    a = index.memory_usage()["total"]
    index.add(rng.normal(size=(1500, 16)).astype(np.float32))
    b = index.memory_usage()["total"]
    assert b >= a + 1500 * 16 * 4


@pytest.mark.parametrize("metric", METRICS)
def test_repr(metric):
    idx = vecdex.Index(dim=37, metric=metric, M=9, ef_construction=55)
    idx.add(np.random.default_rng(0).normal(size=(3, 37)).astype(np.float32))
    r = repr(idx)
    assert "Index" in r and "37" in r and metric in r
    flat = vecdex.FlatIndex(dim=41, metric=metric)
    r = repr(flat)
    assert "FlatIndex" in r and "41" in r and metric in r
    assert len(flat) == 0 and len(idx) == 3
