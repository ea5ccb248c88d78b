"""Counting what makes the host wait for the device: tensors built from host data and values read back.

On CUDA a tensor made from host data (torch.tensor, Tensor.new_tensor, ...) is a host->device copy that ends in a
cudaStreamSynchronize, and a value read back (.item(), bool(t), .numpy(), ...) or a result whose shape depends on
the data (a boolean mask, nonzero) waits for every queued kernel. A training step or a scoring forward should do
neither: `count_host_tensors` counts both on any device (on the CPU too, where nothing waits, so tests can check
the code paths), and `count_cuda_syncs` counts the synchronisations CUDA itself reports.
"""
from __future__ import annotations

import os
import sys
import warnings
from collections import Counter
from contextlib import contextmanager

import torch

# Made from host data: always counted.
MADE = ("tensor", "new_tensor", "from_numpy")
# Made from host data unless given a tensor (then no copy from the host).
MADE_UNLESS_TENSOR = ("as_tensor", "asarray")
# Values read back to the host.
READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu")
# Results whose size depends on the data (the device must finish to know it).
DATA_SHAPED = ("nonzero", "argwhere", "masked_select", "unique")
# Kinds beyond the names: indexing with a boolean mask, or with a Python list (host data).
MASK_INDEX, HOST_INDEX = "mask_index", "host_index"
_MISSING = object()

# PyTorch's optimisers keep their step counts in host tensors on purpose (Adam's "step" unless capturable or fused):
# their reads and builds stay on the host on CUDA too, so they are not counted.
HOST_STATE_CODE = (os.path.join(os.path.dirname(torch.__file__), "optim") + os.sep,)


class HostCounts(Counter):
    """Counts by kind (the names above); `sites` counts (kind, "file:line") of the code that made each call."""

    def __init__(self):
        super().__init__()
        self.sites: Counter = Counter()

    @property
    def total(self) -> int:
        return sum(self.values())

    def __str__(self) -> str:
        if not self.sites:
            return "no host tensors or reads"
        return "; ".join(f"{kind} at {site} x{n}" for (kind, site), n in self.sites.most_common())


def _is_mask(index) -> bool:
    if isinstance(index, tuple):
        return any(_is_mask(i) for i in index)
    return isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8)


def _is_host_index(index) -> bool:
    if isinstance(index, tuple):
        return any(_is_host_index(i) for i in index)
    return isinstance(index, list)


@contextmanager
def count_host_tensors(ignore: tuple[str, ...] = HOST_STATE_CODE):
    """Counts, while open, the tensors made from host data and the syncing reads of the Python API (see the lists
    above) by whatever code runs, yielding a HostCounts. Calls made from files under a prefix in `ignore` are not
    counted, nor calls made inside a counted call. Patches torch and torch.Tensor while open: one at a time."""
    counts = HostCounts()
    state = {"depth": 0}

    def note(kind: str) -> None:
        frame = sys._getframe(2)  # the caller of the wrapper
        if not state["depth"] and not frame.f_code.co_filename.startswith(ignore):
            counts[kind] += 1
            counts.sites[(kind, f"{frame.f_code.co_filename}:{frame.f_lineno}")] += 1

    def wrap(original, kind, counted):
        def wrapper(*args, **kwargs):
            if counted(*args, **kwargs):
                note(kind)
            state["depth"] += 1
            try:
                return original(*args, **kwargs)
            finally:
                state["depth"] -= 1
        return wrapper

    def always(*args, **kwargs):
        return True

    def not_tensor(data=None, *args, **kwargs):
        return not isinstance(data, torch.Tensor)

    def tensor_repeats(x=None, repeats=None, *args, **kwargs):  # repeats a tensor, or x itself the repeats
        shaped = isinstance(repeats, torch.Tensor) or (repeats is None and isinstance(x, torch.Tensor))
        return shaped and kwargs.get("output_size") is None

    def one_argument(*args, **kwargs):  # torch.where(condition) alone is nonzero
        return len(args) + len(kwargs) == 1

    patches = [(torch.Tensor if name == "new_tensor" else torch, name, always) for name in MADE]
    patches += [(torch, name, not_tensor) for name in MADE_UNLESS_TENSOR]
    patches += [(torch.Tensor, name, always) for name in READS]
    patches += [(owner, name, always) for name in DATA_SHAPED for owner in (torch, torch.Tensor)
                if hasattr(owner, name)]
    # repeat_interleave with tensor repeats sizes its output from the data
    patches += [(owner, "repeat_interleave", tensor_repeats) for owner in (torch, torch.Tensor)]
    saved = []
    try:
        for owner, name, counted in patches:
            saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
            setattr(owner, name, wrap(getattr(owner, name), name, counted))
        saved.append((torch, "where", torch.where))
        torch.where = wrap(torch.where, "nonzero", one_argument)
        for name, index_of in (("__getitem__", lambda i: i), ("__setitem__", lambda i, v: i)):
            saved.append((torch.Tensor, name, torch.Tensor.__dict__.get(name, _MISSING)))
            setattr(torch.Tensor, name, _indexing(getattr(torch.Tensor, name), index_of, note, state))
        yield counts
    finally:
        for owner, name, original in reversed(saved):
            if original is _MISSING:  # inherited (torch._C.TensorBase): drop the patch, do not copy the base's in
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def _indexing(original, index_of, note, state):
    def wrapper(self, *args):
        if not state["depth"]:
            index = index_of(*args)
            if _is_mask(index):
                note(MASK_INDEX)
            elif _is_host_index(index):
                note(HOST_INDEX)
        state["depth"] += 1
        try:
            return original(self, *args)
        finally:
            state["depth"] -= 1
    return wrapper


def cuda_sync_sites(fn, *args, **kwargs) -> Counter:
    """The synchronising CUDA calls fn(*args, **kwargs) makes, as torch.cuda.set_sync_debug_mode("warn") reports
    them (one warning each), counted by "file:line". The device is synchronised first, so that work queued before
    is not fn's."""
    if not torch.cuda.is_available():
        raise RuntimeError("counting CUDA syncs needs CUDA")
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    return Counter(f"{w.filename}:{w.lineno}" for w in caught if "synchronizing CUDA operation" in str(w.message))


def count_cuda_syncs(fn, *args, **kwargs) -> int:
    """How many synchronising CUDA calls fn(*args, **kwargs) makes (cuda_sync_sites, summed)."""
    return sum(cuda_sync_sites(fn, *args, **kwargs).values())
