"""The GPU memory of one training job, and the cap on views per forward below 32-bit indexing's limit (part of
oecl_core/resources.py, which says what is counted)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .resources_data import image_bytes
from .resources_disk import _network_key, build_network, network_state

_SAVED: dict = {}  # network key and view size -> saved_bytes_per_view (a cfg is not hashable as a whole)


def saved_bytes_per_view(cfg, height: int, width: int) -> tuple[int, int, int]:
    key = (_network_key(cfg), height, width)
    if key not in _SAVED:
        _SAVED[key] = _saved_bytes_per_view(cfg, height, width)
    return _SAVED[key]


def _saved_bytes_per_view(cfg, height: int, width: int) -> tuple[int, int, int]:
    """(float elements, other bytes, largest float tensor's elements) autograd saves per view in a training forward of
    the run's network (train mode), counted on the meta device (shapes, no compute) at 4 and 2 views: their
    difference per view leaves out what does not grow with the batch (the weights). Tensors sharing a storage count
    once (storages told apart by their address, unique while the graph holds them)."""
    net = build_network(cfg).train()

    def count(n):
        seen = {}

        def pack(t):
            storage = t.untyped_storage()
            seen[storage._cdata] = (storage.nbytes(), t.dtype)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = net(torch.empty(n, 3, height, width, device="meta"))
            del out
        floats = sum(b // 4 for b, dt in seen.values() if dt == torch.float32)
        other = sum(b for b, dt in seen.values() if dt != torch.float32)
        largest = max((b // 4 for b, dt in seen.values() if dt == torch.float32), default=0)
        return floats, other, largest

    (f4, o4, l4), (f2, o2, _l2) = count(4), count(2)
    return (f4 - f2) // 2, (o4 - o2) // 2, l4 // 4


@dataclass(frozen=True)
class GpuMemory:
    train_images: int
    oe_images: int
    network: int  # parameters + gradients + optimiser state + bf16 weight copies
    inputs: int  # the step's float batches and views
    activations: int
    views: int
    view_shape: tuple
    measured: bool  # the image bytes are the prepared manifests' (else the widest canvas, an upper bound)

    @property
    def total(self) -> int:
        return self.train_images + self.oe_images + self.network + self.inputs + self.activations


def _oe_images(cost, data_root: Path) -> tuple[int, int, bool]:
    """(images, bytes per image, measured) of the OE pool a run moves to the GPU (0 images when it uses none)."""
    from .data.registry import BENCHMARK_OE
    from .data.sets import SETS
    from .methods import get_method
    from .plan_sizes import data_sizes

    cfg = cost.cfg
    if not (get_method(cfg.method).uses_external_oe and cfg.alpha > 0) or cfg.oe in ("", "none"):
        return 0, 0, True
    if cfg.oe == BENCHMARK_OE:  # few-shot: shots of the obtainable class, stored as the data set
        per, measured = _dataset_image_bytes(cfg, data_root)
        train = data_sizes(cfg.dataset, data_root)[0]
        order = sorted(range(len(train)), key=lambda c: -train[c])
        normal = order[0] if cfg.cls < 0 else cfg.cls
        obtainable = next(c for c in order if c != normal) if cfg.obtainable < 0 else cfg.obtainable
        n = train[obtainable] if cfg.shots < 0 else cfg.shots
        return n, per, measured
    if cfg.oe not in SETS:  # sample photos (smoke): small
        return 0, 0, True
    counts, per, measured = image_bytes(cfg.oe, data_root)
    n = counts[0]
    return (min(n, cfg.oe_count) if cfg.oe_count else n), per[0], measured


def _dataset_image_bytes(cfg, data_root: Path) -> tuple[int, bool]:
    """(bytes per stored training image, exact) of a run's data set; an embedded one is stored square."""
    from .data.sets import SETS

    if cfg.dataset in SETS:
        _, per, exact = image_bytes(cfg.dataset, data_root)
        return per[0], exact
    side = cfg.stored_size or cfg.image_size
    return 3 * side * side, True


def gpu_memory(cost, data_root: Path, step_shapes) -> GpuMemory:
    """The memory one training job keeps on the GPU (the module's docstring says what is counted)."""
    from .methods import get_method

    cfg = cost.cfg
    method = get_method(cfg.method)
    per_train, measured = _dataset_image_bytes(cfg, data_root)
    n_oe, per_oe, oe_measured = _oe_images(cost, data_root)
    bf16 = cfg.precision in ("auto", "bf16")
    s = network_state(cfg)
    if not method.trains:  # scored as built (CLIP): its weights; the test images go in batches
        return GpuMemory(0, 0, s.param_bytes + s.buffer_bytes, 0, 0, 0, (), measured)
    network = s.param_bytes + s.buffer_bytes + 4 * s.params + s.optimizer_bytes + (2 * s.params if bf16 else 0)
    views = sum(shape[0] for shape in step_shapes)
    c, h, w = step_shapes[0][1], cfg.image_size, cfg.image_size  # every method's views are crops at the image size
    floats, other, _ = saved_bytes_per_view(cfg, h, w)
    activations = views * (floats * (2 if bf16 else 4) + other)
    # the float ID and OE batches the views are made from, the views, their concatenation and its channels-last copy
    batch = min(cfg.batch_size, cost.n_train)
    oe_batch = max(1, round(cfg.oe_batch_size * batch / cfg.batch_size)) if n_oe else 0
    inputs = 4 * (batch * per_train + oe_batch * per_oe) + 3 * 4 * views * c * h * w
    return GpuMemory(cost.n_train * per_train, n_oe * per_oe, network, inputs, activations, views, (c, h, w),
                     measured and oe_measured)
