"""Runs verified at the paper's full settings, and the ledger that records them.

    python -m oecl_core verify --dataset cifar10 --methods simclr self_oecl --classes 0 1 2 --seeds 0 \\
        --budget-minutes 8 [--cifar10-jpeg PATH] [--ledger results/verified/ledger.csv] [--runs DIR] [--out DIR]
    python -m oecl_core verify --merge DIR/ledger.csv     # a device window's rows, appended to the ledger

Every run is the `paper` preset exactly as `oecl_core.config.resolve_config` resolves it (no setting
changed): it is trained in resumable chunks and scored by the pipeline's `oecl_core.runner.run_experiment`
(run lock, atomic metrics.json), in RUNS/<data source>/ + `oecl_core.experiments.RUN_FOLDER` (settings changed
from the preset in its benchmark spec; a folder of the former layout is moved there), and, once finished,
recorded as one row of `results/verified/ledger.csv` (oecl_core/ledger.py): its AUROC (%) for every score in
metrics.json, the paper's cell beside it, the device, the timings and the git commit. A row is never written
twice for the same run and commit.

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
import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .budget import FIRST_CALL_EPOCHS, PROBE_MIN_SECONDS, Budget, Timings, plan_chunk, score_estimate
from .config import SETTING_TYPES, RunConfig, parse_setting, resolve_config
from .data import get_dataset
from .experiments import RUN_FOLDER, benchmark_spec
from .io import write_json
from .ledger import (COLUMNS, COMMITTED_LEDGER, KEY, REPO, SCORES, append_row, device_name, git_commit,  # noqa: F401
                     is_committed_ledger, key_row, ledger_markdown, ledger_row, merge_ledger, paper_cell, read_ledger,
                     row_key, settings_text, shown, write_ledger)
from .outdir import log_error, mirror_run
from .train import RESUMABLE_CHANGES
from .verify_data import JPEG_SOURCE, OFFICIAL_SOURCE, JpegCifar10, OfficialData, read_cifar10_jpeg, say  # noqa: F401

PRESET = "paper"
# Settings that choose the data rather than the training: verify is the one-vs-rest benchmark of Table I.
FIXED_SETTINGS = {"dataset", "benchmark", "cls", "method", "seed", "preset", "label", "anomaly", "shots",
                  "obtainable", "train_size", "oe_count"}

# Settings that change no result beyond float rounding (those a resumed run may change), allowed for any ledger.
# The CUDA-only speed switch (cuda_graphs) is among them; precision is not: bf16 against fp32 changes results.
SPEED_SETTINGS = frozenset(RESUMABLE_CHANGES)
SIDECAR = "verify.json"  # in each run folder: data source, training seconds over every chunk, commits


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


def run_folder(runs: Path, source: str, cfg: RunConfig, overrides: dict) -> Path:
    """The pipeline's layout (experiments.RUN_FOLDER) below runs/<data source>/; settings changed from the paper
    preset are in the benchmark spec, as the pipeline names a variant (speed switches are not: same run)."""
    bench = benchmark_spec(cfg.benchmark, **overrides)
    return runs / source / RUN_FOLDER.format(benchmark=bench, dataset=cfg.dataset, method=cfg.method, cls=cfg.cls,
                                             seed=cfg.seed)


def adopt_old_folder(runs: Path, source: str, cfg: RunConfig, overrides: dict, run_dir: Path) -> None:
    """Moves a run folder of the layout before RUN_FOLDER (runs/<source>/<dataset>-<method>-cls<c>-seed<s>[-<hash
    of the overrides>]) to run_dir, so that a checkpoint left by an earlier call is resumed, not trained again."""
    name = f"{cfg.dataset}-{cfg.method}-cls{cfg.cls}-seed{cfg.seed}"
    if overrides:
        name += "-" + hashlib.sha256(settings_text(overrides).encode()).hexdigest()[:8]
    old = runs / source / name
    if old.is_dir() and not run_dir.exists():
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, run_dir)
        say(f"moved {shown(old)} to {shown(run_dir)} (the run folders' layout is experiments.RUN_FOLDER)")


def _read_sidecar(run_dir: Path) -> dict:
    path = run_dir / SIDECAR
    return json.loads(path.read_text()) if path.exists() else {"train_seconds": 0.0, "git_commits": [], "chunks": []}


def _checkpoint_epoch(run_dir: Path, cfg: RunConfig) -> int:
    from .train import load_checkpoint

    state = load_checkpoint(run_dir, cfg)  # refuses a checkpoint written with other settings
    return 0 if state is None else int(state["epoch"])


def _same_settings(saved: dict | None, cfg: RunConfig) -> bool:
    """Whether metrics.json was scored with cfg's settings, speed switches aside (they change no result)."""
    strip = lambda d: {k: v for k, v in d.items() if k not in SPEED_SETTINGS}
    return saved is not None and strip(saved) == strip(cfg.to_dict())


def verify_one(cfg: RunConfig, data, run_dir: Path, budget: Budget, timings: Timings, overrides: dict, speed: dict,
               ledgers: list[Path], commit: str, dest: Path | None = None) -> Outcome:
    """Trains (in chunks that fit the budget, each a call of runner.run_experiment, the last of which scores),
    and records one run; its row goes into every ledger of ledgers (the one given, and DIR/ledger.csv with --out),
    its files into dest after every chunk."""
    from .runner import run_experiment
    from .train import read_log

    label = f"{cfg.method} class {cfg.cls} seed {cfg.seed}"
    out = lambda state, detail="", row=None: Outcome(cfg.method, cfg.cls, cfg.seed, state, detail, row)
    done = _checkpoint_epoch(run_dir, cfg)  # ResumeMismatch: the caller records the failure
    sidecar = _read_sidecar(run_dir)
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    if metrics is not None and (done < cfg.epochs or not _same_settings(metrics.get("settings"), cfg)):
        metrics = None  # from another state of the folder: score again
    scored, split = metrics is None, None
    key = (cfg.dataset, cfg.method)
    t0 = 0.0

    def after_train(result):
        """A chunk trained: its timing, the sidecar, the copy in dest; the training seconds metrics.json records."""
        nonlocal done
        if result.epochs_done > done:  # a call that only loads a finished run to score it is no chunk
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
            if dest is not None:
                mirror_run(run_dir, dest, False, done, cfg.epochs)
        if result.finished:
            say(f"{label}: scoring ({len(split.test):,} test images, {cfg.n_aug} views each)")
        return sidecar.get("train_seconds")

    while metrics is None:
        chunk = cfg.epochs - done  # trained: only scored, whatever is left of the budget
        per_epoch = timings.per_epoch(key)
        if split is None and (done >= cfg.epochs or per_epoch is not None or budget.left() >= PROBE_MIN_SECONDS):
            split = data.split(cfg)  # not read when there is no time to train anyway (a large archive takes a while)
        left = budget.left()
        state = "stopped" if done else "skipped"
        resume = f"; checkpoint at epoch {done} of {cfg.epochs}, a later call resumes" if done else ""
        if done < cfg.epochs and per_epoch is None:
            if left < PROBE_MIN_SECONDS:
                return out(state, f"{left:.0f} s of the budget left, fewer than the {PROBE_MIN_SECONDS:.0f} s a "
                                  f"first timing needs{resume}")
            chunk = min(FIRST_CALL_EPOCHS, cfg.epochs - done)
        elif done < cfg.epochs:
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
        # The run lock, training, scoring and the atomic metrics.json are the pipeline's (None: not finished yet).
        metrics = run_experiment(cfg, run_dir, stop_after_epoch=done + chunk, split=split, after_train=after_train)
    if scored:
        timings.score[(cfg.dataset, cfg.n_aug)] = (metrics.get("timings") or {}).get("score_seconds") or 0.0
    if dest is not None:
        mirror_run(run_dir, dest, True, done, cfg.epochs)
    row = ledger_row(cfg, data.name, overrides, speed, metrics, sidecar, commit, run_dir)
    added = [append_row(ledger, row) for ledger in ledgers]
    if not added[0]:
        return out("in ledger", "a row for this run and commit is already there", row)
    return out("added", f"s_mu {row['auroc_s_mu']}" + (f" [{row['status']}]" if row["status"] != "ok" else ""), row)


# ---------------------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------------------

def parse_settings(items: list[str]) -> dict:
    """KEY=VALUE strings -> settings, typed as RunConfig declares them (config.parse_setting)."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in SETTING_TYPES:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(SETTING_TYPES))}")
        try:
            settings[key] = parse_setting(key, value)
        except ValueError as err:
            raise ValueError(f"--set {item!r}: {err}") from None
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
        raise ValueError(f"the committed ledger ({shown(ledger)}) only takes runs at the paper's full settings; "
                         f"settings changed ({settings_text(overrides)}) are refused (speed switches "
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
    say(f"{len(configs)} run(s), budget {budget_minutes:g} min, data {data.name}, ledger {shown(ledger)}, "
        f"commit {commit}" + (f", speed settings {settings_text(speed)}" if speed else ""))
    for cfg in configs:
        label = f"{cfg.method} class {cfg.cls} seed {cfg.seed}"
        probe = key_row(cfg, data.name, overrides, commit)
        found = [r for r in read_ledger(ledger) if row_key(r) == row_key(probe)]
        if found:
            for path in ledgers[1:]:
                append_row(path, found[0])
            outcomes.append(Outcome(cfg.method, cfg.cls, cfg.seed, "in ledger", "already verified at this commit",
                                    found[0]))
            say(f"{label}: already in the ledger at this commit")
            continue
        run_dir = run_folder(runs, data.name, cfg, overrides)
        dest = None if out is None else out / "runs" / run_dir.relative_to(runs)  # the same layout in --out
        try:
            adopt_old_folder(runs, data.name, cfg, overrides, run_dir)
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
