"""vecdex.TextIndex: texts in, texts out, with filters, save/load and encoder checks.

Most tests use a tiny deterministic encoder (no onnxruntime needed); the last ones run the real
default bi-encoder (exported once per session in conftest)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import vecdex
from vecdex import TextIndex


class HashEncoder:
    """Bag of hashed words -> unit vectors: similar word sets give near vectors."""

    def __init__(self, dim=32, name="hash-encoder", sha="a" * 64):
        self.dim, self.name, self.sha = dim, name, sha
        self.calls = []

    def identity(self):
        return {"name": self.name, "dim": self.dim, "pooling": "mean", "normalize": True,
                "max_length": 64, "model_sha256": self.sha, "quantization": None}

    def encode(self, texts, batch_size=32, progress=False):
        self.calls.append((len(texts), batch_size, progress))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in t.lower().split():
                out[r, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1
            out[r, -1] += 0.01
        return out / np.linalg.norm(out, axis=1, keepdims=True)


TEXTS = ["python json library", "fast json parser", "c compiler", "python web framework",
         "rust compiler toolchain", "json schema validator"]
ATTRS = {"lang": ["py", "c", "c", "py", "rust", "py"], "size": [1, 2, 3, 4, 5, 6]}


@pytest.fixture
def ti():
    t = TextIndex(HashEncoder(), {"M": 8, "seed": 1})
    t.add(TEXTS, attributes=ATTRS)
    return t


def test_add_and_search(ti):
    assert len(ti) == 6 and ti.index.metric == "cosine" and isinstance(ti.index, vecdex.Index)
    ids, dists, texts = ti.search("python json library", k=3, return_texts=True)
    assert ids.shape == (3,) and ids[0] == 0 and dists[0] == pytest.approx(0, abs=1e-5)
    assert texts[0] == "python json library"
    ids, dists = ti.search(["json", "compiler"], k=2)
    assert ids.shape == (2, 2) and dists.shape == (2, 2)


def test_filters_and_texts(ti):
    ids, dists, texts = ti.search(["json", "compiler"], k=10, filter={"lang": "py"}, return_texts=True)
    assert set(ids[0][ids[0] >= 0]) <= {0, 3, 5}
    assert all(t is None for i, t in zip(ids[0], texts[0]) if i < 0)
    assert [t for t in texts[0] if t] == [TEXTS[i] for i in ids[0] if i >= 0]
    ids, _ = ti.search("json", k=10, filter=vecdex.field("size") >= 5)
    assert set(ids[ids >= 0]) == {4, 5}
    ids, _, plans = ti.search("json", k=2, filter={"lang": "c"}, explain=True)
    assert plans["matches"] == 2  # one query: one plan


def test_ids(ti):
    new = ti.add(["another text"])
    assert new.tolist() == [6]
    got = ti.add(["x y", "z"], ids=[100, 50])
    assert got.tolist() == [100, 50] and got.dtype == np.int64
    assert ti.add(["after"]).tolist() == [101]
    assert ti.get_texts([100, 50, 101, -1, 999]) == ["x y", "z", "after", None, None]
    with pytest.raises(ValueError, match="len"):
        ti.add(["a", "b"], ids=[7])
    with pytest.raises(ValueError):
        ti.add(["dup"], ids=[0])  # id present: rejected by the index, texts untouched
    assert ti.get_texts([0]) == ["python json library"]
    assert ti.add([]).shape == (0,)
    with pytest.raises(TypeError, match="sequence"):
        ti.add("a bare string")


def test_store_texts_false_and_progress(ti):
    ti.add(["secret text"], ids=[42], store_texts=False, progress=True, batch_size=7)
    assert ti.encoder.calls[-1] == (1, 7, True)
    ids, _, texts = ti.search("secret text", k=1, return_texts=True)
    assert ids[0] == 42 and texts == [None]


def test_construction():
    enc = HashEncoder(dim=16)
    flat = vecdex.FlatIndex(dim=16, metric="cosine")
    assert TextIndex(enc, flat).index is flat
    assert isinstance(TextIndex(enc).index, vecdex.Index)
    with pytest.raises(ValueError, match="dim"):
        TextIndex(enc, vecdex.FlatIndex(dim=8))
    with pytest.raises(ValueError, match="dim"):
        TextIndex(enc, {"dim": 8})
    with pytest.raises(TypeError, match="index_or_params"):
        TextIndex(enc, "hnsw")
    with pytest.raises(TypeError, match=r"query_texts\[1\]"):
        TextIndex(enc).search(["a", 2])


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load(tmp_path, kind, mmap):
    enc = HashEncoder()
    index = vecdex.FlatIndex(dim=32, metric="cosine") if kind == "flat" else None
    t = TextIndex(enc, index)
    t.add(TEXTS, attributes=ATTRS)
    t.add(["no text kept"], store_texts=False)
    path = tmp_path / "texts.vdx"
    t.save(path)
    assert (tmp_path / "texts.vdx.texts.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texts.vdx", "texts.vdx.texts.json"]
    u = TextIndex.load(path, HashEncoder(), mmap=mmap)
    assert type(u.index) is type(t.index) and len(u) == 7
    for q in ("json", ["compiler", "python web"]):
        a, b = t.search(q, k=3, filter={"lang": "py"}, return_texts=True), u.search(q, k=3, filter={"lang": "py"},
                                                                                      return_texts=True)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[2] == b[2]
    assert u.get_texts([6]) == [None]
    if mmap:
        with pytest.raises(ValueError, match="read-only"):
            u.add(["more"])


def test_load_refuses_other_encoder(tmp_path):
    t = TextIndex(HashEncoder())
    t.add(TEXTS)
    path = tmp_path / "a.vdx"
    t.save(path)
    with pytest.raises(ValueError, match="name"):
        TextIndex.load(path, HashEncoder(name="other-model"))
    with pytest.raises(ValueError, match="dim"):
        TextIndex.load(path, HashEncoder(dim=16))
    with pytest.warns(RuntimeWarning, match="model_sha256"):
        TextIndex.load(path, HashEncoder(sha="b" * 64))


def test_load_refuses_mismatched_sidecar(tmp_path):
    t = TextIndex(HashEncoder())
    t.add(TEXTS)
    path = tmp_path / "a.vdx"
    t.save(path)
    t.add(["one more"])
    t.index.save(path)  # index replaced without its sidecar
    with pytest.raises(ValueError, match="does not belong"):
        TextIndex.load(path, HashEncoder())
    with pytest.raises(FileNotFoundError, match="sidecar"):
        TextIndex.load(tmp_path / "none.vdx", HashEncoder())
    side = tmp_path / "a.vdx.texts.json"
    doc = json.loads(side.read_text())
    doc["format"] = 99
    side.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="format"):
        TextIndex.load(path, HashEncoder())


# ------------------------------------------------------------------ with the real encoder


def test_real_encoder_search(bi_encoder, demo_texts, tmp_path):
    d = vecdex.datasets.load_debian_demo()
    t = TextIndex(bi_encoder, {"M": 16, "seed": 0})
    texts = demo_texts[:500]
    t.add(texts, ids=np.arange(1000, 1500), attributes={"section": [str(s) for s in d["sections"][:500]]})
    ids, dists, got = t.search(texts[:20], k=5, return_texts=True)
    assert (ids[:, 0] == np.arange(1000, 1020)).mean() >= 0.9  # each summary finds itself
    assert got[0][0] == texts[0]
    sec = str(d["sections"][3])
    ids, _ = t.search(texts[3], k=5, filter={"section": sec})
    assert ids[0] == 1003
    t.save(tmp_path / "real.vdx")
    u = TextIndex.load(tmp_path / "real.vdx", bi_encoder)
    np.testing.assert_array_equal(u.search(texts[:5], k=3)[0], t.search(texts[:5], k=3)[0])
