"""Run settings and the named presets.

`paper` is what the paper states (Appendix I-J); `official` is what the authors' public code runs;
`smoke` is a CPU-sized budget for the embedded `digits` benchmark. docs/fidelity.md lists every
difference between the first two, with its source.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import get_type_hints

from .data import get_dataset
from .device import PRECISIONS
from .methods import get_method
from .optim import scaled_warmup


def _setting(default, help: str):
    """A RunConfig field with its meaning: the one text the CLI's --help, docs/settings.md and the tests read."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class RunConfig:
    dataset: str = _setting("digits", "data set: a registered name (`python -m oecl_core list`) or folder:ROOT")
    benchmark: str = _setting("one_vs_rest", "benchmark: a registered name (oecl_core/data/registry.py)")
    cls: int = _setting(0, "class index of the benchmark")
    method: str = _setting("oecl", "method: a registered name (oecl_core/methods, docs/methods.md)")
    seed: int = _setting(0, "seed of the run (data order, augmentations, initialisation)")
    preset: str = _setting("paper", "the named preset the settings start from (config.PRESETS)")
    label: str = _setting("", "the benchmark spec the pipeline names this run by (e.g. one_vs_rest~oe=svhn), if a "
                              "variant")
    oe: str = _setting("", 'OE source; "" = the data set\'s default; "benchmark" = the OE the benchmark builds')
    anomaly: str = _setting("", "anomaly data set of the unlabeled benchmark (e.g. cifar100)")
    shots: int = _setting(-1, "few-shot benchmark: OE images of the obtainable OOD class (-1: all)")
    obtainable: int = _setting(-1, "few-shot benchmark: the obtainable OOD class (-1: the second largest)")
    train_size: int = _setting(0, "> 0: subsample the normal training images (size sweeps)")
    oe_count: int = _setting(0, "> 0: subsample the OE pool (1: one-sample OE)")
    epochs: int = _setting(500, "training epochs")
    batch_size: int = _setting(256, "ID images per step")
    oe_batch_size: int = _setting(256, "OE images per step")
    optimizer: str = _setting("lars", "optimiser: lars, lars_csi, sgd, sgd_nesterov or adam (oecl_core/optim.py)")
    lr: float = _setting(0.1, "learning rate (before any lr warm-up multiplies it)")
    momentum: float = _setting(0.9, "momentum of the optimiser")
    weight_decay: float = _setting(1e-6, "weight decay")
    lr_schedule: str = _setting("step", 'cosine stepped per iteration ("step") or per epoch ("epoch", the public '
                                        'code), or "multistep": x0.1 at each of lr_milestones, the eoe baselines\' '
                                        "MultiStepLR")
    lr_milestones: tuple[int, ...] = _setting((), "epochs at which the multistep schedule multiplies the lr by 0.1")
    lr_warmup_epochs: int = _setting(0, "> 0 with lr_warmup_multiplier > 1: CSI's linear lr warm-up, then the cosine")
    lr_warmup_multiplier: float = _setting(1.0, "the lr rises from lr to lr * this over lr_warmup_epochs (CSI: 10)")
    alpha: float = _setting(1.0, "weight of the OE term of the loss (eq. 7)")
    warmup_epochs: int = _setting(50, "alpha = 0 before this epoch")
    temperature: float = _setting(0.5, "temperature of the contrastive loss")
    uniformity_weight: float = _setting(0.5, "align_uniform methods: w in 2 * ((1 - w) * L_align + w * L_uniform)")
    crop_scale_min: float = _setting(0.08, "lower bound of the random resized crop's scale")
    image_size: int = _setting(32, "training / test resolution")
    stored_size: int = _setting(0, "resolution of the stored images when larger than image_size (random crops / "
                                   "centre crop to image_size)")
    stem: str = _setting("cifar", "ResNet stem: cifar (3x3 conv, no max-pool) or imagenet (7x7 conv, max-pool)")
    width: float = _setting(1.0, "width multiplier of the ResNet-18")
    n_aug: int = _setting(32, "augmented views per test image for s_mu / s_l2_ens")
    s_mu_clean_view: bool = _setting(False, "s_mu also averages the clean view with the n_aug views (the public "
                                            "code's 33)")
    oe_resample: bool = _setting(True, "a new OE subset and batch order every epoch; false: one fixed OE subset and "
                                       "batch order, as the public code (--fixed-oe)")
    checkpoint_every: int = _setting(10, "epochs between checkpoints")
    log_samples: int = _setting(256, "images per group (ID, OE, held-out OOD) whose mean norm is logged each epoch")
    aug_stats_every: int = _setting(0, "> 0: log mu, sigma, sigma_v of ID / OOD probes every N epochs (Fig. 2)")
    device: str = _setting("auto", "auto, cpu, cuda, cuda:1, mps")
    # Speed switches of the training step (README, "Speed"); the defaults are the plain eager step.
    precision: str = _setting("auto", "auto (bf16 autocast on CUDA, float32 elsewhere), bf16 or fp32")
    compile: bool = _setting(False, "torch.compile the network for the training steps (probes and scoring stay eager; "
                                    "README, Speed)")
    cuda_graphs: bool = _setting(False, "the whole training step recorded as one CUDA graph and replayed "
                                        "(step_graph.py; CUDA and LARS only; README, Speed)")
    score_batch_views: int = _setting(2048, "views per scoring forward pass (more: larger batches on a big GPU)")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lr_milestones"] = list(self.lr_milestones)  # as JSON stores it
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(known))}")
        d = dict(d)
        if isinstance(d.get("lr_milestones"), list):  # JSON has no tuples
            d["lr_milestones"] = tuple(d["lr_milestones"])
        return cls(**d)


# Each setting's type (int, float, bool, str, tuple[int, ...]), for the benchmark specs' key=value settings and the
# command-line overrides, which are both generated from RunConfig's fields.
SETTING_TYPES: dict[str, type] = get_type_hints(RunConfig)
# Each setting's meaning, from its field (the one place it is written).
SETTING_HELP: dict[str, str] = {f.name: f.metadata["help"] for f in fields(RunConfig)}


def settings_markdown() -> str:
    """docs/settings.md: every setting with its type, RunConfig's default and its help (tests check the file is current;
    rewrite it with `python -c "from oecl_core.config import settings_markdown as m; print(m(), end='')" >
    docs/settings.md`)."""
    lines = ["# Run settings", "", "<!-- Generated from the fields of RunConfig (oecl_core/config.py) by "
             "config.settings_markdown(); edit the help there, not here. -->", "",
             "Every setting of a run, as `config.json` records it. A preset sets most of them, then the data set, the "
             "benchmark and the method (docs/fidelity.md gives the order). On the command line each is "
             "`--name-with-dashes` (`python -m oecl_core run --help`; `label` is the `--benchmark` spec's), and each "
             "after `label` can be set in a benchmark spec, `NAME~name=value`.", "",
             "| setting | type | RunConfig default | meaning |", "|---|---|---|---|"]
    for f in fields(RunConfig):
        kind = SETTING_TYPES[f.name]
        text = SETTING_HELP[f.name].replace("|", "\\|").replace("*", "\\*")
        lines.append(f"| `{f.name}` | {kind.__name__ if isinstance(kind, type) else kind} | `{f.default!r}` | {text} |")
    return "\n".join(lines) + "\n"
# The fields that name a run rather than set it: the pipeline's run folder and the CLI's own arguments give them.
IDENTITY_FIELDS = ("dataset", "benchmark", "cls", "method", "seed", "preset", "label")


def parse_setting(key: str, text: str):
    """A setting's value from text ('3', '0.5', 'true', '100,150' for a tuple), cast to the field's type."""
    kind = SETTING_TYPES[key]
    if kind is bool:
        if text.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(f"setting {key} takes true or false, got {text!r}")
        return text.lower() in ("1", "true", "yes")
    if getattr(kind, "__origin__", None) is tuple:
        item = kind.__args__[0]
        return tuple(item(v) for v in text.replace(",", " ").split())
    return kind(text)


PRESETS: dict[str, dict] = {
    # The paper (App. I): LARS, lr 0.1, momentum 0.9, weight decay 1e-6, cosine without restarts, 500 epochs,
    # 256 + 256. Its LARS is CSI's (ref. [49] via CSI): torchlars' trust ratio 0.001 on every parameter, and CSI's
    # lr 0.1 warmed up x10 over 10 epochs. A LARS at a flat lr 0.1 barely moves the weights (docs/fidelity.md,
    # optimiser pilot: 4-5% after 2,400 steps, against 31% for CSI's recipe), so the preset follows CSI.
    "paper": dict(optimizer="lars_csi", lr=0.1, lr_warmup_multiplier=10.0, momentum=0.9, weight_decay=1e-6,
                  epochs=500, batch_size=256, oe_batch_size=256, lr_schedule="step", oe_resample=True, n_aug=32,
                  width=1.0),
    # The public one-vs-rest script (real_OECL yaml/oecl/oecl.yaml + run.sh): SGD (its LARS wrapper never applies
    # the trust ratio), lr 0.1, weight decay 5e-4, 1000 epochs, cosine stepped per epoch, 64 ID + 64 OE images on
    # each of 4 GPUs with SyncBatchNorm and the ID similarity matrix gathered, i.e. one step over 256 + 256 images,
    # which one device reproduces; samplers never re-seeded (one OE subset, one batch order); s_mu over the clean
    # view and 32 augmented views.
    "official": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, epochs=1000, batch_size=256,
                     oe_batch_size=256, lr_schedule="epoch", oe_resample=False, n_aug=32, width=1.0,
                     s_mu_clean_view=True),
    # A complete run for one class in well under a minute on 2 CPU cores (digits at 16 px, ResNet-18 at 1/8 width).
    "smoke": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, epochs=100, batch_size=32,
                  oe_batch_size=32, lr_schedule="step", oe_resample=True, n_aug=32, width=0.125, checkpoint_every=20),
}
# Per-benchmark changes: the public multimodal (leave-one-class-out) script trains 500 epochs, 64 + 64 on one GPU.
BENCHMARK_OVERRIDES: dict[tuple[str, str], dict] = {
    ("official", "leave_one_out"): dict(epochs=500, batch_size=64, oe_batch_size=64),
}
# Per-data-set OE of a preset: the public code's ImageNet-30 OE is ImageNet-1k minus the 30 classes.
DATASET_OE: dict[tuple[str, str], str] = {
    ("official", "imagenet30"): "imagenet1k_minus_30",
}


def resolve_config(preset: str = "paper", dataset: str = "digits", method: str = "oecl", **overrides) -> RunConfig:
    """A complete RunConfig: preset, then data-set defaults (alpha, crop scale, size, stem), then the benchmark's
    and the method's changes to the preset, then explicit overrides (None values are ignored). Unless given, the
    alpha warm-up is 50 epochs (and CSI's lr warm-up, where the preset has one, 10 epochs) of a full-length run,
    scaled in proportion when a run is shorter."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid choices: {', '.join(PRESETS)}")
    spec = get_dataset(dataset)
    m = get_method(method)
    settings = dict(PRESETS[preset])
    settings.update(alpha=spec.alpha, crop_scale_min=spec.crop_scale_min, image_size=spec.image_size, stem=spec.stem,
                    stored_size=spec.stored_size)
    settings.update(BENCHMARK_OVERRIDES.get((preset, overrides.get("benchmark") or "one_vs_rest"), {}))
    if not m.uses_external_oe and not m.oe_from_id_images:
        settings["alpha"] = 0.0  # no OE term (SimCLR, alignment + uniformity)
    own = m.preset_settings(preset, settings["image_size"])  # the method's own setup (a baseline's optimiser, ...)
    settings.update(own)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    # The length a full run of this preset has (never shorter than the paper's 500 / 1000 epochs), to which
    # the warm-ups are scaled when a run is shorter: a fixed 50 (alpha) / 10 (lr) epochs at full length.
    full_length = max(settings["epochs"], 500 * m.default_epochs_factor)
    settings.update(overrides)
    if "warmup_epochs" not in overrides and "warmup_epochs" not in own:
        # 50 warm-up epochs for every method (paper, App. I; the public code's hard step at epoch 50).
        settings["warmup_epochs"] = scaled_warmup(settings["epochs"], 50, full_length)
    if (settings.get("lr_warmup_multiplier", 1.0) > 1.0 and "lr_warmup_epochs" not in overrides
            and "lr_warmup_epochs" not in own):
        settings["lr_warmup_epochs"] = scaled_warmup(settings["epochs"], 10, full_length)  # CSI: 10 epochs
    if not settings.get("oe"):
        if not m.uses_external_oe:
            settings["oe"] = "none"
        else:
            settings["oe"] = "benchmark" if settings.get("benchmark") == "few_shot" else \
                DATASET_OE.get((preset, dataset), spec.default_oe)
    cfg = RunConfig.from_dict(dict(preset=preset, dataset=dataset, method=method, **settings))
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    """Errors that say which setting is wrong and what would be right, before any work is done."""
    from .data.benchmarks import PER_CLASS
    from .data.registry import BENCHMARKS, check_class

    if cfg.benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {cfg.benchmark!r}; valid choices: {', '.join(BENCHMARKS)}")
    if cfg.benchmark in PER_CLASS and not cfg.dataset.startswith("folder:"):
        check_class(get_dataset(cfg.dataset), cfg.cls)
    problems = []
    if cfg.epochs < (1 if get_method(cfg.method).trains else 0):
        problems.append(f"epochs must be >= 1 (got {cfg.epochs})")
    if cfg.batch_size < 2:
        problems.append(f"batch_size must be >= 2: NT-Xent needs negatives (got {cfg.batch_size})")
    if get_method(cfg.method).uses_external_oe and cfg.oe == "none" and cfg.alpha > 0:
        problems.append(f"method {cfg.method} needs an OE source (oe=none given); use --oe or method simclr")
    if cfg.lr_schedule not in ("step", "epoch", "multistep"):
        problems.append(f"lr_schedule must be 'step', 'epoch' or 'multistep' (got {cfg.lr_schedule!r})")
    if cfg.lr_schedule == "multistep" and list(cfg.lr_milestones) != sorted(cfg.lr_milestones):
        problems.append(f"lr_milestones must be increasing epochs (got {cfg.lr_milestones!r})")
    if not 0 < cfg.crop_scale_min <= 1:
        problems.append(f"crop_scale_min must be in (0, 1] (got {cfg.crop_scale_min})")
    if cfg.n_aug < 0:
        problems.append(f"n_aug must be >= 0 (got {cfg.n_aug})")
    if cfg.precision not in PRECISIONS:
        problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got {cfg.precision!r})")
    if cfg.score_batch_views < 1:
        problems.append(f"score_batch_views must be >= 1 (got {cfg.score_batch_views})")
    if problems:
        raise ValueError("invalid run settings: " + "; ".join(problems))
