"""Runs verified at the paper's full settings, and the ledger that records them.

    python -m oecl_core verify --dataset cifar10 --methods simclr self_oecl --classes 0 1 2 --seeds 0 \\
        --budget-minutes 8 [--cifar10-jpeg PATH] [--ledger results/verified/ledger.csv] [--runs DIR]

Every run is the `paper` preset exactly as `oecl_core.config.resolve_config` resolves it (no setting
changed): it is trained in resumable chunks (`oecl_core.train.train`), scored (`oecl_core.runner.score_run`)
and, once finished, recorded as one row of `results/verified/ledger.csv`: its AUROC (%) for every score
in metrics.json, the paper's cell beside it, the device, the timings and the git commit. A row is never
written twice for the same run and commit.

Budget. The command holds a wall-clock budget (--budget-minutes), counted from its start (data loading
included). A run with no timing yet trains one epoch (warm-up), then a short timing chunk; from then on
the seconds per epoch (of the latest chunk, per data set and method) and the expected scoring time say
whether the rest of the run can finish inside what is left. A run that cannot is not started, or not
continued; its checkpoint stays, so a later call with more time resumes it. What was skipped, and why,
is in the summary printed at the end.

Data. From the prepared data set (`python -m oecl_core data prepare cifar10`), or, with --cifar10-jpeg,
from the JPEG copy of CIFAR-10 (an ImageFolder tree PATH/train/<class>/*.jpg, PATH/test/<class>/*.jpg, or
the .tar.gz holding one), read into memory and split here without writing anything into the data root:
the JPEGs are a lossy re-encoding, and a prepared `cifar10` made from them would pass for the official
one. The ledger says which (`data_source`: official | cifar10-jpeg).

Settings may be changed (--set KEY=VALUE, e.g. tiny runs in tests) only when --ledger names a file other
than the committed ledger; the row then lists them in `overrides`.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from .config import RunConfig, resolve_config
from .data import ImageSet, Split, get_dataset, load_oe
from .data.core import IMAGE_SUFFIXES, list_images, read_image, resize_uint8
from .data.prepared import default_data_root, is_prepared
from .data.sets.cifar import CLASSES as CIFAR10_CLASSES
from .io import write_json, write_text

REPO = Path(__file__).resolve().parents[1]
COMMITTED_LEDGER = REPO / "results" / "verified" / "ledger.csv"
PRESET = "paper"
SCORES = ("s_mu", "s_l2_ens", "s_l2", "sim_s_mu")
COLUMNS = ["dataset", "cls", "class_name", "method", "preset", "seed", "epochs", "data_source", "overrides",
           *(f"auroc_{s}" for s in SCORES), "status", "conv_weight_change", "paper_cell", "paper_cell_kind", "device", "train_seconds",
           "score_seconds", "git_commit", "date", "run_folder"]
# One row per (run, data, settings, commit).
KEY = ("dataset", "cls", "method", "preset", "seed", "data_source", "overrides", "git_commit")
# Settings that choose the data rather than the training: verify is the one-vs-rest benchmark of Table I.
FIXED_SETTINGS = {"dataset", "benchmark", "cls", "method", "seed", "preset", "label", "anomaly", "shots",
                  "obtainable", "train_size", "oe_count"}

# Budget rules (seconds).
PROBE_MIN_SECONDS = 10.0  # a run with no timing yet needs this much left to start its timing chunks
TIMING_CHUNK_SECONDS = 15.0  # the second chunk, whose seconds per epoch are trusted
CHUNK_SECONDS = 60.0  # later chunks: the budget is checked again after each
SAFETY = 1.1  # the estimate of what is left is multiplied by this ...
MARGIN_SECONDS = 5.0  # ... and this added
SIDECAR = "verify.json"  # in each run folder: data source, training seconds over every chunk, commits

JPEG_SOURCE = "cifar10-jpeg"
OFFICIAL_SOURCE = "official"


def say(message: str) -> None:
    print(f"[verify] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# ledger
# ---------------------------------------------------------------------------------------------------------

def is_committed_ledger(path) -> bool:
    return Path(path).resolve() == COMMITTED_LEDGER.resolve()


def read_ledger(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_ledger(path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, buf.getvalue())


def _key(row: dict) -> tuple:
    return tuple(str(row.get(k, "")) for k in KEY)


def append_row(path, row: dict) -> bool:
    """Adds the row unless the ledger holds one with the same KEY; True if added."""
    rows = read_ledger(path)
    if any(_key(r) == _key(row) for r in rows):
        return False
    write_ledger(path, rows + [row])
    return True


def _num(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def ledger_markdown(path=COMMITTED_LEDGER) -> str:
    """The ledger as a Markdown table: our AUROCs (%), the paper's cell beside s_mu and the difference."""
    rows = read_ledger(path)
    if not rows:
        return (f"The ledger of runs verified at the paper's full settings ({Path(path).name}) is empty: "
                "no run has been verified at paper scale yet.")
    lines = ["| data set | class | method | seed | epochs | data | s_mu | paper | diff | s_l2_ens | s_l2 | sim_s_mu "
             "| status | device | train min | commit | date |",
             "|" + "---|" * 17]
    means = False
    for r in rows:
        ours, paper = _num(r.get("auroc_s_mu")), _num(r.get("paper_cell"))
        train_s = _num(r.get("train_seconds"))
        commit = r.get("git_commit", "")
        mark = ""
        if paper is not None and "mean" in r.get("paper_cell_kind", ""):
            mark, means = " \u2020", True
        cells = [r["dataset"], f"{r['cls']} {r.get('class_name', '')}".strip(), r["method"], r["seed"], r["epochs"],
                 r.get("data_source", "") + (f" ({r['overrides']})" if r.get("overrides") else ""),
                 _fmt(ours), _fmt(paper) + mark,
                 f"{ours - paper:+.1f}" if ours is not None and paper is not None else "",
                 _fmt(_num(r.get("auroc_s_l2_ens"))), _fmt(_num(r.get("auroc_s_l2"))), _fmt(_num(r.get("auroc_sim_s_mu"))),
                 r.get("status", ""), r.get("device", ""),
                 _fmt(None if train_s is None else train_s / 60),
                 "+".join(c[:12] + ("-dirty" if c.endswith("-dirty") else "") for c in commit.split("+")),
                 r.get("date", "")[:10]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    lines.append("AUROC in %; diff = our s_mu minus the paper's cell (the paper's Table I reports s_mu).")
    if means:
        lines.append("\u2020 the paper's mean over all classes: its per-class numbers are not transcribed "
                     "(oecl_core/reference/paper_tables.csv), so a single class is compared with the mean.")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def paper_cell(dataset: str, method: str, class_name: str) -> tuple[float | None, str]:
    """The paper's Table I cell for a one-vs-rest run: the class's own number if transcribed, else the mean."""
    from .reference import load_paper_tables

    df = load_paper_tables()
    sel = df[(df["table"] == "I") & (df["dataset"] == dataset) & (df["benchmark"] == "one_vs_rest")
             & (df["method"] == method)]
    for setting, kind in ((class_name, "Table I, this class"), ("", "Table I mean over classes")):
        hit = sel[sel["setting"] == setting]
        if len(hit) == 1 and not math.isnan(hit.iloc[0]["value"]):
            return float(hit.iloc[0]["value"]), kind
    return None, ""


# ---------------------------------------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------------------------------------

def git_commit(repo: Path = REPO) -> str:
    """HEAD, with "-dirty" when tracked files outside results/ differ from it; $OECL_GIT_COMMIT where the
    tree is no git checkout (e.g. a copy of it on another machine), else "unknown"."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        changed = git("diff", "--name-only", "HEAD", "--", ".", ":(exclude)results")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("OECL_GIT_COMMIT", "unknown")
    return head + ("-dirty" if changed else "")


def device_name(cfg: RunConfig) -> str:
    from .device import resolve_device

    device = resolve_device(cfg.device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


# ---------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------

def _jpeg_entries(path: Path):
    """(split, class name, name inside the class, opener) of every image of the tree or archive."""
    if path.is_dir():
        for split in ("train", "test"):
            root = path / split
            if not root.is_dir():
                raise FileNotFoundError(f"{path} has no {split}/ folder; expected {path}/train/<class>/*.jpg and "
                                        f"{path}/test/<class>/*.jpg")
            for class_dir in sorted(d for d in root.iterdir() if d.is_dir()):
                for f in list_images(class_dir):
                    yield split, class_dir.name, str(f.relative_to(class_dir)), f
        return
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tf:
            for member in tf:
                parts = PurePosixPath(member.name).parts
                if (not member.isfile() or len(parts) < 3 or parts[-3] not in ("train", "test")
                        or PurePosixPath(member.name).suffix.lower() not in IMAGE_SUFFIXES or parts[-1].startswith("._")):
                    continue
                yield parts[-3], parts[-2], parts[-1], io.BytesIO(tf.extractfile(member).read())
        return
    raise FileNotFoundError(f"--cifar10-jpeg {path}: neither a folder nor a tar archive")


def read_cifar10_jpeg(path, size: int = 32, complete: bool = True) -> tuple[ImageSet, ImageSet]:
    """The JPEG copy of CIFAR-10 as (train, test) ImageSets with the official class indices (airplane = 0 ...
    truck = 9), in a fixed order (class, then file name) whatever the container. complete=True insists on
    all 60,000 images (5,000 / 1,000 per class), as a paper-scale run needs."""
    path = Path(path).expanduser()
    found: dict[str, list] = {"train": [], "test": []}
    for split, class_name, name, source in _jpeg_entries(path):
        if class_name not in CIFAR10_CLASSES:
            raise ValueError(f"{path}: class folder {class_name!r} is not a CIFAR-10 class; expected "
                             f"{', '.join(CIFAR10_CLASSES)}")
        try:
            image = read_image(source, size)
        except OSError as err:
            raise ValueError(f"{path}: cannot read {split}/{class_name}/{name} ({err})") from None
        found[split].append((CIFAR10_CLASSES.index(class_name), name, image))
    sets = []
    for split, expected in (("train", 5000), ("test", 1000)):
        items = sorted(found[split], key=lambda t: (t[0], t[1]))
        if not items:
            raise FileNotFoundError(f"{path}: no {split} images (expected {split}/<class>/*.jpg)")
        labels = torch.tensor([t[0] for t in items], dtype=torch.int64)
        counts = torch.bincount(labels, minlength=len(CIFAR10_CLASSES)).tolist()
        if complete and counts != [expected] * len(CIFAR10_CLASSES):
            per_class = ", ".join(f"{n} {c}" for n, c in zip(CIFAR10_CLASSES, counts))
            raise ValueError(f"{path}: a paper-scale run needs all of CIFAR-10 ({expected} {split} images per class); "
                             f"found {per_class}")
        sets.append(ImageSet(torch.from_numpy(np.stack([t[2] for t in items])), labels, list(CIFAR10_CLASSES)))
    return sets[0], sets[1]


class OfficialData:
    """The prepared data set, through the project's own build_split."""

    name = OFFICIAL_SOURCE

    def check(self, dataset: str) -> None:
        folder = default_data_root() / dataset
        if get_dataset(dataset).prepared and not is_prepared(folder):
            hint = " or give --cifar10-jpeg PATH" if dataset == "cifar10" else ""
            raise FileNotFoundError(f"data set {dataset!r} is not prepared under {folder}; run `python -m oecl_core "
                                    f"data prepare {dataset}` (or set $OECL_DATA){hint}")

    def split(self, cfg: RunConfig) -> Split:
        from .runner import split_for

        return split_for(cfg)


class JpegCifar10:
    """The JPEG copy of CIFAR-10, read once and split here (one vs. rest), the OE loaded as build_split does."""

    name = JPEG_SOURCE

    def __init__(self, path, complete: bool = True):
        self.path, self.complete = Path(path), complete
        self._sets = None

    def check(self, dataset: str) -> None:
        if dataset != "cifar10":
            raise ValueError(f"--cifar10-jpeg holds CIFAR-10; it cannot stand in for {dataset!r}")
        if not self.path.exists():
            raise FileNotFoundError(f"--cifar10-jpeg {self.path} does not exist")

    def split(self, cfg: RunConfig) -> Split:
        from .data.benchmarks import one_vs_rest

        if self._sets is None:
            t0 = time.monotonic()
            self._sets = read_cifar10_jpeg(self.path, 32, complete=self.complete)
            say(f"read {len(self._sets[0]) + len(self._sets[1]):,} images of {self.path} in {time.monotonic() - t0:.0f} s")
        size = cfg.stored_size or cfg.image_size
        train, test = (ImageSet(resize_uint8(s.images, size), s.labels, s.class_names) for s in self._sets)
        data = one_vs_rest(train, test, cfg.cls)
        oe = load_oe(cfg.oe, size, cfg.seed)
        return Split(data.train, data.test, data.test_is_normal, data.test_labels, oe,
                     f"cifar10 from {self.path.name} (JPEG copy) one_vs_rest ({data.note}), OE {cfg.oe}")


# ---------------------------------------------------------------------------------------------------------
# budget
# ---------------------------------------------------------------------------------------------------------

class Budget:
    """Wall-clock seconds left of the command's budget (the clock is injectable for tests)."""

    def __init__(self, minutes: float, clock=time.monotonic):
        self.clock = clock
        self.deadline = clock() + 60.0 * minutes

    def left(self) -> float:
        return self.deadline - self.clock()


def seconds_needed(epochs_left: int, per_epoch: float, score_seconds: float) -> float:
    """What finishing a run is expected to take: the rest of its training and its scoring, with a margin."""
    return SAFETY * (epochs_left * per_epoch + score_seconds) + MARGIN_SECONDS


def score_estimate(per_epoch: float, log: list[dict], n_train: int, n_test: int, n_aug: int) -> float:
    """Scoring time, from the training speed: scoring forwards every test image 1 + n_aug times, every
    training image once and up to 1,000 of them 1 + n_aug times, without backward (about a third of a
    training forward + backward); a training epoch forwards images_per_s * seconds views."""
    views = [r["images_per_s"] * r["seconds"] for r in log if _num(r.get("images_per_s")) and _num(r.get("seconds"))]
    if not views:
        return 0.0
    per_epoch_views = float(np.median(views))
    score_views = n_test * (1 + n_aug) + n_train + min(1000, n_train) * (1 + n_aug)
    return per_epoch * score_views / (3.0 * per_epoch_views)


@dataclass
class Timings:
    """Seconds per epoch per (data set, method), from this command's chunks; measured scoring times."""

    per_epoch: dict = field(default_factory=dict)  # key -> (seconds per epoch, trusted)
    score: dict = field(default_factory=dict)  # (dataset, n_aug) -> seconds


# ---------------------------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    method: str
    cls: int
    seed: int
    state: str  # added | in ledger | skipped | stopped | failed
    detail: str = ""
    row: dict | None = None


def _overrides_text(overrides: dict) -> str:
    return ";".join(f"{k}={overrides[k]}" for k in sorted(overrides))


def run_folder(runs: Path, source: str, cfg: RunConfig, overrides: dict) -> Path:
    name = f"{cfg.dataset}-{cfg.method}-cls{cfg.cls}-seed{cfg.seed}"
    if overrides:
        name += "-" + hashlib.sha256(_overrides_text(overrides).encode()).hexdigest()[:8]
    return runs / source / name


def _read_sidecar(run_dir: Path) -> dict:
    path = run_dir / SIDECAR
    return json.loads(path.read_text()) if path.exists() else {"train_seconds": 0.0, "git_commits": [], "chunks": []}


def _checkpoint_epoch(run_dir: Path, cfg: RunConfig) -> int:
    from .train import load_checkpoint

    state = load_checkpoint(run_dir, cfg)  # refuses a checkpoint written with other settings
    return 0 if state is None else int(state["epoch"])


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _make_row(cfg: RunConfig, source: str, overrides: dict, metrics: dict, sidecar: dict, commit: str,
              run_dir: Path) -> dict:
    class_name = get_dataset(cfg.dataset).classes()[cfg.cls]
    paper, kind = paper_cell(cfg.dataset, cfg.method, class_name)
    commits = [c for c in sidecar.get("git_commits", []) if c != commit] + [commit]
    row = {"dataset": cfg.dataset, "cls": cfg.cls, "class_name": class_name, "method": cfg.method,
           "preset": cfg.preset, "seed": cfg.seed, "epochs": cfg.epochs, "data_source": source,
           "overrides": _overrides_text(overrides), "status": metrics.get("status", ""),
           "conv_weight_change": f"{metrics['conv_weight_change']:.4f}" if "conv_weight_change" in metrics else "",
           "paper_cell": "" if paper is None else f"{paper:g}", "paper_cell_kind": kind,
           "device": device_name(cfg), "train_seconds": f"{sidecar.get('train_seconds', 0.0):.2f}",
           "score_seconds": f"{(metrics.get('timings') or {}).get('score_seconds') or 0.0:.2f}",
           "git_commit": "+".join(commits),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "run_folder": _shown(run_dir)}
    for score in SCORES:
        value = metrics.get("auroc", {}).get(score)
        row[f"auroc_{score}"] = "" if value is None else f"{100.0 * value:.2f}"
    return row


def verify_one(cfg: RunConfig, data, run_dir: Path, budget: Budget, timings: Timings, overrides: dict,
               ledger: Path, commit: str) -> Outcome:
    from .runner import score_run
    from .train import ResumeMismatch, TrainingDiverged, read_log, train

    label = f"{cfg.method} class {cfg.cls} seed {cfg.seed}"
    out = lambda state, detail="", row=None: Outcome(cfg.method, cfg.cls, cfg.seed, state, detail, row)
    try:
        done = _checkpoint_epoch(run_dir, cfg)
    except ResumeMismatch as err:
        return out("failed", str(err))
    sidecar = _read_sidecar(run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    if metrics is not None and (done < cfg.epochs or metrics.get("settings") != cfg.to_dict()):
        metrics = None  # from another state of the folder: score again
    split = None
    key = (cfg.dataset, cfg.method)
    model = None
    while metrics is None and done < cfg.epochs:
        left = budget.left()
        per_epoch, trusted = timings.per_epoch.get(key, (None, False))
        if split is None:
            split = data.split(cfg)
            left = budget.left()
        if per_epoch is None:
            if left < PROBE_MIN_SECONDS:
                return out("skipped", f"{left:.0f} s of the budget left, fewer than the {PROBE_MIN_SECONDS:.0f} s a "
                                      f"first timing needs" + (f" (checkpoint at epoch {done} of {cfg.epochs})" if done else ""))
            chunk = 1
        else:
            score_s = timings.score.get((cfg.dataset, cfg.n_aug))
            if score_s is None:
                score_s = score_estimate(per_epoch, read_log(run_dir / "log.csv"), len(split.train), len(split.test),
                                         cfg.n_aug)
            need = seconds_needed(cfg.epochs - done, per_epoch, score_s)
            if trusted and need > left:
                state = "stopped" if done else "skipped"
                return out(state, f"needs about {need:.0f} s to finish ({cfg.epochs - done} epochs at {per_epoch:.2f} s "
                                  f"+ scoring {score_s:.0f} s), {max(left, 0):.0f} s left"
                                  + (f"; checkpoint at epoch {done} of {cfg.epochs}, a later call resumes" if done else ""))
            target = CHUNK_SECONDS if trusted else TIMING_CHUNK_SECONDS
            chunk = max(1, min(cfg.epochs - done, int(target / per_epoch)))
            if not trusted and chunk * per_epoch > left:
                return out("stopped" if done else "skipped",
                           f"{max(left, 0):.0f} s of the budget left, too few for a timing chunk of {chunk} epochs"
                           + (f"; checkpoint at epoch {done} of {cfg.epochs}, a later call resumes" if done else ""))
        t0 = time.monotonic()
        try:
            result = train(cfg, split, run_dir, stop_after_epoch=done + chunk)
        except TrainingDiverged as err:
            return out("failed", str(err))
        wall = time.monotonic() - t0
        trained = result.epochs_done - done
        sidecar["train_seconds"] = sidecar.get("train_seconds", 0.0) + wall
        sidecar.setdefault("chunks", []).append({"from": done, "to": result.epochs_done, "seconds": round(wall, 3)})
        if commit not in sidecar.setdefault("git_commits", []):
            sidecar["git_commits"].append(commit)
        sidecar["data_source"] = data.name
        write_json(run_dir / SIDECAR, sidecar)
        # The first chunk (one epoch) carries the warm-up: it sizes the timing chunk but decides nothing.
        timings.per_epoch[key] = (wall / max(trained, 1), per_epoch is not None)
        say(f"{label}: epochs {done}-{result.epochs_done} of {cfg.epochs} in {wall:.1f} s "
            f"({wall / max(trained, 1):.2f} s/epoch), {budget.left():.0f} s of the budget left")
        done = result.epochs_done
        model = result.model if result.finished else None
    if metrics is None:
        if split is None:
            split = data.split(cfg)
        say(f"{label}: scoring ({len(split.test):,} test images, {cfg.n_aug} views each)")
        metrics = score_run(cfg, run_dir, split, model, sidecar.get("train_seconds"))
        timings.score[(cfg.dataset, cfg.n_aug)] = (metrics.get("timings") or {}).get("score_seconds") or 0.0
    row = _make_row(cfg, data.name, overrides, metrics, sidecar, commit, run_dir)
    if not append_row(ledger, row):
        return out("in ledger", "a row for this run and commit is already there", row)
    return out("added", f"s_mu {row['auroc_s_mu']}" + (f" [{row['status']}]" if row["status"] != "ok" else ""), row)


# ---------------------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------------------

def parse_settings(items: list[str]) -> dict:
    """KEY=VALUE strings -> settings, typed as RunConfig declares them."""
    types = {f.name: f.type for f in fields(RunConfig)}
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(types))}")
        kind = types[key] if isinstance(types[key], str) else types[key].__name__
        if kind == "bool":
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--set {item!r}: {key} is true or false")
            settings[key] = value.lower() in ("true", "1")
        else:
            settings[key] = {"int": int, "float": float}.get(kind, str)(value)
    return settings


def verify(dataset: str = "cifar10", methods=("simclr",), classes=None, seeds=(0,), budget_minutes: float = 14.0,
           cifar10_jpeg=None, ledger=COMMITTED_LEDGER, runs=None, overrides: dict | None = None,
           clock=time.monotonic) -> list[Outcome]:
    """Trains, scores and records every (method, class, seed) that fits in the budget; see the module text."""
    budget = Budget(budget_minutes, clock)
    ledger = Path(ledger)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    committed = is_committed_ledger(ledger)
    if overrides and committed:
        raise ValueError(f"the committed ledger ({_shown(ledger)}) only takes runs at the paper's full settings; "
                         f"settings changed ({_overrides_text(overrides)}) are refused. Give --ledger another file "
                         "for runs with other settings.")
    fixed = sorted(set(overrides) & FIXED_SETTINGS)
    if fixed:
        raise ValueError(f"verify runs the one-vs-rest benchmark of Table I; {', '.join(fixed)} cannot be set "
                         "(use --dataset / --methods / --classes / --seeds)")
    runs = Path(runs) if runs else ledger.parent / "runs"
    data = JpegCifar10(cifar10_jpeg, complete=committed) if cifar10_jpeg else OfficialData()
    data.check(dataset)
    classes = list(range(len(get_dataset(dataset).classes()))) if classes is None else list(classes)
    configs = [resolve_config(PRESET, dataset, method, cls=cls, seed=seed, **overrides)
               for method in methods for cls in classes for seed in seeds]  # every setting checked before any work
    if not ledger.exists():
        write_ledger(ledger, [])
    commit = git_commit()
    timings = Timings()
    outcomes = []
    say(f"{len(configs)} run(s), budget {budget_minutes:g} min, data {data.name}, ledger {_shown(ledger)}, commit {commit}")
    for cfg in configs:
        probe = _make_key_row(cfg, data.name, overrides, commit)
        if any(_key(r) == _key(probe) for r in read_ledger(ledger)):
            outcomes.append(Outcome(cfg.method, cfg.cls, cfg.seed, "in ledger", "already verified at this commit"))
            say(f"{cfg.method} class {cfg.cls} seed {cfg.seed}: already in the ledger at this commit")
            continue
        outcome = verify_one(cfg, data, run_folder(runs, data.name, cfg, overrides), budget, timings, overrides,
                             ledger, commit)
        say(f"{cfg.method} class {cfg.cls} seed {cfg.seed}: {outcome.state}" + (f" ({outcome.detail})" if outcome.detail else ""))
        outcomes.append(outcome)
    return outcomes


def _make_key_row(cfg: RunConfig, source: str, overrides: dict, commit: str) -> dict:
    return {"dataset": cfg.dataset, "cls": cfg.cls, "method": cfg.method, "preset": cfg.preset, "seed": cfg.seed,
            "data_source": source, "overrides": _overrides_text(overrides), "git_commit": commit}


def summary_table(outcomes: list[Outcome]) -> str:
    lines = [f"{'method':<10} {'class':>5} {'seed':>4}  {'state':<10} {'s_mu':>6} {'paper':>6}  detail"]
    for o in outcomes:
        row = o.row or {}
        lines.append(f"{o.method:<10} {o.cls:>5} {o.seed:>4}  {o.state:<10} {row.get('auroc_s_mu', ''):>6} "
                     f"{row.get('paper_cell', ''):>6}  {o.detail}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--methods", nargs="+", default=["simclr"])
    p.add_argument("--classes", nargs="+", type=int, default=None, help="class indices (default: all)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--budget-minutes", type=float, default=14.0,
                   help="wall-clock budget of the whole command; a run that cannot finish inside it is not started")
    p.add_argument("--cifar10-jpeg", default=None, metavar="PATH",
                   help="the JPEG copy of CIFAR-10: PATH/{train,test}/<class>/*.jpg, or a .tar.gz holding that tree")
    p.add_argument("--ledger", default=str(COMMITTED_LEDGER), help="ledger CSV (default: the committed one)")
    p.add_argument("--runs", default=None, help="folder of the run folders (default: runs/ beside the ledger)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="change a setting of the paper preset (refused for the committed ledger)")


def run_from_args(args) -> int:
    outcomes = verify(args.dataset, args.methods, args.classes, args.seeds, args.budget_minutes, args.cifar10_jpeg,
                      args.ledger, args.runs, parse_settings(args.settings))
    print(summary_table(outcomes))
    added = sum(o.state == "added" for o in outcomes)
    print(f"\n{added} row(s) added to {args.ledger}; "
          f"{sum(o.state in ('skipped', 'stopped') for o in outcomes)} run(s) skipped or stopped for the budget")
    return 1 if any(o.state == "failed" for o in outcomes) else 0
