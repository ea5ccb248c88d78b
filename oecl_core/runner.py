"""One experiment end to end: build the split, train (or resume), score, and write metrics.json."""
from __future__ import annotations

import platform
import sys
import time
import warnings
from contextlib import nullcontext
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
from .device import resolve_device
from .train import CHECKPOINT, UNDERTRAINED_CHANGE, build_network, conv_weight_change, is_collapsed, read_log, train


def versions() -> dict:
    import sklearn
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__, "cuda": torch.version.cuda}


def split_for(cfg: RunConfig) -> Split:
    return build_split(cfg.dataset, cfg.benchmark, cfg.cls, cfg.oe, cfg.stored_size or cfg.image_size, seed=cfg.seed,
                       anomaly=cfg.anomaly, shots=cfg.shots, train_size=cfg.train_size, oe_count=cfg.oe_count,
                       obtainable=cfg.obtainable)


def load_trained(out_dir, cfg: RunConfig):
    if not get_method(cfg.method).trains:
        return build_network(cfg).to(resolve_device(cfg.device))
    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint in {out_dir}: train this run first (python -m oecl_core train ...)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["epoch"] < cfg.epochs:
        raise RuntimeError(f"{path} holds epoch {state['epoch']} of {cfg.epochs}: resume training before scoring")
    model = build_network(cfg).to(resolve_device(cfg.device))
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
        "split": {"description": split.description, "n_train": len(split.train), "n_oe": 0 if split.oe is None else len(split.oe),
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
                      "above the OE norm); its AUROCs are not meaningful and metrics.json says status=collapsed")
    if metrics["undertrained"]:
        warnings.warn(f"{out_dir}: the convolution weights moved a median {100 * change:.2f}% from their initialisation "
                      f"(under {100 * UNDERTRAINED_CHANGE:.0f}%): the run is under-trained and metrics.json says "
                      "undertrained=true; raise the learning rate or the number of steps (see docs/fidelity.md)")
    return metrics


def run_experiment(cfg: RunConfig, out_dir, progress: bool | None = None, stop_after_epoch: int | None = None) -> dict | None:
    """Train (resuming if a checkpoint exists) and score. Returns the metrics, or None if stopped early.
    One process at a time per run folder: a second one waits for the first (io.run_lock), then resumes."""
    split = split_for(cfg)
    procs = distributed.from_environment()
    # Under torchrun rank 0 holds the lock for the job's processes (the others wait for it in the process group).
    with run_lock(out_dir, ", then resuming from its checkpoint") if procs.is_main else nullcontext():
        result = train(cfg, split, out_dir, stop_after_epoch=stop_after_epoch, progress=progress)
        if not procs.is_main:
            return None  # rank 0 scores and writes metrics.json
        if not result.finished:
            print(f"stopped after epoch {result.epochs_done} of {cfg.epochs}; run the same command again to resume",
                  file=sys.stderr)
            return None
        return score_run(cfg, out_dir, split, result.model, result.train_seconds, progress)
