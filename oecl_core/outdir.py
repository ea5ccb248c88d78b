"""The output folder of `verify --out DIR` and `device-window`, written as the work goes.

Only what a device command writes to its output folder comes back from the device, and only up to a size, so
DIR holds every ledger row, each run's small files (config.json, log.csv, metrics.json, verify.json), a copy
of its checkpoint where small enough to be carried to a later window, and the full traceback of every failure.
"""
from __future__ import annotations

import os
import shutil
import traceback
from datetime import datetime, timezone
from pathlib import Path

from .io import write_json
from .train import CHECKPOINT

RUN_FILES = ("config.json", "log.csv", "metrics.json", "verify.json")
CHECKPOINT_LIMIT_BYTES = 60 * 2**20  # 64 MiB at most travel to the device, the rest of the tree included
NOT_RESUMABLE = "checkpoint_not_copied.json"
ERRORS = "errors.log"


def copy_file(src: Path, dst: Path) -> None:
    """Copies atomically: a folder fetched mid-copy never holds a truncated file under the final name."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def mirror_run(run_dir: Path, dest: Path, finished: bool, epoch: int, epochs: int) -> None:
    """Copies the run's small files into dest; unless the run is finished (scored: it needs no checkpoint), its
    checkpoint too when at most CHECKPOINT_LIMIT_BYTES, else a note saying why dest cannot resume it."""
    run_dir, dest = Path(run_dir), Path(dest)
    for name in RUN_FILES:
        if (run_dir / name).exists():
            copy_file(run_dir / name, dest / name)
    ckpt, note = run_dir / CHECKPOINT, dest / NOT_RESUMABLE
    size = ckpt.stat().st_size if ckpt.exists() and not finished else None
    if size is None or size > CHECKPOINT_LIMIT_BYTES:
        (dest / CHECKPOINT).unlink(missing_ok=True)  # a stale copy would resume from an older epoch
    if size is not None and size <= CHECKPOINT_LIMIT_BYTES:
        copy_file(ckpt, dest / CHECKPOINT)
        note.unlink(missing_ok=True)
    elif size is not None:
        write_json(note, {
            "resumable_from_this_folder": False, "epoch": epoch, "epochs": epochs, "checkpoint_bytes": size,
            "why": f"the checkpoint at epoch {epoch} of {epochs} is {size / 2**20:.1f} MiB, over the "
                   f"{CHECKPOINT_LIMIT_BYTES / 2**20:.0f} MiB that can be carried to a later window (64 MiB in all); "
                   "it was not copied, so this run starts over in a later window"})
    else:
        note.unlink(missing_ok=True)


def log_error(out: Path | None, context: str, err: BaseException) -> str:
    """Appends err's full traceback to out/errors.log (when out is given); returns the one-line summary."""
    first = (str(err).strip().splitlines() or [""])[0]
    line = f"{type(err).__name__}: {first}"
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        with open(Path(out) / ERRORS, "a", encoding="utf-8") as fh:
            fh.write(f"=== {stamp} {context}\n{text}\n")
    return line
