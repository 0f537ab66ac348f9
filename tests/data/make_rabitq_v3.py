"""Writes the RaBitQ format-version-3 files that tests/test_rabitq.py loads to check that files
from before the version-4 layout (several centroids) still open.

They were written by vecdex at commit 31eaf16 (the last with version 3):
    git worktree add /tmp/old 31eaf16 && (build it) && PYTHONPATH=<that build> python tests/data/make_rabitq_v3.py
The data and cases are those of the version-2 files (make_rabitq_v2.py).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_rabitq_v2 import CASES, rabitq_v2_data  # noqa: E402  (same data and cases, newer format)


def main():
    import numpy as np
    import vecdex

    base = rabitq_v2_data()
    here = Path(__file__).parent
    for kind, quant, metric in CASES:
        cls = vecdex.FlatIndex if kind == "flat" else vecdex.Index
        index = cls(dim=base.shape[1], metric=metric, quantization=quant, keep_full_vectors=(quant != "rabitq1"))
        index.add(base, np.arange(100, 100 + len(base)))
        index.save(str(here / f"rabitq_v3_{kind}_{quant}_{metric}.vdx"))


if __name__ == "__main__":
    main()
