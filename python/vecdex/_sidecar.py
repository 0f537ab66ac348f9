"""JSON sidecar files written beside an index file (TextIndex's texts, CURIndex's items)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile

import numpy as np


def ids_digest(ids: np.ndarray) -> str:
    """A hash of the index's ids in row order: a sidecar records it so that a sidecar and an index
    file that do not belong together are refused on load."""
    return hashlib.sha256(np.ascontiguousarray(ids, dtype="<i8").tobytes()).hexdigest()


def write_json_atomic(path: str, doc) -> None:
    """Write `doc` as JSON to `path` through a temporary file and a rename, so a failed write
    never harms the previous file. The document is serialised before any file is touched."""
    text = json.dumps(doc, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: str, what: str):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {what} {path!r} beside the index")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path!r} is not a valid {what}: {e}") from None
