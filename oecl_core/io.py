"""Atomic writes: an interrupted job never leaves a file that looks complete."""
from __future__ import annotations

import contextlib
import json
import os
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
