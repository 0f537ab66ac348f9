"""Thread safety: concurrent searches equal serial ones; num_threads doesn't change results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import vecdex

from conftest import METRICS, clustered


@pytest.fixture(scope="module")
def data():
    base, queries = clustered(3000, 32, seed=31, n_queries=400)
    return base, queries


def _build(kind, metric, base):
    if kind == "hnsw":
        index = vecdex.Index(dim=base.shape[1], metric=metric, M=12, ef_construction=64, seed=0)
    else:
        index = vecdex.FlatIndex(dim=base.shape[1], metric=metric)
    index.add(base)
    return index


def _search(index, q, **kw):
    if isinstance(index, vecdex.Index):
        return index.search(q, k=10, ef=48, **kw)
    return index.search(q, k=10, **kw)


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
@pytest.mark.parametrize("metric", METRICS)
def test_concurrent_search_equals_serial(data, kind, metric):
    base, queries = data
    index = _build(kind, metric, base)
    chunks = np.array_split(np.arange(len(queries)), 16)
    singles = list(range(0, len(queries), 7))
    # serial reference made of exactly the same calls the threads will make
    ser_chunk = [_search(index, queries[c], num_threads=1) for c in chunks]
    ser_single = {j: _search(index, queries[j], num_threads=1) for j in singles}
    ser_full = _search(index, queries, num_threads=1)

    start = threading.Barrier(8)

    def work(i):
        start.wait(timeout=60)
        out = []
        # each worker searches several chunks, 1-D single queries and the whole batch
        for ci in range(i % 16, 16, 8):
            out.append((ci, _search(index, queries[chunks[ci]], num_threads=1 + (i % 3))))
        single = [(j, _search(index, queries[j])) for j in singles[i::8]]
        full = _search(index, queries, num_threads=2)
        return out, single, full

    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(work, range(8)))

    for out, single, full in results:
        for ci, (ids, d) in out:
            np.testing.assert_array_equal(ids, ser_chunk[ci][0])
            np.testing.assert_array_equal(d, ser_chunk[ci][1])
        for j, (ids, d) in single:
            np.testing.assert_array_equal(ids, ser_single[j][0])
            np.testing.assert_array_equal(d, ser_single[j][1])
        np.testing.assert_array_equal(full[0], ser_full[0])
        np.testing.assert_array_equal(full[1], ser_full[1])


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
@pytest.mark.parametrize("metric", METRICS)
def test_num_threads_does_not_change_results(data, kind, metric):
    base, queries = data
    index = _build(kind, metric, base)
    ref = _search(index, queries, num_threads=1)
    for nt in (0, 2, 3, 8):
        got = _search(index, queries, num_threads=nt)
        np.testing.assert_array_equal(got[0], ref[0], err_msg=f"num_threads={nt}")
        np.testing.assert_array_equal(got[1], ref[1], err_msg=f"num_threads={nt}")


def test_flat_add_num_threads_equal(data):
    base, queries = data
    res = []
    for nt in (1, 0, 4):
        index = vecdex.FlatIndex(dim=32, metric="cosine")
        index.add(base, num_threads=nt)
        res.append((index.get_vectors(index.ids()), index.search(queries, k=10)))
    for vecs, (ids, d) in res[1:]:
        np.testing.assert_array_equal(vecs, res[0][0])
        np.testing.assert_array_equal(ids, res[0][1][0])
        np.testing.assert_array_equal(d, res[0][1][1])


def test_gil_released_during_search(data):
    """While one thread runs a long search, another Python thread keeps running."""
    import time

    base, queries = data
    index = vecdex.FlatIndex(dim=32, metric="l2")
    index.add(np.tile(base, (2, 1)))
    big_q = np.tile(queries, (5, 1))
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        time.sleep(0.01)
        calls = 0
        t0 = time.perf_counter()
        while calls < 3 or time.perf_counter() - t0 < 0.3:
            index.search(big_q, k=10, num_threads=1)
            calls += 1
        t1 = time.perf_counter()
    finally:
        done.set()
        t.join()
    during = sum(1 for x in ticks if t0 <= x <= t1)
    elapsed_ms = (t1 - t0) * 1e3
    # with the GIL held the ticker could only run between calls (~1 tick/call)
    assert during >= max(10, 3 * calls, elapsed_ms / 20), (during, calls, elapsed_ms)


def test_concurrent_searches_on_different_indexes(data):
    base, queries = data
    idxs = [_build("hnsw", m, base) for m in METRICS]
    serial = [_search(ix, queries) for ix in idxs]

    def work(i):
        return _search(idxs[i % 3], queries)

    with ThreadPoolExecutor(max_workers=6) as ex:
        got = list(ex.map(work, range(12)))
    for i, (ids, d) in enumerate(got):
        np.testing.assert_array_equal(ids, serial[i % 3][0])
        np.testing.assert_array_equal(d, serial[i % 3][1])
