"""Atomic writes: an interrupted job never leaves a file that looks complete; and one process per run folder."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from pathlib import Path

import torch


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_json(path, data) -> None:
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def write_text(path, text: str) -> None:
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def save_torch(path, obj) -> None:
    path = Path(path)
    tmp = _tmp(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def stderr_to_log(path):
    """Send warnings and errors to a job's log file, the traceback of a failure included."""
    with open(path, "w") as fh, contextlib.redirect_stderr(fh):
        try:
            yield
        except BaseException:
            traceback.print_exc()
            raise


@contextlib.contextmanager
def run_lock(out_dir, wait_message: str = ""):
    """Exclusive lock on a run folder for as long as one process trains and scores it (out_dir/.lock, flock).

    A second process on the same run waits until the first ends, then goes on (typically resuming from the
    checkpoint the first left): e.g. when a killed Snakemake driver left its training job running as an orphan and
    the rerun starts the same run again. The kernel drops the lock when its holder dies, even by SIGKILL."""
    import fcntl
    import socket

    path = Path(out_dir) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            print(f"{out_dir}: {holder} is working on this run (for example a job left running by a killed Snakemake "
                  f"driver); waiting for it to end{wait_message}", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        yield
