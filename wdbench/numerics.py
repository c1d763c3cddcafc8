"""How a run's arithmetic is done: float precision, and cuDNN's algorithm choice. Torch's switches are
process-wide, so every pack sets all of them before it trains and records what it used
(docs/gpu.md: what each precision means on a CPU and on a GPU)."""

from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn.functional as F
from torch.func import vmap

from wdbench.config import RunConfig


def set_numerics(run: RunConfig) -> dict:
    """Set torch's process-wide switches for ``run`` and return them as recorded in provenance:
    fp32: float32 everywhere, TF32 off on a GPU (convolutions included, where torch's default is on);
    tf32: float32 tensors, GPU matmuls and convolutions in TF32; bf16: as tf32, plus the forward pass
    under bfloat16 autocast (``autocast``). On a CPU TF32 does not exist: fp32 and tf32 are the same."""
    tf32 = run.precision in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = tf32  # (the older switches: with the newer fp32_precision ones set,
    torch.backends.cudnn.allow_tf32 = tf32  # reading these raises, and torch's own code still reads them)
    torch.backends.cudnn.benchmark = run.cudnn_benchmark
    torch.backends.cudnn.deterministic = run.deterministic
    torch.use_deterministic_algorithms(run.deterministic, warn_only=True)
    return {
        "precision": run.precision,
        "gpu_tf32_matmul": tf32,
        "gpu_tf32_conv": tf32,
        "autocast": "bfloat16" if run.precision == "bf16" else None,
        "cudnn_benchmark": run.cudnn_benchmark,
        "deterministic": run.deterministic,
    }


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The forward pass's autocast: bfloat16 for precision=bf16 (on a CPU too), else none."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@functools.lru_cache(maxsize=None)
def autocast_reaches_vmap(device_type: str) -> bool:
    """Whether bf16 autocast reaches a convolution under vmap on this kind of device (on a CPU it does
    not: a packed member's convolutions would stay float32 while a lone run's are bfloat16), probed
    on a tiny convolution; where it does not, bf16 runs train alone (wdbench.runner)."""
    weights = torch.ones(2, 1, 1, 1, 1, device=device_type)
    with torch.autocast(device_type, dtype=torch.bfloat16):
        out = vmap(lambda w: F.conv2d(torch.ones(1, 1, 2, 2, device=device_type), w))(weights)
    return out.dtype == torch.bfloat16


def gpu_versions(device: torch.device) -> dict:
    """The GPU, its compute capability, and the CUDA and cuDNN torch was built with (None on a CPU)."""
    if device.type != "cuda":
        return {}
    return {
        "gpu": torch.cuda.get_device_name(device),
        "capability": list(torch.cuda.get_device_capability(device)),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }
