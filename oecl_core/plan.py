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
FLOP rate is that of the OECL ResNet-18 step measured by `python -m oecl_core.throughput` on the GPU that will train
(per image size: --bench-json, or --throughput-32 / --throughput-224 in training views/s of that step); without a
measurement it is REFERENCE_TFLOPS, an assumption, and the output says so. Image counts come from the prepared data
set's manifest, else from the data set's record (data/sets/: published split sizes, some approximate), and the output
names which.
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
from .experiments import Run, figure_runs, run_config, table_runs
from .methods import get_method
# The parts below are their own modules; their names stay importable from here (tests, cli, resources).
from .plan_memory import Footprint, footprint, memory_lines  # noqa: F401
from .plan_resources import resource_lines
from .plan_sizes import data_sizes, split_sizes  # noqa: F401

# Achieved training FLOP rate assumed when no bench figure is given: 100 TFLOP/s, about a third of an A100's dense
# bf16 peak and a tenth of an H100's. An assumption, not a measurement: measure with
# `python -m oecl_core.throughput --json`.
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
        raise ValueError(f"{bench_json} measured ResNet-18 at width {report.get('width')}; "
                         "the runs train it at width 1: run python -m oecl_core.throughput --width 1 --json ...")
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
            out[size] = Rate(rate, rate, f"{throughput[size]:g} training views/s of the OECL step "
                                         "(scoring assumed at the same FLOP rate)", False)
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
    raise ValueError(f"unknown target {target!r}; "
                     f"valid choices: {', '.join(list(tables) + list(figures))}, report, all")


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
            mean = lambda key, costs=costs: sum(getattr(c, key) for c in costs) / len(costs)
            lines.append(f"{method:<12} {len(costs):>6,} {'/'.join(map(str, epochs)):>8} "
                         f"{_fmt_views(mean('views_trained')):>18} {_fmt_views(mean('views_scored')):>17}"
                         f"{'*' if costs[0].score_lower_bound else ' '} "
                         f"{_fmt_hours(hours / len(costs)):>9} {_fmt_hours(hours):>10}")
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
        lines.append("  (assumed, not measured: run python -m oecl_core.throughput --json bench.json "
                     "on the training GPU and pass --bench-json bench.json)")
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
