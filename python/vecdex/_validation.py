"""Argument checks and numpy conversions shared by the index classes.

Everything here turns user input into exactly what the core expects (C-contiguous float32 rows,
uint64 ids, positive ints) or raises a ValueError/TypeError that names the problem.
"""
from __future__ import annotations

import numbers
import operator

import numpy as np

_MAX_ID = 2**63 - 1


def as_rows(x, dim: int, what: str) -> tuple[np.ndarray, bool]:
    """Return ``(rows, was_1d)`` with rows a C-contiguous float32 array of shape (n, dim)."""
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "USVMmb":
        raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        raise TypeError(f"{what} must be real numbers, got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}")
    was_1d = arr.ndim == 1
    if was_1d:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 1-D vector or a 2-D array (n, {dim}), got {arr.ndim} dimensions")
    if arr.shape[1] != dim:
        raise ValueError(f"{what} have dimension {arr.shape[1]}, but the index has dim={dim}")
    # Values beyond float32's range become inf here, which the core then rejects by name.
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(arr, dtype=np.float32), was_1d


def as_ids(ids, n: int) -> np.ndarray:
    """Return ids as a 1-D uint64 array of length n, refusing negative, fractional or huge values."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"ids must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"got {arr.shape[0]} ids for {n} vectors")
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if arr.dtype == object:
        try:
            arr = np.array([operator.index(v) for v in arr], dtype=object)
        except TypeError:
            raise TypeError("ids must be integers") from None
        if any(v < 0 or v > _MAX_ID for v in arr):
            raise ValueError("ids must be in [0, 2**63 - 1]")
        return arr.astype(np.uint64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise TypeError("ids must be integers, got non-integral floats")
        if arr.min() < 0 or arr.max() > _MAX_ID:
            raise ValueError("ids must be in [0, 2**63 - 1]")
        return arr.astype(np.uint64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and arr.min() < 0:
        raise ValueError(f"ids must be non-negative, got {int(arr.min())}")
    if arr.dtype.kind == "u" and arr.max() > _MAX_ID:
        raise ValueError("ids must be in [0, 2**63 - 1]")
    return np.ascontiguousarray(arr, dtype=np.uint64)


def positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def thread_count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"num_threads must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < 0:
        raise ValueError(f"num_threads must be >= 0 (0 means all cores), got {value}")
    return value
