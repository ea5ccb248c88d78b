"""profiles/slurm against a real SLURM scheduler (tools/slurm/cluster.sh starts one on this machine; CI does).
Skipped where sbatch is absent. Each test submits real jobs, so each takes minutes: the plugin first checks job
states 40 s after submitting, then every 10 s more."""
import re
import subprocess
import time

import pytest
import torch

from oecl_core.train import read_log

from slurm_cluster import requires_slurm, wait_idle
from test_pipeline import REPO, TINY, repo_config, snakemake, snakemake_command

pytestmark = requires_slurm
PROFILE = ["--workflow-profile", str(REPO / "profiles/slurm")]


def on_cluster(tmp_path, *args, config):
    return snakemake_command(tmp_path, "table1", *PROFILE, *args, config=config)


def sacct_states(workdir) -> list[str]:
    """The states of the SLURM jobs whose working directory is workdir, in submission order (a requeued job once
    per start: REQUEUED, then its next state)."""
    out = subprocess.run(["sacct", "-X", "-D", "-n", "-P", "-S", "now-1days", "-o", "JobID,State,WorkDir"],
                         capture_output=True, text=True, check=True).stdout
    return [state for _, state, folder in (line.split("|") for line in out.splitlines() if line.count("|") == 2)
            if folder.rstrip("/") == str(workdir)]


def test_a_small_table_through_the_slurm_profile_equals_the_local_run(tmp_path):
    wait_idle(120)
    config = repo_config(preset="smoke", tables={"table1": TINY})
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    local.mkdir(), cluster.mkdir()
    assert snakemake(local, "table1", config=config).returncode == 0
    out = subprocess.run(on_cluster(cluster, config=config), capture_output=True, text=True, cwd=REPO, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "submitted with SLURM jobid" in out.stderr + out.stdout
    states = sacct_states(cluster)
    assert len(states) == 2 and set(states) == {"COMPLETED"}, states  # the 2 OECL runs; HSC is quoted
    table = "results/smoke/tables/table1.md"
    assert (cluster / table).read_text() == (local / table).read_text()


# One OECL run of about 2 minutes' training on this machine's CPUs (300 epochs took under a minute once jobs
# started fast, issue 17).
LONG = "one_vs_rest~epochs=700~n_aug=2~width=0.0625"
LONG_RUN = f"results/smoke/runs/{LONG}/digits/oecl/0/seed0"


def long_table(runtime):
    config = repo_config(preset="smoke", tables={"table1": {**TINY, "rows": [{**TINY["rows"][0], "classes": [0],
                                                                                "benchmark": LONG}]}})
    config["train_resources"]["smoke"]["runtime"] = runtime
    return config


def test_a_run_longer_than_its_time_limit_finishes_over_several_jobs_with_the_weights_of_one(tmp_path):
    """A 1-minute time limit: SLURM's SIGTERM at the limit stops the run (TIMEOUT), and the retries resume it. No
    warning signal here: SLURM may send it up to a minute early, so under a 1-minute limit it would come while
    Snakemake starts, before anything can catch it (docs/slurm.md)."""
    wait_idle(120)
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    local.mkdir(), cluster.mkdir()
    assert snakemake(local, "table1", config=long_table(30)).returncode == 0
    started = time.monotonic()
    out = subprocess.run(on_cluster(cluster, "--set-resources", "train_run:slurm_extra=''", config=long_table(1)),
                         capture_output=True, text=True, cwd=REPO, timeout=1800)
    states = sacct_states(cluster)
    print(f"{time.monotonic() - started:.0f} s; sacct states of the run's jobs: {states}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(states) >= 2 and states[-1] == "COMPLETED" and set(states[:-1]) == {"TIMEOUT"}, states
    # every epoch trained once: the per-epoch losses of the 3 jobs are those of the uninterrupted run
    assert [r["loss"] for r in read_log(cluster / LONG_RUN / "log.csv")] == \
           [r["loss"] for r in read_log(local / LONG_RUN / "log.csv")]
    a = torch.load(local / LONG_RUN / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(cluster / LONG_RUN / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    table = "results/smoke/tables/table1.md"
    assert (cluster / table).read_text() == (local / table).read_text()


def test_a_job_cancelled_with_scancel_stops_the_workflow_and_the_rerun_resumes(tmp_path):
    wait_idle(120)
    config = long_table(30)
    driver = subprocess.Popen(on_cluster(tmp_path, config=config), cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    checkpoint = tmp_path / LONG_RUN / "checkpoint.pt"
    log = tmp_path / f"results/smoke/logs/train/{LONG}/digits/oecl/0/seed0.log"
    deadline = time.monotonic() + 600
    while not (tmp_path / LONG_RUN / "log.csv").exists() and time.monotonic() < deadline:  # an epoch is done
        assert driver.poll() is None, driver.communicate()[0][-3000:]
        time.sleep(1)
    jobs = re.findall(r"SLURM jobid (\d+)", next((tmp_path / ".snakemake/log").glob("*.log")).read_text())
    assert jobs, "no job submitted"
    subprocess.run(["scancel", jobs[-1]], check=True)
    try:
        driver.communicate(timeout=600)  # it must end, not wait for the cancelled job forever
    except subprocess.TimeoutExpired:
        driver.kill()
        pytest.fail("the workflow still waits for the cancelled job after 10 minutes")
    assert driver.returncode != 0
    assert "not retried" in log.read_text() and "cancelled" in log.read_text(), log.read_text()[-2000:]
    assert checkpoint.exists() and not (tmp_path / LONG_RUN / "metrics.json").exists()
    rerun = subprocess.run(on_cluster(tmp_path, config=config), capture_output=True, text=True, cwd=REPO, timeout=1200)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (tmp_path / LONG_RUN / "metrics.json").exists()
    assert log.read_text().count("resuming") >= 1
