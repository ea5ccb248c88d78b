"""A run stopped by SIGTERM or SIGUSR1 (a SLURM time limit, a preemption, the warning signal) keeps every finished
step: its checkpoint resumes to the weights of a run never stopped, and the command line exits 75, not 1."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from oecl_core.methods.oecl import OECL
from oecl_core.train import CHECKPOINT, STOPPED_EXIT, RunStopped, read_log, train

from test_train import cfg, tiny_split

REPO = Path(__file__).resolve().parents[1]


def signal_at_step(monkeypatch, sig, at: int):
    """Sends this process `sig` while the at-th training step (counted from 1 over the run) computes its loss."""
    calls = {"n": 0}
    real = OECL.loss

    def loss(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            os.kill(os.getpid(), sig)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(OECL, "loss", loss)


@pytest.mark.parametrize("sig, at, epochs_done, steps_done", [
    (signal.SIGTERM, 6, 1, 1),   # 5 steps per epoch: in epoch 2's first step, so it stops after that step
    (signal.SIGUSR1, 10, 2, None),  # in epoch 2's last step: the epoch ends (logged, probed), then it stops
])
def test_a_signalled_run_resumes_to_the_weights_of_an_unstopped_run(tmp_path, monkeypatch, sig, at, epochs_done,
                                                                     steps_done):
    split = tiny_split(n=40)  # batch 8: 5 steps per epoch
    whole = train(cfg(checkpoint_every=10), split, tmp_path / "whole", progress=False)
    signal_at_step(monkeypatch, sig, at)
    with pytest.raises(RunStopped, match=signal.Signals(sig).name):
        train(cfg(checkpoint_every=10), split, tmp_path / "stopped", progress=False)
    monkeypatch.undo()
    state = torch.load(tmp_path / "stopped" / CHECKPOINT, weights_only=False)
    assert state["epoch"] == epochs_done  # no periodic checkpoint was due: the signal wrote this one
    assert (state.get("within") or {}).get("step") == steps_done
    assert signal.getsignal(signal.SIGTERM) == signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # handlers restored
    resumed = train(cfg(checkpoint_every=10), split, tmp_path / "stopped", progress=False)
    assert resumed.finished
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in read_log(tmp_path / "whole" / "log.csv")] == \
           [r["loss"] for r in read_log(tmp_path / "stopped" / "log.csv")]


def test_the_command_line_exits_75_on_sigterm_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "oecl_core", "run", "--preset", "smoke", "--dataset", "digits", "--cls", "0",
           "--method", "oecl", "--epochs", "40", "--width", "0.0625", "--n-aug", "2", "--device", "cpu",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "log.csv").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)  # the first epoch is logged: training is under way
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == STOPPED_EXIT, err
    assert "stopped by SIGTERM" in err and "run the same command again" in err
    assert not (out / "metrics.json").exists() and not (out / "failed.json").exists()
    assert (out / "stopped.json").exists()
    epochs_logged = len(read_log(out / "log.csv"))
    state = torch.load(out / CHECKPOINT, weights_only=False)
    assert state["epoch"] >= epochs_logged  # no finished epoch lost
    again = subprocess.run(cmd + ["--attempt", "2"], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr and json.loads((out / "metrics.json").read_text())["auroc"]
    assert not (out / "stopped.json").exists()  # finished: no record of a stop is left


def test_a_retry_after_a_real_failure_fails_at_once(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "oecl_core", "run", "--preset", "smoke", "--dataset", "digits", "--cls", "0",
           "--method", "oecl", "--epochs", "2", "--width", "0.0625", "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OECL_DATA": str(tmp_path / "no-data")}
    out.mkdir()  # the run folder of an earlier attempt (a failure before any work, e.g. a bad setting, writes none)
    bad = subprocess.run(cmd + ["--oe", "folder:" + str(tmp_path / "missing")], cwd=REPO, capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 2 and (out / "failed.json").exists(), bad.stderr
    retry = subprocess.run(cmd + ["--oe", "folder:" + str(tmp_path / "missing"), "--attempt", "2"], cwd=REPO,
                           capture_output=True, text=True, env=env)
    assert retry.returncode == 1 and "not retried: attempt 1" in retry.stderr
    fresh = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)  # attempt 1: a new workflow run
    assert fresh.returncode == 0, fresh.stderr
    assert not (out / "failed.json").exists()
