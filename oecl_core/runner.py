"""One experiment end to end: build the split, train (or resume), score, and write metrics.json."""
from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import platform
import sys
import time
import warnings
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .config import RunConfig
from .data import Split, build_split
from .io import run_lock, write_json
from .metrics import auroc
from .methods import get_method
from .progress import Progress
from .device import place_network, resolve_device, use_cudnn_benchmark
from .train import (CHECKPOINT, CHECKPOINT_REMOVED, UNDERTRAINED_CHANGE, ResumeMismatch, build_network,
                    conv_weight_change, is_collapsed, read_log, settings_changes, train)


def _torchvision_version() -> str:
    """torchvision.__version__, read from its version.py: importing torchvision imports torch._dynamo (over a second
    of a job that the network and data never need)."""
    spec = importlib.util.find_spec("torchvision")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root, "version.py")
        lines = path.read_text().splitlines() if path.is_file() else []
        for line in lines:
            if line.startswith("__version__ = "):
                return ast.literal_eval(line.split("=", 1)[1].strip())
    import torchvision

    return torchvision.__version__


def _scikit_learn_version() -> str:
    """sklearn.__version__ from the installed package's metadata: importing scikit-learn costs a second, and a
    scored run no longer needs it (oecl_core.metrics computes the AUROC)."""
    try:
        return importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        import sklearn

        return sklearn.__version__


def versions() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": _torchvision_version(),
            "numpy": np.__version__, "scikit-learn": _scikit_learn_version(), "cuda": torch.version.cuda}


def split_for(cfg: RunConfig) -> Split:
    return build_split(cfg.dataset, cfg.benchmark, cfg.cls, cfg.oe, cfg.stored_size or cfg.image_size, seed=cfg.seed,
                       anomaly=cfg.anomaly, shots=cfg.shots, train_size=cfg.train_size, oe_count=cfg.oe_count,
                       obtainable=cfg.obtainable)


def load_trained(out_dir, cfg: RunConfig):
    if not get_method(cfg.method).trains:
        return place_network(build_network(cfg), resolve_device(cfg.device))
    path = Path(out_dir) / CHECKPOINT
    if not path.exists() and (Path(out_dir) / CHECKPOINT_REMOVED).exists():
        raise FileNotFoundError(f"{out_dir} was scored and its checkpoint then removed ({CHECKPOINT_REMOVED}: the "
                                "pipeline's keep_checkpoints false, or run --no-keep-checkpoint), so it cannot be "
                                "scored again; delete the run folder and run it again to retrain it")
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint in {out_dir}: train this run first (python -m oecl_core train ...)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["epoch"] < cfg.epochs:
        raise RuntimeError(f"{path} holds epoch {state['epoch']} of {cfg.epochs}: resume training before scoring")
    # placed as train() places it (channels-last on CUDA); load_state_dict keeps the weights' memory format
    model = place_network(build_network(cfg), resolve_device(cfg.device))
    model.load_state_dict(state["model"])
    return model


def score_run(cfg: RunConfig, out_dir, split: Split | None = None, model=None, train_seconds: float | None = None,
              progress: bool | None = None) -> dict:
    """Scores the test set with every score function and writes out_dir/metrics.json (atomically)."""
    out_dir = Path(out_dir)
    split = split or split_for(cfg)
    model = model or load_trained(out_dir, cfg)
    method = get_method(cfg.method)
    method.configure(cfg)
    use_cudnn_benchmark(next(model.parameters()).device)
    bar = Progress(len(split.test), "scoring", enabled=progress)
    t0 = time.monotonic()
    scores = method.score(model, split.test, cfg, train_images=split.train, progress=bar.update)
    bar.close()
    score_seconds = time.monotonic() - t0
    log = read_log(out_dir / "log.csv")
    collapsed = method.flags_collapse and is_collapsed(log)
    normal = split.test_is_normal.numpy()
    change = conv_weight_change(model, cfg) if method.from_scratch else None
    metrics = {
        "auroc": {name: auroc(values, normal) for name, values in scores.items()},
        "status": "collapsed" if collapsed else "ok",
        "collapsed": collapsed,
        "conv_weight_change": change,
        "undertrained": change is not None and change < UNDERTRAINED_CHANGE,
        "settings": cfg.to_dict(),
        "seed": cfg.seed,
        "split": {"description": split.description, "n_train": len(split.train),
                  "n_oe": 0 if split.oe is None else len(split.oe),
                  "n_test": len(split.test), "n_test_normal": int(normal.sum())},
        "final_norms": {k: log[-1][k] for k in ("norm_id", "norm_oe", "norm_ood")} if log else {},
        "timings": {"train_seconds": train_seconds, "score_seconds": score_seconds,
                    "train_seconds_logged": float(sum(r["seconds"] for r in log))},
        "versions": versions(),
        "device": str(next(model.parameters()).device),
    }
    write_json(out_dir / "metrics.json", metrics)
    if collapsed:
        warnings.warn(f"{out_dir}: the run collapsed (mean ID feature norm fell to {log[-1]['norm_id']:.3g}, no longer "
                      "above the OE norm); its AUROCs are not meaningful and metrics.json says status=collapsed",
                      stacklevel=1)
    if metrics["undertrained"]:
        warnings.warn(f"{out_dir}: the convolution weights moved a median {100 * change:.2f}% from their "
                      f"initialisation (under {100 * UNDERTRAINED_CHANGE:.0f}%): the run is under-trained and "
                      "metrics.json says undertrained=true; raise the learning rate or the number of steps "
                      "(see docs/fidelity.md)",
                      stacklevel=1)
    return metrics


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_checkpoint(out_dir, cfg: RunConfig, metrics: dict) -> dict | None:
    """Once a run is scored: deletes its checkpoint.pt, leaving CHECKPOINT_REMOVED, a record of it (its size, sha256
    and epoch, the run's settings and a copy of its metrics). The record is written first, so an interruption leaves
    both files, never neither. Returns the record (None: the run has no checkpoint, e.g. zero-shot CLIP)."""
    out_dir = Path(out_dir)
    path = out_dir / CHECKPOINT
    if not path.exists():
        return None
    record = {"file": CHECKPOINT, "bytes": path.stat().st_size, "sha256": _sha256(path), "epoch": cfg.epochs,
              "removed_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "why": "scored; removed as keep_checkpoints false asks (run --no-keep-checkpoint): the tables and "
                     "figures read metrics.json and log.csv only",
              "settings": cfg.to_dict(), "metrics": metrics}
    write_json(out_dir / CHECKPOINT_REMOVED, record)
    path.unlink()
    return record


def scored_without_checkpoint(cfg: RunConfig, out_dir, write: bool = True) -> dict | None:
    """The metrics of a run that was scored and whose checkpoint was then removed (None: not such a run): such a run
    is finished and is not trained again. Snakemake deletes a job's output (metrics.json) before it runs the job
    again (e.g. after an edit of the rule), so metrics.json is restored from the record where it is missing (`write`:
    this process may write). Other settings than the record's are refused, as a checkpoint's are."""
    out_dir = Path(out_dir)
    record_path = out_dir / CHECKPOINT_REMOVED
    if (out_dir / CHECKPOINT).exists() or not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    changes = settings_changes(dict(record["settings"]), cfg)
    if changes:
        raise ResumeMismatch(f"{out_dir} was scored with other settings ({changes}) and its checkpoint removed "
                             f"({CHECKPOINT_REMOVED}); use another output folder, or delete this one to train the run "
                             "again")
    metrics_path = out_dir / "metrics.json"
    if not metrics_path.exists():
        if write:
            write_json(metrics_path, record["metrics"])
        restored = " (metrics.json restored from it)"
    else:
        restored = ""
    print(f"{out_dir}: scored on an earlier call and its checkpoint removed ({CHECKPOINT_REMOVED}{restored}); nothing "
          "to train or score", file=sys.stderr)
    return record["metrics"] if not metrics_path.exists() else json.loads(metrics_path.read_text())


def run_experiment(cfg: RunConfig, out_dir, progress: bool | None = None, stop_after_epoch: int | None = None,
                   keep_checkpoint: bool = True, split: Split | None = None, after_train=None) -> dict | None:
    """Train (resuming if a checkpoint exists) and score. Returns the metrics, or None if stopped early.
    keep_checkpoint False: once scored, the checkpoint is removed (remove_checkpoint), and a later call returns the
    run's metrics without training (scored_without_checkpoint).
    split: the run's images where they are not the pipeline's (split_for(cfg)): verify's JPEG copy, the pilot's tree.
    after_train(result): called as train() returns, before any scoring (verify times its chunks there); a number it
    returns is the training time metrics.json records (verify's: every chunk of every call) instead of this call's.
    One process at a time per run folder: a second one waits for the first (io.run_lock), then resumes."""
    procs = distributed.from_environment()
    done = scored_without_checkpoint(cfg, out_dir, write=procs.is_main)
    if done is not None:
        return done if procs.is_main else None
    split = split_for(cfg) if split is None else split
    # Under torchrun rank 0 holds the lock for the job's processes (the others wait for it in the process group).
    with run_lock(out_dir, ", then resuming from its checkpoint") if procs.is_main else nullcontext():
        result = train(cfg, split, out_dir, stop_after_epoch=stop_after_epoch, progress=progress)
        if not procs.is_main:
            return None  # rank 0 scores and writes metrics.json
        seconds = after_train(result) if after_train is not None else None
        if not result.finished:
            if after_train is None:  # a caller with a hook trains on in chunks and says so itself
                print(f"stopped after epoch {result.epochs_done} of {cfg.epochs}; run the same command again to resume",
                      file=sys.stderr)
            return None
        metrics = score_run(cfg, out_dir, split, result.model, result.train_seconds if seconds is None else seconds,
                            progress)
        if keep_checkpoint:
            (Path(out_dir) / CHECKPOINT_REMOVED).unlink(missing_ok=True)  # a stale record: the checkpoint is here
        else:
            remove_checkpoint(out_dir, cfg, metrics)
        return metrics
