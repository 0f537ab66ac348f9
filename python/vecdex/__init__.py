"""vecdex: a native-accelerated vector index.

>>> import vecdex, numpy as np
>>> index = vecdex.Index(dim=4, metric="cosine")
>>> index.add(np.eye(4, dtype=np.float32))
>>> ids, dists = index.search(np.eye(4, dtype=np.float32)[0], k=2)
"""
from __future__ import annotations

import warnings as _warnings

from . import _core
from ._index import QUANTIZATIONS, FlatIndex, Index, load
from .filters import field
from .text_index import TextIndex
from .cur import CURIndex

__version__ = "0.1.0"
__all__ = ["Index", "FlatIndex", "load", "QUANTIZATIONS", "field", "TextIndex", "CURIndex", "simd_level",
           "available_simd_levels", "__version__"]


def __getattr__(name):
    # vecdex.encoders is imported on first use only: `import vecdex` must not pull in
    # onnxruntime, tokenizers or torch (the encoders' optional dependencies).
    if name == "encoders":
        import importlib

        return importlib.import_module(".encoders", __name__)
    raise AttributeError(f"module 'vecdex' has no attribute {name!r}")

if _core.simd_env_warning():
    _warnings.warn(_core.simd_env_warning(), RuntimeWarning, stacklevel=2)


def simd_level() -> str:
    """The SIMD kernel level in use: 'avx512', 'avx2', 'neon' or 'scalar'."""
    return _core.simd_level()


def available_simd_levels() -> list:
    """Kernel levels this machine can run, lowest first ('scalar' is always there)."""
    return list(_core.available_simd_levels())
