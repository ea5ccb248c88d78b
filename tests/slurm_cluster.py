"""The SLURM cluster the SLURM tests run against (a helper module, not a test file).

Tests that need a real scheduler use ``requires_slurm``; they run where ``sbatch`` and ``sinfo`` are on PATH and a
node takes jobs (``sudo bash tools/slurm/cluster.sh up`` starts a one-node cluster on this machine), and are skipped
elsewhere, so the test command passes without SLURM::

    from slurm_cluster import requires_slurm, wait_idle

    @requires_slurm
    def test_something_on_slurm(tmp_path):
        wait_idle(120)
        ...

(``tests/`` is on ``sys.path`` under pytest's default import mode, the folder of ``conftest.py``.)
"""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest

# node states (sinfo %T) in which the node runs jobs; "idle*" (not responding), down, drained etc. are not ready
READY_STATES = ("idle", "mixed", "allocated", "completing")


def node_states(timeout: float = 20) -> list[str]:
    """The state of each node as ``sinfo -h -o %T`` prints it, one per line; [] when sinfo fails or is absent."""
    if shutil.which("sinfo") is None:
        return []
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def unavailable_reason() -> str | None:
    """Why the SLURM tests cannot run here, or None when they can."""
    for tool in ("sbatch", "sinfo"):
        if shutil.which(tool) is None:
            return f"no SLURM here ({tool} is not on PATH; `sudo bash tools/slurm/cluster.sh up` starts a test cluster)"
    states = node_states()
    if not states:
        return "SLURM is installed but sinfo shows no node (is the controller up? `bash tools/slurm/cluster.sh status`)"
    if not any(s in READY_STATES for s in states):
        return f"no SLURM node takes jobs (sinfo shows {', '.join(sorted(set(states)))})"
    return None


def available() -> bool:
    """True when sbatch and sinfo are on PATH and sinfo shows a node that is idle, mixed or allocated."""
    return unavailable_reason() is None


def wait_idle(timeout: float = 300, poll: float = 1.0) -> None:
    """Wait until every node is idle (no job left running or completing, e.g. from an earlier test); raise
    TimeoutError with the last states seen after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while True:
        states = node_states()
        if states and all(s == "idle" for s in states):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"SLURM nodes not idle after {timeout:g} s: {states or 'sinfo shows none'}")
        time.sleep(poll)


# Decided once, when a test module first imports this: a test session asks sinfo once, not once per test.
_REASON = unavailable_reason()
requires_slurm = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
