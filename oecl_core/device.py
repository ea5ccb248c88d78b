"""Device choice and mixed precision, shared by training, scoring and the benchmark."""
from __future__ import annotations

from contextlib import nullcontext

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    return torch.device(name)


def autocast(device: torch.device, precision: str = "auto", cache: bool = True):
    """The forward's precision: "auto" is bf16 autocast on CUDA and full float32 elsewhere; "bf16" is bf16
    autocast on any device (CPU included, e.g. to compare with float32); "fp32" is full float32 everywhere.
    cache False: no reuse of a weight's bf16 copy within the region (needed inside a CUDA graph capture)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid choices: {', '.join(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
