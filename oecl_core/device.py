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


# Constants of the training steps and scoring forwards, by (values, device, dtype). Built from host data, each
# would be a host->device copy per call, and on CUDA such a copy waits for the device (a cudaStreamSynchronize).
_CONSTANTS: dict[tuple, torch.Tensor] = {}


def constant(values: tuple, device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """torch.tensor(values, dtype=dtype, device=device), built once per (values, device, dtype) and then reused
    (the same tensor: never modify it in place)."""
    key = (values, torch.device(device), dtype)
    cached = _CONSTANTS.get(key)
    if cached is None:
        # an ordinary tensor even when first asked for under inference_mode, so autograd may save it later
        with torch.inference_mode(False):
            cached = _CONSTANTS[key] = torch.tensor(values, dtype=dtype, device=device)
    return cached


def use_cudnn_benchmark(device: torch.device) -> None:
    """On CUDA, let cuDNN time its convolution algorithms for each new input shape and keep the fastest (the shapes
    of a run's steps and scoring batches repeat); elsewhere the flag is left as it is. Sets a flag only: CUDA is
    not touched here."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True


def wants_channels_last(device: torch.device) -> bool:
    """Whether a network on `device` runs channels-last: on CUDA (tensor-core convolutions want NHWC)."""
    return torch.device(device).type == "cuda"


def place_network(model: torch.nn.Module, device: torch.device, channels_last: bool | None = None) -> torch.nn.Module:
    """The network on `device`, its 4-D weights channels-last where `channels_last` (None: wants_channels_last),
    for training and for a checkpoint loaded to score alike (load_state_dict copies into the weights and keeps
    their memory format)."""
    model = model.to(device)
    if wants_channels_last(device) if channels_last is None else channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
