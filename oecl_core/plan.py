"""The cost of a pipeline target before it runs: `python -m oecl_core plan --preset paper table1`.

The runs of a target are expanded as the Snakefile expands them (config.yaml through experiments.table_runs /
figure_runs), each run's settings resolved as its training job resolves them (experiments.run_config). Per run:

    views trained = epochs x steps per epoch x views per step
        steps per epoch = training images // batch (the engine's rule, oecl_core/train.py), views per step = what
        the method's `views` builds from a batch of batch_size ID and oe_batch_size OE images;
    views scored  = test images x (1 clean + n_aug augmented) + the training bank and reference of sim_s_mu
        (contrastive scores, oecl_core/scores.py); a baseline with a score of its own is counted at one view per
        test image, a lower bound (its training dominates its cost anyway);
    GPU-hours     = (views trained x FLOPs per trained view + views scored x FLOPs per scored view) / FLOP rate.

FLOPs per view are counted here (torch.utils.flop_counter) on the method's own network at the run's image size. The
FLOP rate is that of the OECL ResNet-18 step measured by `python -m oecl_core.bench` on the GPU that will train (per
image size: --bench-json, or --throughput-32 / --throughput-224 in training views/s of that step); without a
measurement it is REFERENCE_TFLOPS, an assumption, and the output says so. Image counts come from the prepared data
set's manifest, else from the data set's record (data/sets/: published split sizes, some approximate), and the output names which.
"""
from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from .batching import step_batches
from .config import RunConfig
from .data import get_dataset
from .experiments import Run, figure_runs, run_config, table_runs
from .methods import get_method

# Achieved training FLOP rate assumed when no bench figure is given: 100 TFLOP/s, about a third of an A100's dense
# bf16 peak and a tenth of an H100's. An assumption, not a measurement: measure with `python -m oecl_core.bench --json`.
REFERENCE_TFLOPS = 100.0

@dataclass(frozen=True)
class RunCost:
    run: Run
    cfg: RunConfig
    n_train: int
    n_test: int
    views_per_step: int
    steps_per_epoch: int
    views_trained: int
    views_scored: int
    train_flops_per_view: float
    score_flops_per_view: float
    sizes_source: str
    score_lower_bound: bool
    view_shapes: tuple = ()  # (views, C, H, W) of each part a training step forwards in one pass

    @property
    def train_flops(self) -> float:
        return self.views_trained * self.train_flops_per_view

    @property
    def score_flops(self) -> float:
        return self.views_scored * self.score_flops_per_view


@lru_cache(maxsize=None)
def data_sizes(dataset: str, data_root: Path | None = None) -> tuple[list[int], list[int], str]:
    """(training images per class, test images per class, where the numbers come from)."""
    from .data.prepared import is_prepared, read_manifest
    from .data.registry import default_data_root

    spec = get_dataset(dataset)
    if spec.prepared:
        folder = (data_root or default_data_root()) / dataset
        if is_prepared(folder):
            manifest = read_manifest(folder)
            names = manifest["class_names"]
            per = lambda split: [int(manifest["splits"][split]["per_class"].get(n, 0)) for n in names]
            return per("train"), per("test"), f"{folder}/manifest.json"
        from .data.sets import SETS

        if SETS[dataset].split_sizes:
            train, test, source = SETS[dataset].split_sizes
            return list(train), list(test), source
        raise ValueError(f"data set {dataset!r} is not prepared and has no known sizes for planning; prepare it "
                         f"(python -m oecl_core data prepare {dataset})")
    train, test = spec.load(spec.load_size)  # embedded / folder data sets: load them
    n = len(train.class_names)
    count = lambda labels: torch.bincount(labels, minlength=n).tolist()
    return count(train.labels), count(test.labels), "loaded"


def split_sizes(cfg: RunConfig, data_root: Path | None = None) -> tuple[int, int, str]:
    """(training images, test images, source) of a run, by its benchmark's rule (oecl_core/data/benchmarks.py)."""
    from .data.registry import DIMINISHING

    train, test, source = data_sizes(cfg.dataset, data_root)
    bench = cfg.benchmark
    if bench == "one_vs_rest":
        n_train, n_test = train[cfg.cls], sum(test)
    elif bench == "leave_one_out":
        n_train, n_test = sum(train) - train[cfg.cls], sum(test)
    elif bench == "defect_detection":  # the category's own test images only
        n_train, n_test = train[cfg.cls], test[cfg.cls]
    elif bench == "unlabeled":
        if not cfg.anomaly:
            raise ValueError(f"{cfg.dataset}: the unlabeled benchmark needs an anomaly data set")
        anomaly_test = sum(data_sizes(cfg.anomaly, data_root)[1])
        n_train, n_test = sum(train), sum(test) + anomaly_test
    elif bench == "few_shot":
        order = sorted(range(len(train)), key=lambda c: -train[c])
        normal = order[0] if cfg.cls < 0 else cfg.cls
        obtainable = next(c for c in order if c != normal) if cfg.obtainable < 0 else cfg.obtainable
        n_train, n_test = train[normal], sum(test) - test[obtainable]
    elif bench == "diminishing":
        classes = get_dataset(cfg.dataset).classes()
        sets = DIMINISHING[cfg.dataset]
        idx = lambda names: [classes.index(c) for c in names]
        n_train = sum(train[c] for c in idx(sets["normal_classes"]))
        n_test = sum(test[c] for c in idx(sets["normal_classes"]) + idx(sets["anomaly_classes"]))
    else:
        raise ValueError(f"no planning rule for benchmark {bench!r}")
    if cfg.train_size:
        n_train = min(n_train, cfg.train_size)
    return n_train, n_test, source


def views_per_step(cfg: RunConfig, batch: int, oe_batch: int, with_oe: bool) -> int:
    """The views one training step forwards: the method's own `views` on a dummy batch (identity augmentation)."""
    return sum(shape[0] for shape in view_shapes(cfg, batch, oe_batch, with_oe))


def view_shapes(cfg: RunConfig, batch: int, oe_batch: int, with_oe: bool) -> tuple[tuple[int, ...], ...]:
    """The shapes of the parts (ID views, second ID views, OE views) one training step forwards together."""
    method = get_method(cfg.method)
    method.configure(cfg)
    size = cfg.stored_size or cfg.image_size
    # meta tensors: the views' shapes without their memory (a paper batch at 256 px is hundreds of MB)
    x_id = torch.empty(batch, 3, size, size, device="meta")
    x_oe = torch.empty(oe_batch, 3, size, size, device="meta") if with_oe else None
    views = method.views(x_id, x_oe, _Identity(), torch.Generator().manual_seed(0))
    return tuple(tuple(v.shape) for v in (views.id1, views.id2, views.oe) if v is not None)


class _Identity:
    """An augmentation that changes nothing, with the halves a method may call on their own (SimCLRAugment's).
    flip_p > 0: its crop counts as the flipping one (CSI then adds no random_flip of its own, which draws random
    numbers that meta tensors do not have); a flip changes no view count."""

    flip_p = 0.5

    def __call__(self, x, gen):
        return x

    crop = colour = __call__


@lru_cache(maxsize=None)
def _flops_per_view(method_name: str, stem: str, width: float, image_size: int) -> tuple[float, float]:
    """(forward + backward, forward) FLOPs per view of the method's network at image_size, counted on two views."""
    from .config import resolve_config

    cfg = resolve_config("smoke", "digits", method_name, stem=stem, width=width, image_size=image_size)
    network, size = get_method(method_name).counted_network(cfg)  # on the meta device unless the method says
    device = next(network.parameters()).device
    # on the meta device, what the forward creates is meta too; no device mode elsewhere (one turns off the fast
    # attention path that CLIP's eval forward takes, and so changes its count)
    with torch.device(device) if device.type == "meta" else contextlib.nullcontext():
        return _count(network, torch.empty(2, 3, size, size, device=device))


def _count(network, x) -> tuple[float, float]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fwd, torch.no_grad():
        network.eval()(x)
    network.train()
    with FlopCounterMode(display=False) as both:
        out = network(x)
        (out[0] if isinstance(out, tuple) else out).float().sum().backward()
    return both.get_total_flops() / len(x), fwd.get_total_flops() / len(x)


def run_cost(run: Run, preset: str, data_root: Path | None = None) -> RunCost:
    cfg = run_config(preset, run)
    method = get_method(cfg.method)
    n_train, n_test, source = split_sizes(cfg, data_root)
    if method.trains:
        sizes = step_batches(cfg.batch_size, cfg.oe_batch_size, n_train)
        batch, steps, oe_batch = sizes.batch, sizes.steps, sizes.oe_batch
        shapes = view_shapes(cfg, batch, oe_batch, method.uses_external_oe and cfg.alpha > 0)
        per_step = sum(shape[0] for shape in shapes)
        trained = cfg.epochs * steps * per_step
    else:
        steps = per_step = trained = 0
        shapes = ()
    lower_bound = method.primary_score is not None
    if lower_bound:
        scored = n_test
    else:
        reference = min(1000, n_train) if cfg.n_aug else 0
        scored = n_test * (1 + cfg.n_aug) + (n_train + reference * (1 + cfg.n_aug) if cfg.n_aug else 0)
    train_fpv, score_fpv = _flops_per_view(cfg.method, cfg.stem, cfg.width, cfg.image_size)
    return RunCost(run, cfg, n_train, n_test, per_step, steps, trained, scored, train_fpv, score_fpv, source,
                   lower_bound, shapes)


# --------------------------------------------------------------------------- throughput


@dataclass(frozen=True)
class Rate:
    """Achieved FLOP rates (FLOP/s) for training and scoring at one image size, and where they come from."""
    train: float
    score: float
    source: str
    assumed: bool


def _resnet18_flops(size: int) -> tuple[float, float]:
    return _flops_per_view("oecl", "cifar" if size < 64 else "imagenet", 1.0, size)


def rates(throughput: dict[int, float] | None = None, bench_json: str | None = None) -> dict[int, Rate]:
    """FLOP rates per image size (32, 224): from the bench's JSON, from training views/s of the ResNet-18 OECL step,
    or the reference assumption."""
    out = {}
    report = json.loads(Path(bench_json).read_text()) if bench_json else None
    if report is not None and report.get("width") != 1.0:
        raise ValueError(f"{bench_json} measured ResNet-18 at width {report.get('width')}; the runs train it at width 1: "
                         "run python -m oecl_core.bench --width 1 --json ...")
    for size in (32, 224):
        train_fpv, score_fpv = _resnet18_flops(size)
        r = report["sizes"].get(str(size), {}) if report is not None else {}
        if "train_views_per_s" in r:  # a bench stopped or cut short by its budget may lack figures
            train = r["train_views_per_s"] * train_fpv
            score = r["score_views_per_s"] * score_fpv if "score_views_per_s" in r else train
            out[size] = Rate(train, score, f"bench on {report['device']} ({bench_json})"
                             + ("" if "score_views_per_s" in r else "; scoring at the training FLOP rate"), False)
        elif throughput and size in throughput:
            if not throughput[size] > 0:
                raise ValueError(f"--throughput-{size} must be > 0 views/s, got {throughput[size]}")
            rate = throughput[size] * train_fpv
            out[size] = Rate(rate, rate, f"{throughput[size]:g} training views/s of the OECL step (scoring assumed at the "
                                         "same FLOP rate)", False)
        else:
            rate = REFERENCE_TFLOPS * 1e12
            out[size] = Rate(rate, rate, f"ASSUMED {REFERENCE_TFLOPS:g} TFLOP/s (reference figure, not measured)", True)
    return out


def _rate_for(cost: RunCost, table: dict[int, Rate]) -> Rate:
    return table[32 if cost.cfg.image_size < 64 else 224]


def gpu_hours(cost: RunCost, table: dict[int, Rate]) -> float:
    rate = _rate_for(cost, table)
    return (cost.train_flops / rate.train + cost.score_flops / rate.score) / 3600


# --------------------------------------------------------------------------- targets


def load_pipeline_config(path: str | Path = "config.yaml") -> dict:
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run from the repository root or give --configfile")
    return yaml.safe_load(path.read_text())


def target_groups(config: dict, target: str, preset: str) -> dict[str, list[Run]]:
    """The runs of a target, per table / figure: tableN, figN, or report / all (every table and figure)."""
    tables, figures = config.get("tables", {}), config.get("figures", {})
    flatten = lambda groups: list(dict.fromkeys(r for rs in groups.values() for r in rs))
    if target in ("report", "all"):
        groups = {name: table_runs(name, t, preset) for name, t in tables.items()}
        groups.update({name: flatten(figure_runs(name, f, preset)) for name, f in figures.items()})
        return groups
    if target in tables:
        return {target: table_runs(target, tables[target], preset)}
    if target in figures:
        return {target: flatten(figure_runs(target, figures[target], preset))}
    raise ValueError(f"unknown target {target!r}; valid choices: {', '.join(list(tables) + list(figures))}, report, all")


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class Footprint:
    """The stored images of a data set or OE pool that keeps their aspect ratio (oecl_core/data/core.py), against
    the centre squares of the former layout: count and canvas per split (train, test; an OE pool: its one split)."""
    name: str
    counts: tuple[int, ...]
    side: int  # the stored shorter side
    widths: tuple[int, ...]  # the canvas width per split
    measured: bool  # the widths are the prepared manifest's (else the widest possible canvas, an upper bound)

    @property
    def square_bytes(self) -> int:
        return 3 * self.side * self.side

    def bytes(self, split: int = 0) -> int:
        return 3 * self.side * self.widths[split]

    def total(self, square: bool = False) -> int:
        return sum(n * (self.square_bytes if square else self.bytes(i)) for i, n in enumerate(self.counts))


def footprint(name: str, side: int, data_root: Path | None = None) -> Footprint | None:
    """The footprint of a prepared data set or OE pool read at `side`, None if stored square there."""
    from .data.registry import default_data_root

    return _footprint(name, side, Path(data_root or default_data_root()))


@lru_cache(maxsize=None)
def _footprint(name: str, side: int, data_root: Path) -> Footprint | None:
    import inspect

    from .data.core import canvas_width, keeps_aspect
    from .data.prepared import is_prepared, read_manifest
    from .data.registry import is_prepared_set
    from .data.sets import SETS

    if not is_prepared_set(name) or not keeps_aspect(side):
        return None
    folder = data_root / name
    splits = ("train",) if SETS[name].oe_only else ("train", "test")
    if is_prepared(folder):
        info = read_manifest(folder)["splits"]
        return Footprint(name, tuple(info[s]["count"] for s in splits), side,
                         tuple(info[s]["image_size"][1] for s in splits), True)
    if SETS[name].oe_only:  # an OE pool holds the `count` images its preparer samples by default
        counts = (inspect.signature(SETS[name].prepare).parameters["count"].default,)
    else:
        counts = tuple(sum(n) for n in data_sizes(name, data_root)[:2])
    return Footprint(name, counts, side, (canvas_width(side),) * len(splits), False)


def memory_lines(costs: list[RunCost], data_root: Path | None = None) -> list[str]:
    """The host and GPU memory the aspect-true images of a target's runs take, against the former centre squares."""
    gib = lambda n: f"{n / 2 ** 30:,.2f} GiB"  # noqa: E731
    found, largest = {}, None
    for c in costs:
        side = c.cfg.stored_size or c.cfg.image_size
        data = footprint(c.cfg.dataset, side, data_root)
        oe = footprint(c.cfg.oe, side, data_root) if c.cfg.alpha > 0 and get_method(c.cfg.method).uses_external_oe \
            else None
        for f in (data, oe, footprint(c.cfg.anomaly, side, data_root) if c.cfg.anomaly else None):
            if f is not None:
                found[f.name] = f
        if data is None and oe is None:
            continue
        # on the GPU for the whole run: its normal training images and its OE pool
        on_gpu = [(c.n_train, data) if data else None, (oe.counts[0], oe) if oe else None]
        sizes = [sum(n * (f.square_bytes if square else f.bytes()) for n, f in filter(None, on_gpu))
                 for square in (True, False)]
        if largest is None or sizes[1] > largest[1][1]:
            largest = (c, sizes, all(f.measured for _, f in filter(None, on_gpu)))
    if not found:
        return []
    lines = ["\nimages that keep their aspect ratio (uint8; the run's data set in host memory, its normal training "
             "images and OE pool on the GPU):",
             f"{'data set':<22} {'images':>16} {'bytes per image (square -> kept)':>34} {'all images':>26}"]
    for f in sorted(found.values(), key=lambda f: f.name):
        at_most = "" if f.measured else "<= "
        per = " / ".join(dict.fromkeys(f"{f.bytes(i):,}" for i in range(len(f.counts))))
        lines.append(f"{f.name:<22} {' + '.join(f'{n:,}' for n in f.counts):>16} "
                     f"{f'{f.square_bytes:,} -> {at_most}{per}':>34} "
                     f"{f'{gib(f.total(True))} -> {at_most}{gib(f.total())}':>26}")
    if largest is not None:
        c, (before, after), measured = largest
        lines.append(f"largest on the GPU: {c.run.dataset} {c.run.benchmark} class {c.run.cls} ({c.cfg.method}, "
                     f"{c.n_train:,} training images + OE {c.cfg.oe}): {gib(before)} -> {'' if measured else '<= '}"
                     f"{gib(after)}")
    if any(not f.measured for f in found.values()):
        lines.append("<= : not prepared here, so the widest canvas (shorter side x MAX_ASPECT, oecl_core/data/core.py); "
                     "a prepared set's manifest gives its own")
    return lines


def resource_lines(costs: list[RunCost], preset: str, data_root: Path | None = None) -> list[str]:
    """The data sets a target's runs read, the disk their run folders take (with and without keep_checkpoints) and
    the GPU memory of their largest job per data set (oecl_core/resources.py says what is counted)."""
    from . import resources as res
    from .data.registry import default_data_root

    root = Path(data_root or default_data_root())
    uses = res.data_set_uses([c.run for c in costs], preset, root)
    lines = [f"\ndata sets read ({len(costs):,} training jobs; `data prepare NAME` makes each, a manual one after "
             "`data how NAME`):",
             f"{'data set':<24} {'read as':<11} {'obtained':<9} {'download':>10} {'prepared':>10} {'jobs waiting':>13}"]
    for u in uses:
        lines.append(f"{u.name:<24} {'/'.join(sorted(u.roles)):<11} {u.obtained:<9} {str(u.download):>10} "
                     f"{str(u.prepared):>10} {u.jobs:>13,}")
    unknown = sum(1 for u in uses if u.download.bytes is None)
    lines.append(f"{'total':<24} {'':<11} {'':<9} {str(res.total(u.download for u in uses)):>10} "
                 f"{str(res.total(u.prepared for u in uses)):>10}"
                 + (f"  (downloads: {unknown} not known, not counted)" if unknown else ""))
    manual = [u for u in uses if u.obtained == "manual"]
    if manual:
        lines.append("manual downloads (`data prepare` stops with ManualDownloadRequired until their files are there): "
                     + ", ".join(f"{u.name} ({u.jobs:,} jobs)" for u in manual))
    if any(u.obtained != "embedded" for u in uses):
        lines.append("where the sizes come from (~: rounded or approximate figures, <=: an upper bound, ?: unknown):")
        lines += [f"  {u.name}: download {u.download.source}; prepared {u.prepared.source}" for u in uses
                  if u.obtained != "embedded"]

    # disk of the run folders
    by_method: dict[str, list] = defaultdict(list)
    for c in costs:
        by_method[c.cfg.method].append((c, res.run_disk(c.cfg)))
    lines += ["\ndisk of the run folders (results/<preset>/runs/; checkpoint.pt computed from the network's parameter "
              "and buffer counts, the optimiser's state, the log and torch.save's overhead):",
              f"{'method':<17} {'runs':>6} {'checkpoint/run':>15} {'model':>10} {'optimiser':>10} {'log':>9} "
              f"{'other files/run':>16} {'checkpoints':>12}"]
    ckpt_total = other_total = 0
    for method, items in by_method.items():
        ckpts = sum(d.checkpoint for _, d in items)
        others = sum(d.other for _, d in items)
        ckpt_total, other_total = ckpt_total + ckpts, other_total + others
        mean = lambda key: sum(d.parts.get(key, 0) for _, d in items) / len(items)  # noqa: E731
        per = ckpts / len(items)
        lines.append(f"{method:<17} {len(items):>6,} {res.fmt_bytes(per) if per else '-':>15} "
                     f"{res.fmt_bytes(mean('model')) if per else '-':>10} "
                     f"{res.fmt_bytes(mean('optimiser')) if per else '-':>10} "
                     f"{res.fmt_bytes(mean('log')) if per else '-':>9} {res.fmt_bytes(others / len(items)):>16} "
                     f"{res.fmt_bytes(ckpts) if ckpts else '-':>12}")
    trained = sum(1 for c in costs if get_method(c.cfg.method).trains)
    lean = other_total + res.REMOVED_RECORD_BYTES * trained
    largest = max((d.checkpoint for items in by_method.values() for _, d in items), default=0)
    lines.append(f"disk: {res.fmt_bytes(ckpt_total + other_total)} with keep_checkpoints: true (the default: "
                 f"{res.fmt_bytes(ckpt_total)} of checkpoints + {res.fmt_bytes(other_total)} of logs and metrics); "
                 f"{res.fmt_bytes(lean)} with keep_checkpoints: false (config.yaml), plus one checkpoint of up to "
                 f"{res.fmt_bytes(largest)} per job running at once")

    # GPU memory: the largest job per data set
    best: dict[str, tuple] = {}
    for c in costs:
        m = res.gpu_memory(c, root, c.view_shapes)
        if c.cfg.dataset not in best or m.total > best[c.cfg.dataset][1].total:
            best[c.cfg.dataset] = (c, m)
    gb = lambda n: f"{n / res.GB:.2f}"  # noqa: E731
    lines += ["\nGPU memory of a training job, GB (the largest per data set; kept on the GPU: its normal training "
              "images and OE pool as uint8; the network's weights, gradients, optimiser state and bf16 weight copies; "
              "per step the float batches and views and the activations autograd saves, in bf16; not counted: the "
              "backward's transient buffers, the CUDA context, the allocator's cache):",
              f"{'data set':<14} {'largest job':<36} {'train imgs':>10} {'OE pool':>8} {'network':>8} {'views':>6} "
              f"{'inputs':>7} {'activ.':>7} {'total':>7}"]
    for name, (c, m) in best.items():
        job = f"{c.cfg.method} cls {c.run.cls}" + (f" OE {c.cfg.oe}" if m.oe_images else "")
        mark = "" if m.measured else "<="
        lines.append(f"{name:<14} {job[:36]:<36} {mark + gb(m.train_images):>10} {mark + gb(m.oe_images):>8} "
                     f"{gb(m.network):>8} {m.views:>6,} {gb(m.inputs):>7} {gb(m.activations):>7} "
                     f"{mark + gb(m.total):>7}")
    if any(not m.measured for _, m in best.values()):
        lines.append("<=: images of data sets not prepared here at the widest canvas (an upper bound)")
    return lines


def _fmt_views(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def _fmt_hours(h: float) -> str:
    return f"{h:,.1f}" if h >= 10 else f"{h:.3g}"


def render(groups: dict[str, list[Run]], preset: str, table: dict[int, Rate], data_root: Path | None = None) -> str:
    """The plan as text: per target group and method, then the total over distinct runs."""
    cache: dict[Run, RunCost] = {}

    def cost(run: Run) -> RunCost:
        if run not in cache:  # (not setdefault, which would cost the run again on every call)
            cache[run] = run_cost(run, preset, data_root)
        return cache[run]

    lines, sources, lower = [], {}, False
    header = (f"{'method':<12} {'runs':>6} {'epochs':>8} {'views trained/run':>18} {'views scored/run':>17} "
              f"{'GPU-h/run':>10} {'GPU-h':>10}")
    for name, runs in groups.items():
        lines.append(f"\n{name} (preset {preset}): {len(runs):,} training jobs")
        if not runs:
            continue
        lines.append(header)
        by_method = defaultdict(list)
        for run in runs:
            by_method[run.method].append(cost(run))
        group_hours = 0.0
        for method, costs in by_method.items():
            hours = sum(gpu_hours(c, table) for c in costs)
            group_hours += hours
            epochs = sorted({c.cfg.epochs for c in costs})
            mean = lambda key: sum(getattr(c, key) for c in costs) / len(costs)
            lines.append(f"{method:<12} {len(costs):>6,} {'/'.join(map(str, epochs)):>8} "
                         f"{_fmt_views(mean('views_trained')):>18} {_fmt_views(mean('views_scored')):>17}"
                         f"{'*' if costs[0].score_lower_bound else ' '} {_fmt_hours(hours / len(costs)):>9} {_fmt_hours(hours):>10}")
            lower |= costs[0].score_lower_bound
            for c in costs:
                sources[c.cfg.dataset] = c.sizes_source
        lines.append(f"{'total':<12} {len(runs):>6,} {'':>8} {'':>18} {'':>17}  {'':>9} {_fmt_hours(group_hours):>10}")
    distinct = list(dict.fromkeys(r for runs in groups.values() for r in runs))
    total = sum(gpu_hours(cost(r), table) for r in distinct)
    lines.append(f"\nall of it: {len(distinct):,} distinct training jobs, {_fmt_hours(total)} GPU-hours "
                 f"({total / 24:,.1f} GPU-days)")
    lines.append("\nthroughput: " + "; ".join(f"{size} px: {rate.source}" for size, rate in sorted(table.items())))
    if any(rate.assumed for rate in table.values()):
        lines.append("  (assumed, not measured: run python -m oecl_core.bench --json bench.json on the training GPU and "
                     "pass --bench-json bench.json)")
    lines.append("image counts: " + "; ".join(f"{d}: {s}" for d, s in sorted(sources.items())))
    lines += memory_lines([cost(r) for r in distinct], data_root)
    lines += resource_lines([cost(r) for r in distinct], preset, data_root)
    if lower:
        lines.append("* scored at one view per test image: a lower bound for baselines with a score of their own")
    lines.append("views per run are means over the method's runs; GPU-hours assume a job on several GPUs scales "
                 "linearly (same GPU-hours)")
    return "\n".join(lines)


def plan(target: str, preset: str, config_path: str | Path = "config.yaml", throughput: dict[int, float] | None = None,
         bench_json: str | None = None, data_root: Path | None = None) -> str:
    from .config import PRESETS

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid choices: {', '.join(PRESETS)}")
    groups = target_groups(load_pipeline_config(config_path), target, preset)
    return render(groups, preset, rates(throughput, bench_json), data_root)
