"""One GPU window's work in one command: `python -m oecl_core device-window --out DIR`.

    OECL_GIT_COMMIT=<commit> python -m oecl_core device-window --out DIR [--budget-seconds 540]
        [--cifar10-jpeg PATH] [--methods simclr ...] [--set KEY=VALUE ...] [--tiny]

A device window lends a GPU for a few minutes to a copy of the tree without .git, and only what a command writes
to its output folder comes back. Within --budget-seconds (counted from the start) this writes into DIR, each
file as soon as it is known:

  device.json    torch / CUDA / cuDNN versions, GPU name, capability, memory, SM count, CPUs, host, commit
  syncs.json     host syncs per training step of each method (CUDA: torch.cuda.set_sync_debug_mode("warn") over
                 a few steps after a warm-up step; CPU: the host reads of tensors that would sync on a GPU)
  bench.json     the quick throughput figures of `python -m oecl_core.throughput` at 32 px (and bench.txt, its output)
  ledger.csv     the rows of `verify` on as many CIFAR-10 classes as fit (every class in order, the methods in
                 the order given: SimCLR needs no downloaded OE), with runs/... and errors.log (oecl_core/outdir.py)
  summary.json   what was done and skipped, and why (summary.txt: the same for people)

Without --tiny or --set of a setting other than the speed switches, the ledger is the committed one
(results/verified/ledger.csv of this copy); its new rows come back in DIR/ledger.csv, to be appended to the
checkout's. Where the tree is no git checkout and $OECL_GIT_COMMIT is unset, the command refuses to start:
every row would say "unknown". --tiny trains CPU-sized runs (a dry run of the whole command in about a minute).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import socket
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import torch

from .io import write_json, write_text
from .outdir import log_error
from .syncs import count_host_tensors, cuda_sync_sites
from .verify import (COMMITTED_LEDGER, REPO, fit_counts, fit_line, git_commit, parse_settings, split_settings,
                     summary_table, verify)

DEFAULT_BUDGET_SECONDS = 540.0  # a command may run 10 minutes; what is left covers start-up and the transfer
RESERVE_SECONDS = 5.0  # kept for the summary at the end
SYNC_STEPS = 3  # counted steps per method, after one warm-up step
SYNCS_MIN_LEFT = 30.0  # seconds that must be left to count syncs ...
BENCH_MIN_LEFT = 90.0  # ... and to run the bench (the rest goes to verify)
BENCH_SHARE, BENCH_MAX_SECONDS = 0.12, 60.0  # the bench's share of the budget, at most this
# CPU-sized runs for a dry run of the whole command (as the verify tests run).
TINY = {"epochs": 2, "width": 0.0625, "n_aug": 2, "batch_size": 8, "oe_batch_size": 8, "log_samples": 8}
TINY_BENCH = ["--width", "0.0625", "--batch", "4", "--steps", "1", "--rounds", "1", "--warmup", "1", "--n-aug", "1",
              "--score-images", "8", "--large-score-batch", "64", "--switches"]

def say(message: str) -> None:
    print(f"[device-window] {message}", file=sys.stderr, flush=True)


def require_commit() -> str:
    """The commit the rows will carry; refuses where it would be "unknown" (no git checkout, no $OECL_GIT_COMMIT)."""
    commit = git_commit()
    if commit == "unknown":
        raise ValueError("this tree is no git checkout (a device copy has no .git) and $OECL_GIT_COMMIT is not set, "
                         "so every ledger row would say git_commit 'unknown'. Set OECL_GIT_COMMIT to the commit the "
                         "tree was copied from, e.g. OECL_GIT_COMMIT=$(git rev-parse HEAD) in the checkout")
    return commit


def device_facts(commit: str) -> dict:
    facts = {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
             "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
             "python": platform.python_version(), "platform": platform.platform(), "host": socket.gethostname(),
             "cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)),
             "torch_threads": torch.get_num_threads(), "commit": commit,
             "commit_from": "OECL_GIT_COMMIT" if os.environ.get("OECL_GIT_COMMIT") == commit else "git",
             "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "gpus": []}
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        p = torch.cuda.get_device_properties(i)
        facts["gpus"].append({"name": p.name, "capability": f"{p.major}.{p.minor}", "memory_bytes": p.total_memory,
                              "sm_count": p.multi_processor_count})
    return facts


# ---------------------------------------------------------------------------------------------------------
# syncs per training step
# ---------------------------------------------------------------------------------------------------------

def _shown(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def training_steps(cfg):
    """A function running one training step of cfg's method as train() runs it, on synthetic images on cfg's
    device (the network, optimiser, augmentation and batches of the run's settings)."""
    from .device import resolve_device
    from .throughput import synthetic_images
    from .methods import get_method
    from .optim import scheduled_lr, set_lr
    from .train import build_engine, epoch_generator, training_step

    device = resolve_device(cfg.device)
    method = get_method(cfg.method)
    method.configure(cfg)
    engine = build_engine(cfg, method, device)  # train()'s own setup, on one process
    model, optimizer, augment, step_model = engine.model, engine.optimizer, engine.augment, engine.step_model
    size = cfg.stored_size or cfg.image_size
    images = synthetic_images(2 * cfg.batch_size, size, 0).to(device)
    labels = torch.zeros(len(images), dtype=torch.int64, device=device) if method.needs_train_labels else None
    needs_oe = method.uses_external_oe and cfg.alpha > 0
    oe = synthetic_images(2 * cfg.oe_batch_size, size, 1).to(device) if needs_oe else None
    engine.start(cfg, images, resumed=False)
    gen = epoch_generator(cfg.seed, 1, device)
    model.train()

    def step(i: int):
        lr = scheduled_lr(cfg.lr, 1 + i / 20, cfg.epochs, cfg.lr_warmup_epochs, cfg.lr_warmup_multiplier,
                          cfg.lr_milestones if cfg.lr_schedule == "multistep" else None)
        set_lr(optimizer, lr)
        ids = slice((i % 2) * cfg.batch_size, (i % 2 + 1) * cfg.batch_size)
        x_oe = oe[(i % 2) * cfg.oe_batch_size:(i % 2 + 1) * cfg.oe_batch_size] if needs_oe else None
        return training_step(step_model, method, optimizer, augment, gen, images[ids], x_oe, cfg.alpha,
                             cfg.temperature, None if labels is None else labels[ids], cfg.precision)[0]

    return step, device


def sync_counts(cfg, steps: int = SYNC_STEPS) -> dict:
    """Syncs per training step of cfg's method: one warm-up step, then `steps` counted one by one."""
    step, device = training_steps(cfg)
    cuda = device.type == "cuda"
    step(0)  # warm-up: cuDNN autotuning, lazy initialisation
    if cuda:
        torch.cuda.synchronize()
    per_step, where = [], Counter()
    for i in range(1, steps + 1):
        if cuda:
            found = cuda_sync_sites(step, i)
        else:
            with count_host_tensors() as counts:
                step(i)
            found = Counter({f"{kind} at {site}": n for (kind, site), n in counts.sites.items()})
        per_step.append(sum(found.values()))
        where.update(found)
    if cuda:
        torch.cuda.synchronize()
    how = ("torch.cuda.set_sync_debug_mode('warn'): synchronising CUDA operations" if cuda else
           "CPU: tensors made from host data and values read back (oecl_core.syncs.count_host_tensors), which "
           "would synchronise on a GPU; a CPU run cannot see syncs inside torch's own operators")
    return {"device": str(device), "how": how, "steps": steps, "per_step": per_step,
            "mean_per_step": sum(per_step) / steps, "where": dict(where.most_common())}


# ---------------------------------------------------------------------------------------------------------
# the bench
# ---------------------------------------------------------------------------------------------------------

def bench_arguments(out: Path, seconds: float, tiny: bool) -> list[str]:
    args = ["--sizes", "32", "--json", str(out / "bench.json"), "--no-pil", "--budget-seconds", f"{seconds:.0f}"]
    if tiny:
        return args + TINY_BENCH
    # the graphed step against the eager one, and bf16 against float32; torch.compile's tens of seconds of
    # compiling are not spent in a window
    return args + ["--switches", "cuda_graphs", "bf16"]


# ---------------------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------------------

class Window:
    """DIR and its summary, rewritten after every stage."""

    def __init__(self, out: Path, budget_seconds: float, clock):
        self.out, self.clock = out, clock
        self.start = clock()
        self.deadline = self.start + budget_seconds
        self.summary = {"budget_seconds": budget_seconds, "argv": sys.argv[1:], "stages": []}

    def left(self) -> float:
        return self.deadline - self.clock()

    def stage(self, name: str, state: str, t0: float, detail: str = "") -> None:
        self.summary["stages"].append({"stage": name, "state": state, "seconds": round(self.clock() - t0, 2),
                                       "detail": detail})
        self.summary["seconds_used"] = round(self.clock() - self.start, 2)
        write_json(self.out / "summary.json", self.summary)
        say(f"{name}: {state}" + (f" ({detail})" if detail else "") + f"; {self.left():.0f} s left")

    def failed(self, name: str, t0: float, err: BaseException) -> None:
        self.stage(name, "failed", t0, log_error(self.out, name, err) + " (traceback in errors.log)")


def window(out, budget_seconds: float = DEFAULT_BUDGET_SECONDS, cifar10_jpeg=None, methods=("simclr",),
           settings: dict | None = None, tiny: bool = False, ledger=None, runs=None, clock=time.monotonic) -> dict:
    """The whole command (see the module text); returns the summary written to DIR/summary.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    win = Window(out, budget_seconds, clock)
    commit = require_commit()
    settings = {**(TINY if tiny else {}), **(settings or {})}
    overrides, speed = split_settings(settings)
    if ledger is None:  # rows at the paper's settings go to the committed ledger; they come back in DIR/ledger.csv
        ledger = out / "ledger.csv" if overrides else COMMITTED_LEDGER
    if runs is None:  # the committed ledger's runs where verify keeps them; other runs apart, in a temporary folder
        committed = Path(ledger).resolve() == COMMITTED_LEDGER.resolve()
        runs = COMMITTED_LEDGER.parent / "runs" if committed else Path(tempfile.mkdtemp(prefix="oecl-window-runs-"))
    runs = Path(runs)
    win.summary.update(commit=commit, methods=list(methods), settings={k: str(v) for k, v in settings.items()},
                       ledger=str(ledger), runs=str(runs), cifar10_jpeg=str(cifar10_jpeg) if cifar10_jpeg else None)

    t0 = clock()
    write_json(out / "device.json", device_facts(commit))
    win.stage("device.json", "done", t0)

    t0 = clock()
    if win.left() < SYNCS_MIN_LEFT:
        win.stage("syncs.json", "skipped", t0, f"{win.left():.0f} s left, fewer than {SYNCS_MIN_LEFT:.0f} s")
    else:
        from .config import resolve_config

        syncs = {}
        try:
            for method in methods:
                syncs[method] = sync_counts(resolve_config("paper", "cifar10", method, **settings))
                write_json(out / "syncs.json", syncs)
            win.stage("syncs.json", "done", t0, ", ".join(f"{m} {s['mean_per_step']:g}/step" for m, s in syncs.items()))
        except Exception as err:  # the next stages still run
            win.failed("syncs.json", t0, err)

    t0 = clock()
    share = min(BENCH_MAX_SECONDS, BENCH_SHARE * budget_seconds)
    if win.left() < share + (RESERVE_SECONDS if tiny else BENCH_MIN_LEFT):
        win.stage("bench.json", "skipped", t0, f"{win.left():.0f} s left, kept for verify")
    else:
        from . import throughput as bench

        text = io.StringIO()
        try:
            with contextlib.redirect_stdout(text):
                bench.main(bench_arguments(out, share, tiny))
            win.stage("bench.json", "done", t0, f"share {share:.0f} s")
        except Exception as err:
            win.failed("bench.json", t0, err)
        finally:
            write_text(out / "bench.txt", text.getvalue())

    t0 = clock()
    minutes = max(0.0, win.left() - RESERVE_SECONDS) / 60
    outcomes = []
    try:
        outcomes = verify("cifar10", list(methods), None, [0], minutes, cifar10_jpeg, ledger, runs, settings,
                          clock=clock, out=out)
        win.summary["verify"] = {**fit_counts(outcomes), "outcomes": [
            {"method": o.method, "cls": o.cls, "seed": o.seed, "state": o.state, "detail": o.detail,
             "auroc_s_mu": (o.row or {}).get("auroc_s_mu", ""), "paper_cell": (o.row or {}).get("paper_cell", "")}
            for o in outcomes]}
        win.stage("verify", "done", t0, fit_line(outcomes))
    except Exception as err:
        win.failed("verify", t0, err)

    files = sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
    win.summary["files"] = {str(p.relative_to(out)): p.stat().st_size for p in files}
    write_json(out / "summary.json", win.summary)
    lines = [f"device-window, commit {commit}, {win.summary['seconds_used']:.0f} of {budget_seconds:.0f} s used", ""]
    lines += [f"{s['stage']:<12} {s['state']:<8} {s['seconds']:>7.1f} s  {s['detail']}" for s in win.summary["stages"]]
    if outcomes:
        lines += ["", summary_table(outcomes), "", fit_line(outcomes)]
    write_text(out / "summary.txt", "\n".join(lines) + "\n")
    return win.summary


def listing(out: Path) -> str:
    files = sorted(p for p in Path(out).rglob("*") if p.is_file() and not p.name.startswith("."))
    return "\n".join(f"{p.stat().st_size:>12,}  {p.relative_to(out)}" for p in files)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="the output folder (all that comes back)")
    p.add_argument("--budget-seconds", type=float, default=DEFAULT_BUDGET_SECONDS,
                   help="wall-clock budget of the whole command")
    p.add_argument("--cifar10-jpeg", default=None, metavar="PATH", help="the JPEG copy of CIFAR-10 (folder or .tar.gz)")
    p.add_argument("--methods", nargs="+", default=["simclr"], help="in this order (SimCLR needs no downloaded OE)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting of the paper preset (speed switches allowed for the committed ledger)")
    p.add_argument("--tiny", action="store_true", help="CPU-sized runs: a dry run of the whole command")
    p.add_argument("--ledger", default=None, help="default: the committed ledger, or DIR/ledger.csv with --tiny")
    p.add_argument("--runs", default=None, help="folder of the run folders (default: results/verified/runs for the "
                                                "committed ledger, else a new temporary folder)")


def run_from_args(args) -> int:
    out = Path(args.out)
    try:
        summary = window(out, args.budget_seconds, args.cifar10_jpeg, args.methods, parse_settings(args.settings),
                         args.tiny, args.ledger, args.runs)
    except ValueError as err:  # refused before any work (no commit, a setting refused): say so in DIR too
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "summary.json", {"refused": str(err), "traceback": traceback.format_exc()})
        raise
    print((out / "summary.txt").read_text())
    print(f"{out}:\n{listing(out)}")
    failed = any(s["state"] == "failed" for s in summary["stages"]) or summary.get("verify", {}).get("failed")
    return 1 if failed else 0
