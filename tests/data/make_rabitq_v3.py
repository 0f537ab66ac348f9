"""Writes the RaBitQ format-version-3 files that tests/test_rabitq.py loads to check that files
from before the version-4 layout (several centroids) still open.

They were written by vecdex at commit 31eaf16 (the last with version 3):
    git worktree add /tmp/old 31eaf16 && (build it) && PYTHONPATH=<that build> python tests/data/make_rabitq_v3.py
The data and cases are those of the version-2 files (make_rabitq_v2.py).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_rabitq_v2 import write_files  # noqa: E402  (same data and cases, newer format)

if __name__ == "__main__":
    write_files("v3")
