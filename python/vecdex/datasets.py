"""Small data sets shipped with vecdex, for demos and smoke tests.

``load_debian_demo()`` returns 2,000 Debian 12 package descriptions embedded with
all-MiniLM-L6-v2 (384 dimensions, cosine). See ``vecdex/data/README.md`` for where the data
came from and ``bench/make_demo_data.py`` in the source tree for the script that made it.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Dict

import numpy as np

__all__ = ["load_debian_demo", "DEBIAN_DEMO_FILE"]

DEBIAN_DEMO_FILE = "debian_2k.npz"


def _read_data_file(name: str) -> bytes:
    if __package__:  # imported as vecdex.datasets: works from a wheel, a zip or a source tree
        from importlib.resources import files

        return (files(__package__) / "data" / name).read_bytes()
    # Loaded by file path (e.g. demo.py run as a plain script): use the folder next to this file.
    return (Path(__file__).resolve().parent / "data" / name).read_bytes()


def load_debian_demo() -> Dict[str, np.ndarray]:
    """Load the embedded Debian demo set.

    Returns a dict with
      ``vectors``   float32 (2000, 384), unit length (all-MiniLM-L6-v2 embeddings of the long
                    package descriptions; stored as float16, converted back and re-normalised),
      ``names``     str (2000,) package names,
      ``summaries`` str (2000,) one-line package summaries,
      ``sections``  str (2000,) Debian archive sections,
      ``rows``      int32 (2000,) the rows of the full 63,666-item set they were drawn from.
    """
    with np.load(io.BytesIO(_read_data_file(DEBIAN_DEMO_FILE)), allow_pickle=False) as npz:
        out = {key: npz[key] for key in npz.files}
    vectors = out["vectors"].astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    out["vectors"] = vectors
    return out
