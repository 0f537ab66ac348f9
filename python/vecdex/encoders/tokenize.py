"""Tokenisation with Hugging Face `tokenizers` (tokenizer.json), padded per batch.

The tokenizer.json files of exported models often carry the training-time padding (e.g.
all-MiniLM-L6-v2's pads every text to 128) and truncation. Both are replaced here: no padding
(batches are padded to their own longest row, after sorting by length) and truncation at the
model's max_length, so an over-long text is cut, never an error.
"""
from __future__ import annotations

import numpy as np

from ._deps import require


def check_texts(texts, what="texts"):
    """A list of str from `texts` (a list, tuple or other sequence), TypeError naming a bad item."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of str, not a single {type(texts).__name__}")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of str, got {type(texts).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}] is {type(t).__name__}, not str")
    return items


class Tokenizer:
    """tokenizer.json with truncation at `max_length` and no padding of its own."""

    def __init__(self, path, max_length: int, pad_id: int = 0):
        tokenizers = require("tokenizers")
        self._tok = tokenizers.Tokenizer.from_file(str(path))
        self.max_length = int(max_length)
        self.pad_id = int(pad_id)
        self._tok.no_padding()
        # longest_first: for pairs, the longer of query and document loses tokens first (what
        # transformers' truncation=True does), so a long query cannot make the pair an error.
        self._tok.enable_truncation(self.max_length, strategy="longest_first")

    def encode(self, inputs):
        """Encodings of str inputs, or of (a, b) tuples as pairs, with special tokens."""
        if not inputs:
            return []
        return self._tok.encode_batch(inputs, add_special_tokens=True)

    def pad(self, encodings, with_type_ids: bool):
        """Feeds for one batch, padded to its longest row: int64 (b, L) arrays."""
        b = len(encodings)
        L = max(len(e.ids) for e in encodings)
        ids = np.full((b, L), self.pad_id, dtype=np.int64)
        mask = np.zeros((b, L), dtype=np.int64)
        types = np.zeros((b, L), dtype=np.int64) if with_type_ids else None
        for r, e in enumerate(encodings):
            n = len(e.ids)
            ids[r, :n] = e.ids
            mask[r, :n] = 1
            if types is not None:
                types[r, :n] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            feeds["token_type_ids"] = types
        return feeds
