"""What a training job does when a signal stops its run, and whether a retry resumes it.

The run has checkpointed every finished step (oecl_core/train.py). On SLURM's warning signal alone (SIGUSR1, which
the job asked for ahead of its time limit) it requeues its own job (`scontrol requeue`): the job starts again under
the same id, after SLURM's requeue delay, and resumes the run. SIGTERM may be the time limit, a preemption or a
person's `scancel`, so then the job just ends (exit 75) and Snakemake's retries (profiles/slurm) decide: a retry
resumes a run stopped by a time limit or a preemption, never one its user cancelled, nor one that failed, which would
only fail again.

A run folder records why its last attempt ended unfinished: failed.json (an error) or stopped.json (a signal, with
the SLURM job it came in). Attempt 1 (a new workflow run) always goes ahead.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .io import write_json

FAILED = "failed.json"
STOPPED = "stopped.json"


def record_failure(out_dir, error: BaseException, attempt: int) -> None:
    if not Path(out_dir).is_dir():  # refused before any work (bad settings): nothing to record, nothing to resume
        return
    write_json(Path(out_dir) / FAILED, {"error": f"{type(error).__name__}: {error}", "attempt": attempt})


def record_stop(out_dir, attempt: int) -> None:
    write_json(Path(out_dir) / STOPPED, {"slurm_job": os.environ.get("SLURM_JOB_ID"), "attempt": attempt})


def requeue() -> str | None:
    """Requeue this SLURM job (None where not in one, or where SLURM refuses); returns its id."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return job if done.returncode == 0 else None


def clear(out_dir) -> None:
    for name in (FAILED, STOPPED):
        (Path(out_dir) / name).unlink(missing_ok=True)


def slurm_state(job_id: str) -> str | None:
    """sacct's state of a SLURM job (e.g. "CANCELLED by 1000", "TIMEOUT"), or None where sacct cannot say."""
    try:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return lines[-1] if out.returncode == 0 and lines else None


def refusal(out_dir, attempt: int) -> str | None:
    """Why this attempt must not resume the run (None: go ahead). Clears the records of attempt 1's predecessors."""
    failed, stopped = Path(out_dir) / FAILED, Path(out_dir) / STOPPED
    if attempt <= 1:
        clear(out_dir)
        return None
    if failed.exists():
        reason = json.loads(failed.read_text()).get("error", "?")
        return (f"attempt {attempt - 1} failed ({reason}); fix the cause (see this run's log), then run the workflow "
                "again")
    if stopped.exists():
        job = json.loads(stopped.read_text()).get("slurm_job")
        state = slurm_state(job) if job else None
        if state and state.startswith("CANCELLED") and "by" in state:
            return (f"attempt {attempt - 1} (SLURM job {job}) was cancelled ({state}); its checkpoint is kept, and "
                    "running the workflow again resumes it")
    return None
