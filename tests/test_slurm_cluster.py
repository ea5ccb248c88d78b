"""The one-node test cluster (tools/slurm/cluster.sh) does what the SLURM tests rely on; skipped without SLURM."""
import os
import subprocess
import time

import slurm_cluster
from slurm_cluster import requires_slurm, wait_idle


def test_without_sbatch_the_slurm_tests_are_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    assert not slurm_cluster.available()
    assert "sbatch is not on PATH" in slurm_cluster.unavailable_reason()


def _sbatch(tmp_path, *args):
    """Submit, wait for the job to end (sbatch --wait), return (job id, its output)."""
    out = tmp_path / "job.out"
    run = subprocess.run(["sbatch", "--parsable", "--wait", "-o", str(out), *args],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().split(";")[0], out.read_text()


def _sacct_state(job_id, timeout=60):
    """The job's state in the accounting database (recorded a moment after the job ends)."""
    deadline = time.monotonic() + timeout
    while True:
        state = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"],
                               capture_output=True, text=True).stdout.strip()
        if state not in ("", "PENDING", "RUNNING", "COMPLETING") or time.monotonic() > deadline:
            return state
        time.sleep(1)


@requires_slurm
def test_a_job_runs_and_is_accounted(tmp_path):
    wait_idle(120)
    job_id, out = _sbatch(tmp_path, "-p", "debug", "-t", "1", "--wrap", "hostname")
    assert out.strip() == os.uname().nodename.split(".")[0]
    assert _sacct_state(job_id) == "COMPLETED"
    # finished jobs stay visible to squeue for a while (MinJobAge)
    assert job_id in subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True).stdout


@requires_slurm
def test_the_gpu_partition_gives_a_gpu_job_a_device(tmp_path):
    job_id, out = _sbatch(tmp_path, "-p", "gpu", "-t", "1", "--gpus=1", "--wrap", "echo $CUDA_VISIBLE_DEVICES")
    assert out.strip() == "0"
    assert _sacct_state(job_id) == "COMPLETED"


@requires_slurm
def test_a_request_no_partition_can_run_is_refused_at_submission(tmp_path):
    for args in (["-p", "debug", "-t", "120"], ["-p", "gpu", "-t", "3-00:00:00"], ["--mem", "999999"]):
        run = subprocess.run(["sbatch", *args, "--wrap", "true"], capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode != 0, (args, run.stdout)


@requires_slurm
def test_the_partitions_and_settings_the_tests_rely_on():
    parts = subprocess.run(["sinfo", "-h", "-o", "%P %l"], capture_output=True, text=True).stdout.split("\n")
    assert {"debug*", "gpu"} <= {p.split()[0] for p in parts if p}
    assert "gpu 2-00:00:00" in parts
    conf = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    settings = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in conf.splitlines())}
    assert settings["MinJobAge"] == "300 sec"
    assert settings["JobRequeue"] == "1"
    assert settings["AccountingStorageType"] == "accounting_storage/slurmdbd"
