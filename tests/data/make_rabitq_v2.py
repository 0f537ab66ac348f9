"""Writes the RaBitQ format-version-2 files that tests/test_rabitq.py loads to check that files
from before the version-3 layout (separate scoring factors) still open.

They were written by vecdex at commit 6cd8d4c (the last with version 2):
    git worktree add /tmp/old 6cd8d4c && (build it) && PYTHONPATH=<that build> python tests/data/make_rabitq_v2.py
The data come from `rabitq_v2_data()` below, which the test calls too.
"""
from pathlib import Path

import numpy as np


def rabitq_v2_data():
    rng = np.random.default_rng(20261122)
    base = rng.standard_normal((80, 24)).astype(np.float32)
    base[:40] += 3.0  # two clusters, so the centroid is not at the origin
    return base


CASES = [("flat", "rabitq1", "l2"), ("hnsw", "rabitq4", "cosine"), ("flat", "rabitq8", "ip")]


def write_files(tag):
    """rabitq_<tag>_<kind>_<quant>_<metric>.vdx for every case, by the vecdex on the path."""
    import vecdex

    base = rabitq_v2_data()
    here = Path(__file__).parent
    for kind, quant, metric in CASES:
        cls = vecdex.FlatIndex if kind == "flat" else vecdex.Index
        index = cls(dim=base.shape[1], metric=metric, quantization=quant, keep_full_vectors=(quant != "rabitq1"))
        index.add(base, np.arange(100, 100 + len(base)))
        index.save(str(here / f"rabitq_{tag}_{kind}_{quant}_{metric}.vdx"))


if __name__ == "__main__":
    write_files("v2")
