"""Stopping a run on a signal: the signals a training job heeds, the exception that ends it and their handling."""
from __future__ import annotations

import signal
import threading

import torch

from . import distributed
from .distributed import Processes

# SLURM sends SIGTERM at a job's time limit, on preemption and on scancel (then SIGKILL after KillWait, 30 s by
# default), and SIGUSR1 where the job asked for a warning signal (--signal=USR1@N, profiles/slurm): either ends the
# current step, writes a checkpoint and ends the run with RunStopped. The command line then requeues the SLURM job
# (warning signal) or exits with STOPPED_EXIT for a retry (oecl_core/retry.py); both resume from that checkpoint.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
STOPPED_EXIT = 75  # EX_TEMPFAIL (sysexits.h): stopped, not failed; run the same command again to resume
# With several processes the ranks agree to stop at the same step: every STOP_CHECK_STEPS steps (a host sync each).
STOP_CHECK_STEPS = 10


class RunStopped(Exception):
    """A signal stopped the run; its checkpoint holds every finished step, and the same command resumes it.
    warned: only SIGUSR1 came, the warning a job asks for before its time limit (SIGTERM may be a person's scancel)."""

    def __init__(self, message: str, signals: list[str]):
        super().__init__(message)
        self.warned = bool(signals) and set(signals) == {"SIGUSR1"}


class StopRequests:
    """Records the STOP_SIGNALS received while training (handlers only in the main thread; the previous ones are
    restored on exit)."""

    def __init__(self):
        self.received: list[str] = []
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum, frame):
        name = signal.Signals(signum).name
        if name not in self.received:
            self.received.append(name)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    def agreed(self, procs: Processes, device) -> bool:
        """Whether to stop now: this process got a signal, or (several processes) any of them did."""
        if not procs.active:
            return bool(self.received)
        flag = torch.tensor([float(bool(self.received))], device=device)
        distributed.all_reduce_max(flag)
        return bool(flag.item())


def should_stop(stop: StopRequests, procs: Processes, device, step: int | None) -> bool:
    # One process: a signal is seen after the step it arrived in. Several: they agree every STOP_CHECK_STEPS steps
    # and at each epoch's end (step None), so that every rank stops at the same step.
    if procs.active and step is not None and (step + 1) % STOP_CHECK_STEPS:
        return False
    return stop.agreed(procs, device)
