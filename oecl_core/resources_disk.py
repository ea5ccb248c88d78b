"""A run's network and optimiser state counted from shapes, and the disk its run folder takes (part of
oecl_core/resources.py, which says what is counted)."""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from functools import lru_cache

import torch

# torch.save writes a zip archive with one entry per tensor storage: a local header (30 bytes + name), padding that
# aligns the data to 64 bytes, and a central directory record (46 bytes + name), plus the pickled reference to it
# (about 320 bytes in all: checked against real checkpoints, tests/test_resources.py).
ZIP_BYTES_PER_STORAGE = 320
# Small files of a run folder besides the checkpoint (measured on a smoke run: config.json 950 bytes, metrics.json
# 1,988, the job's log and benchmark file about 1 KB), and log.csv's bytes per epoch (171 on that run; the rows with
# Fig. 2's statistics are longer): estimates.
SMALL_FILES_BYTES = 4_000
LOG_CSV_BYTES_PER_EPOCH = 200
# What keep_checkpoints: false leaves of the checkpoint: checkpoint_removed.json (size, sha256, epoch, settings).
REMOVED_RECORD_BYTES = 1_500


# --------------------------------------------------------------------------- networks


@dataclass(frozen=True)
class NetworkState:
    params: int  # parameter elements
    param_bytes: int
    buffer_bytes: int
    tensors: int  # state_dict entries
    optimizer_bytes: int  # the optimiser's state tensors after a step
    optimizer_tensors: int
    optimizer_scalars_bytes: int  # the pickled per-parameter scalars (e.g. Adam's step) and hyper-parameters


def _network_key(cfg) -> tuple:
    """What a run's network depends on (no method's network depends on the data set beyond these)."""
    return cfg.method, cfg.stem, cfg.width, cfg.image_size


_NETWORKS: dict = {}  # network key and optimiser -> NetworkState (the lru_caches below must not key on a whole cfg)


def network_state(cfg) -> NetworkState:
    key = (_network_key(cfg), cfg.optimizer, cfg.momentum, cfg.weight_decay)
    if key not in _NETWORKS:
        _NETWORKS[key] = _network_state(cfg)
    return _NETWORKS[key]


@lru_cache(maxsize=None)
def _optimizer_per_param(optimizer: str, momentum: float, weight_decay: float) -> tuple[float, int, int]:
    """(state elements per parameter element, state tensors per parameter tensor, pickled bytes beside the tensors)
    of the optimiser, read off one step on a small network with every kind of parameter (conv, BN, linear)."""
    from .optim import build_optimizer

    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    opt = build_optimizer(net, optimizer, 0.1, momentum, weight_decay)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    params = list(net.parameters())
    elements = sum(t.numel() for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0)
    tensors = sum(1 for s in opt.state.values() for t in s.values() if torch.is_tensor(t))
    sd = opt.state_dict()
    no_tensors = {"state": {k: {n: 0 for n in v} for k, v in sd["state"].items()}, "param_groups": sd["param_groups"]}
    return elements / sum(p.numel() for p in params), round(tensors / len(params)), len(pickle.dumps(no_tensors))


def _network_state(cfg) -> NetworkState:
    net = build_network(cfg)  # on the meta device: shapes only
    sd = net.state_dict()
    names = {n for n, _ in net.named_parameters()}
    param_bytes = sum(t.numel() * t.element_size() for n, t in sd.items() if n in names)
    buffer_bytes = sum(t.numel() * t.element_size() for n, t in sd.items() if n not in names)
    params = [p for p in net.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    per_element, per_tensor, scalars = _optimizer_per_param(cfg.optimizer, cfg.momentum, cfg.weight_decay)
    return NetworkState(n_params, param_bytes, buffer_bytes, len(sd), int(round(per_element * n_params * 4)),
                        per_tensor * len(params), scalars + 12 * len(params))


def build_network(cfg, device: str = "meta") -> torch.nn.Module:
    """The run's network with random weights on `device` ("meta": shapes only): a CLIP method's ClipPromptNet is
    built from open_clip's architecture without its pretrained weights (nothing downloaded)."""
    from .methods import get_method

    method = get_method(cfg.method)
    if method.from_scratch:
        with torch.device(device):
            return method.network(cfg)
    import logging

    import open_clip

    from .methods.clip import CLIP_ARCH, ClipPromptNet, normal_class_names

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # open_clip warns that the weights are random, as wanted here
    try:
        model = open_clip.create_model(CLIP_ARCH, pretrained=None, device=device)
    finally:
        logging.getLogger().setLevel(quiet)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    with torch.device(device):
        return ClipPromptNet(model, open_clip.get_tokenizer(CLIP_ARCH), size, normal_class_names(cfg))


# --------------------------------------------------------------------------- disk


@dataclass(frozen=True)
class RunDisk:
    checkpoint: int  # 0: the method trains nothing and writes no checkpoint
    parts: dict  # the checkpoint's parts (model, optimiser, log and overhead)
    other: int  # log.csv, config.json, metrics.json, the job's log and benchmark files


def log_pickle_bytes(epochs: int) -> int:
    """The pickled log a checkpoint carries: one dict of LOG_FIELDS floats per epoch."""
    from .run_log import LOG_FIELDS

    row = {k: (1 if k in ("epoch", "collapsed") else 0.123456789) for k in LOG_FIELDS}
    one, two = (len(pickle.dumps([dict(row, epoch=i) for i in range(n)])) for n in (1, 2))
    return one + (two - one) * (epochs - 1) if epochs else 0


def run_disk(cfg) -> RunDisk:
    from .methods import get_method

    other = SMALL_FILES_BYTES + LOG_CSV_BYTES_PER_EPOCH * cfg.epochs
    if not get_method(cfg.method).trains:
        return RunDisk(0, {}, SMALL_FILES_BYTES)
    s = network_state(cfg)
    overhead = ZIP_BYTES_PER_STORAGE * (s.tensors + s.optimizer_tensors) + s.optimizer_scalars_bytes \
        + len(json.dumps(cfg.to_dict()))
    parts = {"model": s.param_bytes + s.buffer_bytes, "optimiser": s.optimizer_bytes,
             "log": log_pickle_bytes(cfg.epochs), "overhead": overhead}
    return RunDisk(sum(parts.values()), parts, other)
