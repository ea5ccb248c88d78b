"""What a target's runs need besides GPU time, for `python -m oecl_core plan`: the data sets they read, the disk their
run folders take, and the GPU memory of one training job.

Data sets: each one the runs read (their ID, OE and anomaly sets, experiments.run_inputs, as the Snakefile's jobs
wait for them), whether `data prepare` downloads it by itself or it is a manual download (its record,
data/sets/), its size on disk (the download: measured where the raw files are here, else the record's
`download_size`; prepared: the prepared folder's files where prepared, else its images x bytes per stored image)
and how many of the target's training jobs wait for it.

Disk: a run folder holds checkpoint.pt (model, optimiser state, epoch, the log and the settings; train.py), log.csv,
config.json and metrics.json, beside the job's log and benchmark files. A checkpoint's size is computed from counts:
the state_dict's parameters and buffers (elements x bytes each) of the run's network, the optimiser's state per
parameter (read off one step of the run's optimiser on a small network), the log's rows and torch.save's
per-tensor overhead. `keep_checkpoints: false` (config.yaml) removes each checkpoint once its run is scored.

GPU memory of a training step (train.py keeps on the device, for the whole run): the normal training images and the
OE pool as uint8, the network's parameters, gradients and optimiser state, under bf16 autocast (precision auto on
CUDA) the bf16 copies of its weights; and, per step, the float views it forwards and the activations the
backward pass needs: the tensors autograd saves in the forward, counted on the meta device (shapes, no compute) on
the method's own network at the view size (per view: the difference between 4 and 2 views, so the weights saved
alongside drop out), at 2 bytes per float element under bf16 autocast (4 with precision fp32). Counted, not measured
on a GPU: bf16 autocast keeps most saved tensors in bf16, not all. Not counted: the backward's transient gradient
buffers, the loss's similarity matrices, the CUDA context and the allocator's cache (nvidia-smi shows more than this).
"""
from __future__ import annotations

import inspect
import json
import pickle
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

GB = 1e9
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


def fmt_bytes(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class Size:
    bytes: int | None  # None: not known
    source: str
    estimate: bool  # rounded or approximate figures went into it
    at_most: bool = False  # an upper bound (images at the widest canvas)

    def __str__(self) -> str:
        if self.bytes is None:
            return "?"
        return ("<=" if self.at_most else "~" if self.estimate else "") + fmt_bytes(self.bytes)


def download_size(name: str, data_root: Path) -> Size:
    """The data set's source files: measured where they are under raw/ here, else its record's download_size."""
    from .data.catalog import raw_dir
    from .data.sets import SETS

    entry = SETS[name]
    raw = raw_dir(name, data_root)
    files = [raw / r.filename for r in entry.sources]
    if files and all(f.is_file() for f in files):
        return Size(sum(f.stat().st_size for f in files), f"measured in {raw}", False)
    if entry.download_size:
        n, source = entry.download_size
        return Size(int(n), source, source.startswith(("about", "approximate")))
    return Size(None, "not in its record", True)


def _stored_side(name: str) -> int:
    from .data.sets import SETS

    entry = SETS[name]
    if entry.image_size:
        return entry.stored_size or entry.image_size
    size = inspect.signature(entry.prepare).parameters.get("size")  # an OE pool: its preparer's size
    return int(size.default) if size is not None else 32


def pool_count(name: str) -> tuple[int, str]:
    """Images of an OE pool before preparation: its record's split sizes, else its preparer's default count."""
    from .data.sets import SETS

    entry = SETS[name]
    if entry.split_sizes:
        return sum(entry.split_sizes[0]), entry.split_sizes[2]
    count = inspect.signature(entry.prepare).parameters["count"].default
    return int(count), f"its preparer's default count ({count:,})"


def image_bytes(name: str, data_root: Path) -> tuple[list[int], list[int], bool]:
    """(images per split, bytes per stored image per split, exact): from the manifest where prepared, else the
    record's split sizes at the stored side (images that keep their aspect ratio: the widest canvas, an upper bound,
    and not exact)."""
    from .data.core import canvas_width, keeps_aspect
    from .data.prepared import is_prepared, read_manifest
    from .data.sets import SETS

    folder = data_root / name
    if is_prepared(folder):
        splits = read_manifest(folder)["splits"].values()
        return [s["count"] for s in splits], [3 * s["image_size"][0] * s["image_size"][1] for s in splits], True
    side = _stored_side(name)
    per = 3 * side * (canvas_width(side) if keeps_aspect(side) else side)
    if SETS[name].oe_only:
        return [pool_count(name)[0]], [per], not keeps_aspect(side)
    from .plan import data_sizes

    train, test, _ = data_sizes(name, data_root)
    return [sum(train), sum(test)], [per, per], not keeps_aspect(side)


def prepared_size(name: str, data_root: Path) -> Size:
    from .data.core import canvas_width, keeps_aspect
    from .data.prepared import is_prepared

    folder = data_root / name
    if is_prepared(folder):
        return Size(sum(p.stat().st_size for p in folder.iterdir() if p.is_file()), f"measured in {folder}", False)
    from .data.sets import SETS

    counts, per, _ = image_bytes(name, data_root)
    side = _stored_side(name)
    extra = 8 + (12 if keeps_aspect(side) else 0)  # labels (int64), boxes (3 x int32) of canvas images
    n = sum(c * (b + extra) for c, b in zip(counts, per))
    entry = SETS[name]
    counted = pool_count(name)[1] if entry.oe_only else (entry.split_sizes[2] if entry.split_sizes else "")
    approximate = counted.startswith("approximate")
    what = f"{' + '.join(f'{c:,}' for c in counts)} images (" + (
        "the record's split sizes, approximate" if approximate else counted if entry.oe_only else
        "the record's split sizes") + ")"
    if keeps_aspect(side):
        return Size(n, f"{what} x 3 x {side} x {canvas_width(side)} bytes (the widest canvas)", True, True)
    return Size(n, f"{what} x 3 x {side} x {side} bytes", approximate)


def total(sizes) -> Size:
    """The sum of the known sizes, marked as its parts are; None when none is known."""
    known = [z for z in sizes if z.bytes is not None]
    return Size(sum(z.bytes for z in known) if known else None, "sum",
                any(z.estimate for z in known), any(z.at_most for z in known))


@dataclass
class DataSetUse:
    name: str
    roles: set
    jobs: int
    obtained: str  # "download", "manual", "embedded"
    download: Size
    prepared: Size


def data_set_uses(runs, preset: str, data_root: Path) -> list[DataSetUse]:
    """The data sets the runs read, with how each is obtained, its sizes and the jobs that wait for it."""
    from .data.sets import SETS
    from .experiments import run_inputs

    roles, jobs = defaultdict(set), Counter()
    for run in runs:
        inputs = run_inputs(preset, run)
        for role, name in (("ID", inputs.dataset), ("OE", inputs.oe), ("anomaly", inputs.anomaly)):
            if name:
                roles[name].add(role)
        for name in inputs.names:
            jobs[name] += 1
    out = []
    for name in sorted(roles, key=lambda n: (min(sorted(roles[n]), key=("ID", "anomaly", "OE").index) != "ID", n)):
        if name not in SETS:  # embedded (digits) or a registered source (sample photos): nothing to get
            out.append(DataSetUse(name, roles[name], jobs[name], "embedded", Size(0, "in the package", False),
                                  Size(0, "in the package", False)))
            continue
        obtained = "download" if SETS[name].automatic else "manual"
        out.append(DataSetUse(name, roles[name], jobs[name], obtained, download_size(name, data_root),
                              prepared_size(name, data_root)))
    return out


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
_SAVED: dict = {}


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
    from .train import LOG_FIELDS

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


# --------------------------------------------------------------------------- GPU memory


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

    (f4, o4, l4), (f2, o2, l2) = count(4), count(2)
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
    from .plan import data_sizes

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


# --------------------------------------------------------------------------- forward batch cap

# CUDA kernels that index with 32-bit offsets (the channels-last max-pool of the ImageNet stem among them) fail or
# corrupt memory once one tensor holds 2^31 elements or more; the cap keeps the largest activation this far below it.
INT32_ELEMENTS = 2**31
FORWARD_CAP_MARGIN = 0.9


def largest_activation_per_view(model: torch.nn.Module, size: int) -> int:
    """Elements per view of the largest tensor in a forward of `model` at size x size: the input or any module's
    output (in ResNet-18 the functional ReLUs and sums are as large as the convolution outputs beside them), from
    one view of zeros forwarded in eval mode without gradients on the model's own device (nothing in the model
    changes). A real forward rather than one on the meta device: meta tensors go through torch's reference ops,
    which import torch._dynamo, a second of start-up for every scored run."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd module: count its network, do not compile it
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    largest = [3 * size * size]

    def hook(_module, _inputs, output):
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                largest[0] = max(largest[0], t.numel())

    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return largest[0]


def max_forward_views(model: torch.nn.Module, size: int, margin: float = FORWARD_CAP_MARGIN) -> int:
    """The most views of size x size one forward of `model` may take with its largest activation kept below
    margin * 2^31 elements (ResNet-18, width 1: 29,491 at 32 px, CIFAR stem; 2,407 at 224 px, ImageNet stem)."""
    return max(1, int(margin * INT32_ELEMENTS) // largest_activation_per_view(model, size))
