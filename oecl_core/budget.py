"""The wall-clock budget of `verify` (and `device-window`), and the timing model its decisions use.

A train() call costs a fixed part (building the network, moving the data to the device, probes, checkpoint
writes, the first epoch's start-up: CUDA context, cuDNN autotuning, compilation) plus its epochs at a steady
speed. The steady seconds per epoch come from the epochs' own `seconds` in log.csv, the first epoch of every
call left out; the fixed part of a call is its wall time minus its epochs at that steady speed. Finishing a run
then takes (epochs left) x (steady seconds) + (calls left) x (fixed part) + scoring. The first call of the
process carries CUDA's start-up, which later calls do not: its fixed part is kept apart ("cold") and used only
until a later call has measured a warm one.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

# Budget rules (seconds).
PROBE_MIN_SECONDS = 10.0  # a run with no timing yet needs this much left to start its first call
FIRST_CALL_EPOCHS = 2  # a run with no timing yet: a warm-up epoch and one steady epoch
TIMING_CHUNK_SECONDS = 15.0  # a chunk trained to measure a warm call's fixed part when only a cold one is known
CHUNK_SECONDS = 60.0  # later chunks: the budget is checked again (and the run copied to --out) after each
FIXED_SHARE = 0.1  # chunks are made long enough that the fixed part is at most this share of them
SAFETY = 1.1  # the estimate of what is left is multiplied by this ...
MARGIN_SECONDS = 5.0  # ... and this added
STEADY_WINDOW = 50  # the per-epoch time is the median of this many latest steady epochs


class Budget:
    """Wall-clock seconds left of the command's budget (the clock is injectable for tests)."""

    def __init__(self, minutes: float, clock=time.monotonic):
        self.clock = clock
        self.deadline = clock() + 60.0 * minutes

    def left(self) -> float:
        return self.deadline - self.clock()


def finite(value) -> float | None:
    """value as a float, or None where it is no finite number (an empty CSV cell, "nan")."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def seconds_needed(epochs_left: int, per_epoch: float, score_seconds: float, fixed_seconds: float = 0.0) -> float:
    """What finishing a run is expected to take: the rest of its training (epochs and the fixed part of every
    call left), and its scoring, with a margin."""
    return SAFETY * (epochs_left * per_epoch + fixed_seconds + score_seconds) + MARGIN_SECONDS


def score_estimate(per_epoch: float, log: list[dict], n_train: int, n_test: int, n_aug: int) -> float:
    """Scoring time, from the training speed: scoring forwards every test image 1 + n_aug times, every
    training image once and up to 1,000 of them 1 + n_aug times, without backward (about a third of a
    training forward + backward); a training epoch forwards images_per_s * seconds views."""
    views = [r["images_per_s"] * r["seconds"] for r in log
             if finite(r.get("images_per_s")) and finite(r.get("seconds"))]
    if not views:
        return 0.0
    per_epoch_views = float(np.median(views))
    score_views = n_test * (1 + n_aug) + n_train + min(1000, n_train) * (1 + n_aug)
    return per_epoch * score_views / (3.0 * per_epoch_views)


@dataclass
class Timings:
    """What this command has measured: steady epoch seconds and fixed parts per (data set, method), scoring
    seconds per (data set, n_aug), and how many train() calls the process has made."""

    steady: dict = field(default_factory=dict)  # key -> [seconds of every steady epoch]
    fixed: dict = field(default_factory=dict)  # key -> {"warm": s | None, "cold": s | None}
    score: dict = field(default_factory=dict)  # (dataset, n_aug) -> seconds
    calls: int = 0

    def record(self, key, epoch_seconds: list[float], wall: float) -> None:
        """One train() call: its epochs' own seconds (log.csv, in order) and its wall time."""
        cold = self.calls == 0  # the process's first call carries CUDA's start-up
        self.calls += 1
        self.steady.setdefault(key, []).extend(epoch_seconds[1:])  # the call's first epoch is start-up
        per = self.per_epoch(key) or 0.0  # None: a one-epoch call, nothing steady yet; its whole wall is fixed
        fixed = max(0.0, wall - len(epoch_seconds) * per)
        self.fixed.setdefault(key, {"warm": None, "cold": None})["cold" if cold else "warm"] = fixed

    def per_epoch(self, key) -> float | None:
        values = self.steady.get(key) or []
        return statistics.median(values[-STEADY_WINDOW:]) if values else None

    def fixed_part(self, key) -> tuple[float, bool]:
        """(seconds, warm): the latest warm fixed part of this key, else of any key (network and data differ
        little between methods), else the cold one (an upper bound), else 0."""
        own = self.fixed.get(key, {})
        if own.get("warm") is not None:
            return own["warm"], True
        warm = [f["warm"] for f in self.fixed.values() if f.get("warm") is not None]
        if warm:
            return max(warm), True
        return (own.get("cold") or 0.0), False


@dataclass
class Plan:
    chunk: int  # epochs of the next call; 0: do not train
    need: float  # seconds to finish, as estimated
    lower: float  # the same with no fixed part: above what is left, the run cannot fit whatever the fixed part


def plan_chunk(epochs_left: int, per_epoch: float, fixed: float, warm: bool, score_seconds: float,
               left: float) -> Plan:
    """The next call's epochs for a run with a steady per-epoch time: chunks of CHUNK_SECONDS, longer where the
    fixed part would take more than FIXED_SHARE of them; 0 when the run cannot finish in what is left. With only
    a cold fixed part known, a run that fits without it trains a short timing chunk to measure a warm one."""
    per_epoch = max(per_epoch, 1e-9)
    target = max(CHUNK_SECONDS, fixed / FIXED_SHARE)
    chunk = max(1, min(epochs_left, int(target / per_epoch)))
    calls = math.ceil(epochs_left / chunk)
    need = seconds_needed(epochs_left, per_epoch, score_seconds, calls * fixed)
    lower = seconds_needed(epochs_left, per_epoch, score_seconds, 0.0)
    if need <= left:
        return Plan(chunk, need, lower)
    if not warm and lower <= left:
        return Plan(max(1, min(epochs_left, int(TIMING_CHUNK_SECONDS / per_epoch))), need, lower)
    return Plan(0, need, lower)
