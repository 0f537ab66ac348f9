"""--threads read from the command line before numpy (or torch) is imported: BLAS and OpenMP pools
size themselves from environment variables once, when first loaded. No imports beyond the
standard library, so a benchmark can call it first."""
from __future__ import annotations


def early_threads(argv, default: str) -> str:
    """The --threads value in argv (`--threads N` or `--threads=N`), else `default`."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return default

