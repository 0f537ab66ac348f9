"""Pooling of token states into one vector per text, and L2 normalisation (numpy, float32)."""
from __future__ import annotations

import numpy as np

POOLINGS = ("mean", "cls")


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """(b, L, d) token states + (b, L) mask -> (b, d): mean over real tokens, or the first token."""
    if mode == "cls":
        return np.ascontiguousarray(hidden[:, 0, :], dtype=np.float32)
    if mode == "mean":
        m = mask.astype(np.float32)
        summed = np.matmul(m[:, None, :], hidden)[:, 0, :]  # batched (1, L) x (L, d): one BLAS call per row
        # clamp as sentence-transformers does (1e-9) so an all-padding row cannot divide by zero
        counts = np.maximum(m.sum(axis=1, keepdims=True), 1e-9)
        return (summed / counts).astype(np.float32, copy=False)
    raise ValueError(f"unknown pooling {mode!r}: expected one of {POOLINGS}")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), like torch.nn.functional.normalize."""
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32, copy=False)
