"""ONNX Runtime sessions: execution providers, threads and memory settings.

A requested provider that is not active after the session is created is an error: ONNX Runtime
itself would silently run the model on the CPU provider instead (for example when the CUDA
libraries fail to load), which turns a GPU job into a 50x slower CPU job without a word.
"""
from __future__ import annotations

import warnings

from ._deps import physical_cores, require

PROVIDERS = ("cpu", "cuda", "auto")
_ORT_NAME = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def available_providers() -> list:
    """ONNX Runtime's providers usable in this installation (e.g. ['CPUExecutionProvider'])."""
    return list(require("onnxruntime").get_available_providers())


def _check_provider(provider) -> str:
    if not isinstance(provider, str) or provider.lower() not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}: expected one of {', '.join(map(repr, PROVIDERS))}")
    return provider.lower()


def _provider_list(provider: str, device_id: int, available: list) -> list:
    """The provider list to ask ONNX Runtime for, raising when a requested one is not installed."""
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    cuda = ("CUDAExecutionProvider", {
        "device_id": int(device_id),
        # Grow the CUDA arena by what is asked, not by powers of two: batches of varying shapes
        # otherwise leave ever larger, mostly unused blocks behind.
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "DEFAULT",
    })
    if provider == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise RuntimeError(
                "provider='cuda' requested but ONNX Runtime has no CUDAExecutionProvider here "
                f"(available: {', '.join(available)}); install onnxruntime-gpu and a CUDA runtime")
        # The CPU provider stays listed for the few nodes CUDA has no kernel for (ONNX Runtime
        # places those per node); the check after creation makes sure CUDA really is active.
        return [cuda, "CPUExecutionProvider"]
    # auto: CUDA when installed, otherwise CPU
    return [cuda, "CPUExecutionProvider"] if "CUDAExecutionProvider" in available else ["CPUExecutionProvider"]


def session_options(threads=None):
    """SessionOptions for encoders: intra-op threads = physical cores, inter-op 1, all graph
    optimisations, and memory settings that do not grow with the number of distinct shapes."""
    ort = require("onnxruntime")
    so = ort.SessionOptions()
    if threads is None or threads == 0:
        threads = physical_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be a non-negative int (0 or None: physical cores), got {threads!r}")
    so.intra_op_num_threads = int(threads)
    # Encoder graphs are one chain of layers: a second inter-op pool only adds idle threads.
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Memory patterns are planned and cached per input shape; with a new (batch, length) shape in
    # almost every batch they only cost memory. The CPU arena stays on (it is faster than malloc
    # per tensor); its growth is bounded by the largest batch, and run_options() asks it to shrink
    # back after each run (see tests/test_encoders.py::test_no_memory_growth).
    so.enable_mem_pattern = False
    so.enable_cpu_mem_arena = True
    so.log_severity_level = 3  # errors only: ORT warns about unused initialisers on HF exports
    return so


def run_options(provider_names, device_id: int = 0):
    """RunOptions that return the arenas' free memory to the system after every run.

    Without this an arena keeps every block it ever grew to; with batches of varying shapes that
    is the peak of all of them, held for the life of the session."""
    ort = require("onnxruntime")
    ro = ort.RunOptions()
    devices = ["cpu:0"]
    if "CUDAExecutionProvider" in provider_names:
        devices.append(f"gpu:{int(device_id)}")
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", ";".join(devices))
    return ro


def create_session(model_path, provider="cpu", threads=None, device_id=0):
    """An InferenceSession on `provider`, checked to really run there.

    Returns (session, active provider names). Raises RuntimeError when a requested provider is
    not installed or did not become active; `provider="auto"` uses CUDA when it works and falls
    back to the CPU with a warning otherwise."""
    ort = require("onnxruntime")
    provider = _check_provider(provider)
    available = available_providers()
    providers = _provider_list(provider, device_id, available)
    so = session_options(threads)
    sess = ort.InferenceSession(str(model_path), sess_options=so, providers=providers)
    active = list(sess.get_providers())
    if provider == "cuda" and "CUDAExecutionProvider" not in active:
        raise RuntimeError(
            f"provider='cuda' requested but the session runs on {', '.join(active)} only: ONNX Runtime "
            "could not initialise CUDA (check the CUDA/cuDNN libraries and the device id)")
    if provider == "auto" and "CUDAExecutionProvider" in available and "CUDAExecutionProvider" not in active:
        warnings.warn("provider='auto': CUDAExecutionProvider is installed but failed to initialise; "
                      "running on the CPU", RuntimeWarning, stacklevel=3)
    return sess, active
