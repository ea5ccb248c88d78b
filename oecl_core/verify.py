"""Runs verified at the paper's full settings, and the ledger that records them.

    python -m oecl_core verify --dataset cifar10 --methods simclr self_oecl --classes 0 1 2 --seeds 0 \\
        --budget-minutes 8 [--cifar10-jpeg PATH] [--ledger results/verified/ledger.csv] [--runs DIR] [--out DIR]
    python -m oecl_core verify --merge DIR/ledger.csv     # a device window's rows, appended to the ledger

Every run is the `paper` preset exactly as `oecl_core.config.resolve_config` resolves it (no setting
changed): it is trained in resumable chunks (`oecl_core.train.train`), scored (`oecl_core.runner.score_run`)
and, once finished, recorded as one row of `results/verified/ledger.csv`: its AUROC (%) for every score
in metrics.json, the paper's cell beside it, the device, the timings and the git commit. A row is never
written twice for the same run and commit.

Budget. The command holds a wall-clock budget (--budget-minutes), counted from its start (data loading
included). A run with no timing yet (per data set and method) first trains two epochs: a warm-up epoch and a
steady one. From then on the steady seconds per epoch, the fixed part of a train() call and the expected
scoring time (oecl_core/budget.py) say whether the rest of the run can finish inside what is left. A run that
cannot is not started, or not continued; its checkpoint stays, so a later call with more time resumes it; the
next run is still started if it fits. Without --classes every class is taken in order, as many as fit. What
was skipped, and why, is in the summary printed at the end.

Output folder (--out DIR): written as the work goes (oecl_core/outdir.py): DIR/ledger.csv with every row this
call added or found, DIR/runs/... with each run's small files and, while it is unfinished, its checkpoint
when small enough to carry (else a note saying why not), and DIR/errors.log with the full traceback of every
failure (the summary keeps one line).

Data. From the prepared data set (`python -m oecl_core data prepare cifar10`), or, with --cifar10-jpeg,
from the JPEG copy of CIFAR-10 (an ImageFolder tree PATH/train/<class>/*.jpg, PATH/test/<class>/*.jpg, or
the .tar.gz holding one), read into memory and split here without writing anything into the data root:
the JPEGs are a lossy re-encoding, and a prepared `cifar10` made from them would pass for the official
one. The ledger says which (`data_source`: official | cifar10-jpeg).

Settings may be changed (--set KEY=VALUE, e.g. tiny runs in tests) only when --ledger names a file other
than the committed ledger; the row then lists them in `overrides`. Speed switches that change no result
beyond float rounding (SPEED_SETTINGS: device, checkpoint_every, compile, cuda_graphs, score_batch_views) may
be set for any ledger; the row lists them in `speed_settings`, and they are no part of the run's identity.
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
import time
import traceback
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import torch

from .budget import FIRST_CALL_EPOCHS, PROBE_MIN_SECONDS, Budget, Timings, finite, plan_chunk, score_estimate
from .config import RunConfig, resolve_config
from .data import get_dataset
from .io import write_json, write_text
from .outdir import log_error, mirror_run
from .train import RESUMABLE_CHANGES
from .verify_data import JPEG_SOURCE, OFFICIAL_SOURCE, JpegCifar10, OfficialData, read_cifar10_jpeg, say  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
COMMITTED_LEDGER = REPO / "results" / "verified" / "ledger.csv"
PRESET = "paper"
SCORES = ("s_mu", "s_l2_ens", "s_l2", "sim_s_mu")
COLUMNS = ["dataset", "cls", "class_name", "method", "preset", "seed", "epochs", "data_source", "overrides",
           "speed_settings", *(f"auroc_{s}" for s in SCORES), "status", "conv_weight_change", "paper_cell",
           "paper_cell_kind", "device", "train_seconds", "score_seconds", "git_commit", "date", "run_folder"]
# One row per (run, data, settings, commit).
KEY = ("dataset", "cls", "method", "preset", "seed", "data_source", "overrides", "git_commit")
# Settings that choose the data rather than the training: verify is the one-vs-rest benchmark of Table I.
FIXED_SETTINGS = {"dataset", "benchmark", "cls", "method", "seed", "preset", "label", "anomaly", "shots",
                  "obtainable", "train_size", "oe_count"}

# Settings that change no result beyond float rounding (those a resumed run may change), allowed for any ledger.
# The CUDA-only speed switch (cuda_graphs) is among them; precision is not: bf16 against fp32 changes results.
SPEED_SETTINGS = frozenset(RESUMABLE_CHANGES)
SIDECAR = "verify.json"  # in each run folder: data source, training seconds over every chunk, commits


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


def merge_ledger(src, dst) -> tuple[int, int]:
    """Appends src's rows (e.g. DIR/ledger.csv from a device window) to dst, none twice; (added, already there).
    The committed ledger takes only rows at the paper's settings (no `overrides`)."""
    rows = read_ledger(src)
    if not rows:
        raise ValueError(f"{src} holds no ledger rows")
    changed = [r for r in rows if r.get("overrides")]
    if changed and is_committed_ledger(dst):
        raise ValueError(f"{src}: {len(changed)} row(s) ran with settings changed ({changed[0]['overrides']}); the "
                         "committed ledger only takes runs at the paper's full settings")
    added = sum(append_row(dst, r) for r in rows)
    return added, len(rows) - added


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
        ours, paper = finite(r.get("auroc_s_mu")), finite(r.get("paper_cell"))
        train_s = finite(r.get("train_seconds"))
        commit = r.get("git_commit", "")
        mark = ""
        if paper is not None and "mean" in r.get("paper_cell_kind", ""):
            mark, means = " \u2020", True
        cells = [r["dataset"], f"{r['cls']} {r.get('class_name', '')}".strip(), r["method"], r["seed"], r["epochs"],
                 r.get("data_source", "") + (f" ({r['overrides']})" if r.get("overrides") else ""),
                 _fmt(ours), _fmt(paper) + mark,
                 f"{ours - paper:+.1f}" if ours is not None and paper is not None else "",
                 _fmt(finite(r.get("auroc_s_l2_ens"))), _fmt(finite(r.get("auroc_s_l2"))),
                 _fmt(finite(r.get("auroc_sim_s_mu"))),
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


def _make_row(cfg: RunConfig, source: str, overrides: dict, speed: dict, metrics: dict, sidecar: dict, commit: str,
              run_dir: Path) -> dict:
    class_name = get_dataset(cfg.dataset).classes()[cfg.cls]
    paper, kind = paper_cell(cfg.dataset, cfg.method, class_name)
    commits = [c for c in sidecar.get("git_commits", []) if c != commit] + [commit]
    row = {"dataset": cfg.dataset, "cls": cfg.cls, "class_name": class_name, "method": cfg.method,
           "preset": cfg.preset, "seed": cfg.seed, "epochs": cfg.epochs, "data_source": source,
           "overrides": _overrides_text(overrides), "speed_settings": _overrides_text(speed),
           "status": metrics.get("status", ""),
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


def _same_settings(saved: dict | None, cfg: RunConfig) -> bool:
    """Whether metrics.json was scored with cfg's settings, speed switches aside (they change no result)."""
    strip = lambda d: {k: v for k, v in d.items() if k not in SPEED_SETTINGS}
    return saved is not None and strip(saved) == strip(cfg.to_dict())


def verify_one(cfg: RunConfig, data, run_dir: Path, budget: Budget, timings: Timings, overrides: dict, speed: dict,
               ledgers: list[Path], commit: str, dest: Path | None = None) -> Outcome:
    """Trains (in chunks that fit the budget), scores and records one run; its row goes into every ledger of
    ledgers (the one given, and DIR/ledger.csv with --out), its files into dest after every chunk."""
    from .runner import score_run
    from .train import read_log, train

    label = f"{cfg.method} class {cfg.cls} seed {cfg.seed}"
    out = lambda state, detail="", row=None: Outcome(cfg.method, cfg.cls, cfg.seed, state, detail, row)
    done = _checkpoint_epoch(run_dir, cfg)  # ResumeMismatch: the caller records the failure
    sidecar = _read_sidecar(run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    if metrics is not None and (done < cfg.epochs or not _same_settings(metrics.get("settings"), cfg)):
        metrics = None  # from another state of the folder: score again
    split = None
    key = (cfg.dataset, cfg.method)
    model = None
    while metrics is None and done < cfg.epochs:
        per_epoch = timings.per_epoch(key)
        if split is None and (per_epoch is not None or budget.left() >= PROBE_MIN_SECONDS):
            split = data.split(cfg)  # not read when there is no time to train anyway (a large archive takes a while)
        left = budget.left()
        state = "stopped" if done else "skipped"
        resume = f"; checkpoint at epoch {done} of {cfg.epochs}, a later call resumes" if done else ""
        if per_epoch is None:
            if left < PROBE_MIN_SECONDS:
                return out(state, f"{left:.0f} s of the budget left, fewer than the {PROBE_MIN_SECONDS:.0f} s a "
                                  f"first timing needs{resume}")
            chunk = min(FIRST_CALL_EPOCHS, cfg.epochs - done)
        else:
            score_s = timings.score.get((cfg.dataset, cfg.n_aug))
            if score_s is None:
                score_s = score_estimate(per_epoch, read_log(run_dir / "log.csv"), len(split.train), len(split.test),
                                         cfg.n_aug)
            fixed, warm = timings.fixed_part(key)
            plan = plan_chunk(cfg.epochs - done, per_epoch, fixed, warm, score_s, left)
            if not plan.chunk:
                return out(state, f"needs about {plan.need:.0f} s to finish ({cfg.epochs - done} epochs at "
                                  f"{per_epoch:.2f} s + {fixed:.1f} s per train() call + scoring {score_s:.0f} s), "
                                  f"{max(left, 0):.0f} s left of the budget{resume}")
            chunk = plan.chunk
        t0 = budget.clock()
        result = train(cfg, split, run_dir, stop_after_epoch=done + chunk)
        wall = budget.clock() - t0
        # The epochs' own seconds (log.csv): the steady speed, apart from the call's fixed part.
        seconds = [r["seconds"] for r in read_log(run_dir / "log.csv") if done < r["epoch"] <= result.epochs_done]
        timings.record(key, seconds, wall)
        sidecar["train_seconds"] = sidecar.get("train_seconds", 0.0) + wall
        sidecar.setdefault("chunks", []).append({"from": done, "to": result.epochs_done, "seconds": round(wall, 3)})
        if commit not in sidecar.setdefault("git_commits", []):
            sidecar["git_commits"].append(commit)
        sidecar["data_source"] = data.name
        write_json(run_dir / SIDECAR, sidecar)
        fixed, warm = timings.fixed_part(key)
        say(f"{label}: epochs {done}-{result.epochs_done} of {cfg.epochs} in {wall:.1f} s (steady "
            f"{timings.per_epoch(key) or float('nan'):.2f} s/epoch, {fixed:.1f} s fixed per call"
            f"{'' if warm else ', with start-up'}), {budget.left():.0f} s of the budget left")
        done = result.epochs_done
        model = result.model if result.finished else None
        if dest is not None:
            mirror_run(run_dir, dest, False, done, cfg.epochs)
    if metrics is None:
        if split is None:
            split = data.split(cfg)
        say(f"{label}: scoring ({len(split.test):,} test images, {cfg.n_aug} views each)")
        metrics = score_run(cfg, run_dir, split, model, sidecar.get("train_seconds"))
        timings.score[(cfg.dataset, cfg.n_aug)] = (metrics.get("timings") or {}).get("score_seconds") or 0.0
    if dest is not None:
        mirror_run(run_dir, dest, True, done, cfg.epochs)
    row = _make_row(cfg, data.name, overrides, speed, metrics, sidecar, commit, run_dir)
    added = [append_row(ledger, row) for ledger in ledgers]
    if not added[0]:
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


def split_settings(settings: dict | None) -> tuple[dict, dict]:
    """(overrides, speed switches) of the --set settings (None values dropped)."""
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    return ({k: v for k, v in settings.items() if k not in SPEED_SETTINGS},
            {k: v for k, v in settings.items() if k in SPEED_SETTINGS})


def verify(dataset: str = "cifar10", methods=("simclr",), classes=None, seeds=(0,), budget_minutes: float = 14.0,
           cifar10_jpeg=None, ledger=COMMITTED_LEDGER, runs=None, overrides: dict | None = None,
           clock=time.monotonic, out=None) -> list[Outcome]:
    """Trains, scores and records every (method, class, seed) that fits in the budget; see the module text."""
    from .train import CheckpointRemoved, ResumeMismatch, RunStopped, TrainingDiverged

    budget = Budget(budget_minutes, clock)
    ledger = Path(ledger)
    overrides, speed = split_settings(overrides)
    committed = is_committed_ledger(ledger)
    if overrides and committed:
        raise ValueError(f"the committed ledger ({_shown(ledger)}) only takes runs at the paper's full settings; "
                         f"settings changed ({_overrides_text(overrides)}) are refused (speed switches "
                         f"{', '.join(sorted(SPEED_SETTINGS))} are allowed). Give --ledger another file "
                         "for runs with other settings.")
    fixed = sorted(set(overrides) & FIXED_SETTINGS)
    if fixed:
        raise ValueError(f"verify runs the one-vs-rest benchmark of Table I; {', '.join(fixed)} cannot be set "
                         "(use --dataset / --methods / --classes / --seeds)")
    runs = Path(runs) if runs else ledger.parent / "runs"
    data = JpegCifar10(cifar10_jpeg, complete=committed) if cifar10_jpeg else OfficialData()
    data.check(dataset)
    classes = list(range(len(get_dataset(dataset).classes()))) if classes is None else list(classes)
    configs = [resolve_config(PRESET, dataset, method, cls=cls, seed=seed, **overrides, **speed)
               for method in methods for cls in classes for seed in seeds]  # every setting checked before any work
    ledgers = [ledger]
    out = Path(out) if out else None
    if out is not None and out.resolve() in (runs.resolve(), *runs.resolve().parents):
        raise ValueError(f"--runs {runs} is inside --out {out}: the output folder would hold full checkpoints; give "
                         "--runs a folder outside it")
    if out is not None and (out / "ledger.csv").resolve() != ledger.resolve():
        ledgers.append(out / "ledger.csv")
    for path in ledgers:
        if not path.exists():
            write_ledger(path, [])
    commit = git_commit()
    timings = Timings()
    outcomes = []
    say(f"{len(configs)} run(s), budget {budget_minutes:g} min, data {data.name}, ledger {_shown(ledger)}, "
        f"commit {commit}" + (f", speed settings {_overrides_text(speed)}" if speed else ""))
    for cfg in configs:
        label = f"{cfg.method} class {cfg.cls} seed {cfg.seed}"
        probe = _make_key_row(cfg, data.name, overrides, commit)
        found = [r for r in read_ledger(ledger) if _key(r) == _key(probe)]
        if found:
            for path in ledgers[1:]:
                append_row(path, found[0])
            outcomes.append(Outcome(cfg.method, cfg.cls, cfg.seed, "in ledger", "already verified at this commit",
                                    found[0]))
            say(f"{label}: already in the ledger at this commit")
            continue
        run_dir = run_folder(runs, data.name, cfg, overrides)
        dest = None if out is None else out / "runs" / data.name / run_dir.name
        try:
            outcome = verify_one(cfg, data, run_dir, budget, timings, overrides, speed, ledgers, commit, dest)
        except RunStopped:
            raise  # a signal: the command line says how to resume
        except Exception as err:  # CUDA errors included: recorded, and the next run still tried
            line = log_error(out, f"{label} ({run_dir})", err)
            if out is None and not isinstance(err, (ResumeMismatch, TrainingDiverged, CheckpointRemoved)):
                traceback.print_exc()
            if dest is not None and run_dir.exists():
                chunks = _read_sidecar(run_dir).get("chunks") or [{"to": 0}]
                mirror_run(run_dir, dest, False, chunks[-1]["to"], cfg.epochs)
            outcome = Outcome(cfg.method, cfg.cls, cfg.seed, "failed", line)
        say(f"{label}: {outcome.state}" + (f" ({outcome.detail})" if outcome.detail else ""))
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


def fit_counts(outcomes: list[Outcome]) -> dict:
    """How many cells fit the budget (added, or found in the ledger), how many did not, how many failed."""
    counts = {state: sum(o.state == state for o in outcomes)
              for state in ("added", "in ledger", "skipped", "stopped", "failed")}
    return {"cells": len(outcomes), "fit": counts["added"] + counts["in ledger"], **counts}


def fit_line(outcomes: list[Outcome]) -> str:
    c = fit_counts(outcomes)
    return (f"{c['fit']} of {c['cells']} cell(s) fit the budget ({c['added']} added, {c['in ledger']} already in the "
            f"ledger); {c['skipped']} skipped and {c['stopped']} stopped for the budget; {c['failed']} failed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--methods", nargs="+", default=["simclr"])
    p.add_argument("--classes", nargs="+", type=int, default=None,
                   help="class indices (default: all, in order, as many as fit the budget)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--budget-minutes", type=float, default=14.0,
                   help="wall-clock budget of the whole command; a run that cannot finish inside it is not started")
    p.add_argument("--cifar10-jpeg", default=None, metavar="PATH",
                   help="the JPEG copy of CIFAR-10: PATH/{train,test}/<class>/*.jpg, or a .tar.gz holding that tree")
    p.add_argument("--ledger", default=str(COMMITTED_LEDGER), help="ledger CSV (default: the committed one)")
    p.add_argument("--runs", default=None, help="folder of the run folders (default: runs/ beside the ledger)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder written as the work goes: ledger.csv, the runs' small files, errors.log")
    p.add_argument("--merge", default=None, metavar="CSV",
                   help="only append the rows of this ledger (e.g. a device window's DIR/ledger.csv) to --ledger")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="change a setting of the paper preset (refused for the committed ledger, except the speed "
                        f"switches {', '.join(sorted(SPEED_SETTINGS))})")


def run_from_args(args) -> int:
    if args.merge:
        added, there = merge_ledger(args.merge, args.ledger)
        print(f"{added} row(s) of {args.merge} added to {args.ledger}; {there} already there")
        return 0
    outcomes = verify(args.dataset, args.methods, args.classes, args.seeds, args.budget_minutes, args.cifar10_jpeg,
                      args.ledger, args.runs, parse_settings(args.settings), out=args.out)
    print(summary_table(outcomes))
    added = sum(o.state == "added" for o in outcomes)
    print(f"\n{added} row(s) added to {args.ledger}; {fit_line(outcomes)}")
    return 1 if any(o.state == "failed" for o in outcomes) else 0
