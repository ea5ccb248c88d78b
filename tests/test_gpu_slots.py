"""oecl_core.gpu_slots: concurrent jobs get GPUs of their own from a pool (simulated here through
CUDA_VISIBLE_DEVICES on the CPU), wait when all are taken, and free them however they end; and the pipeline's
training jobs, several at once, each on its own GPU."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from oecl_core import distributed, gpu_slots

REPO = Path(__file__).resolve().parents[1]
# what a job does with its GPUs: writes its pid and CUDA_VISIBLE_DEVICES, then holds them until its stdin closes
HOLD = 'echo "$$ [${CUDA_VISIBLE_DEVICES-unset}]" > "$0.tmp" && mv "$0.tmp" "$0"; read line; exit 0'


def environment(tmp_path, visible="0,1,2,3", **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PYTHONPATH=str(REPO), OECL_GPU_LOCKS=str(tmp_path / "locks"))
    if visible is None:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        env["CUDA_VISIBLE_DEVICES"] = visible
    env.update(extra)
    return env


class Job:
    def __init__(self, tmp_path, name, n=1, **env):
        self.out = tmp_path / name
        self.proc = subprocess.Popen([sys.executable, "-m", "oecl_core.gpu_slots", str(n), "--", "sh", "-c", HOLD,
                                      str(self.out)], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=environment(tmp_path, **env))

    def started(self, timeout=30) -> bool:
        deadline = time.monotonic() + timeout
        while not self.out.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    @property
    def pid_and_gpus(self) -> tuple[int, str]:
        pid, gpus = re.fullmatch(r"(\d+) \[(.*)\]\n", self.out.read_text()).groups()
        return int(pid), gpus

    def end(self) -> str:
        """Lets the job end; its stderr."""
        return self.proc.communicate(input="", timeout=30)[1]


@pytest.fixture
def jobs():
    started = []
    yield started
    for job in started:
        if job.proc.poll() is None:
            job.proc.kill()
        job.proc.communicate()


def test_concurrent_jobs_get_distinct_gpus_and_one_more_waits_for_the_first_to_free(tmp_path, jobs):
    jobs += [Job(tmp_path, f"job{i}") for i in range(4)]
    assert all(job.started() for job in jobs)
    assert sorted(job.pid_and_gpus[1] for job in jobs) == ["0", "1", "2", "3"]
    # exec: the command is the launcher's own process (Snakemake's child, which its signals reach)
    assert all(job.pid_and_gpus[0] == job.proc.pid for job in jobs)
    fifth = Job(tmp_path, "job4")
    jobs.append(fifth)
    assert not fifth.started(timeout=2) and fifth.proc.poll() is None  # all four taken: it waits
    freed = jobs[2].pid_and_gpus[1]
    said = jobs[2].end()
    assert f"CUDA_VISIBLE_DEVICES={freed}" in said and jobs[2].proc.returncode == 0
    assert fifth.started() and fifth.pid_and_gpus[1] == freed
    waited = fifth.end()
    assert "0 of the 4 GPUs of CUDA_VISIBLE_DEVICES free, this job needs 1; waiting" in waited
    assert re.search(rf"GPU {freed} of CUDA_VISIBLE_DEVICES for this job \(pid \d+\): CUDA_VISIBLE_DEVICES={freed}\n",
                     waited)


def test_a_job_with_several_gpus_takes_distinct_ones_and_waits_for_enough(tmp_path, jobs):
    jobs += [Job(tmp_path, "two", n=2), Job(tmp_path, "one", n=1)]
    assert jobs[0].started() and jobs[1].started()
    first, second = jobs[0].pid_and_gpus[1].split(","), jobs[1].pid_and_gpus[1].split(",")
    assert len(set(first + second)) == 3 and set(first + second) <= {"0", "1", "2", "3"}
    jobs.append(Job(tmp_path, "two_more", n=2))  # one GPU free: not enough
    assert not jobs[2].started(timeout=2)
    jobs[1].end()
    assert jobs[2].started()
    assert set(jobs[2].pid_and_gpus[1].split(",")) == {"0", "1", "2", "3"} - set(first)


def test_a_killed_job_frees_its_gpu(tmp_path, jobs):
    jobs.append(Job(tmp_path, "held", visible="5"))
    assert jobs[0].started()
    jobs.append(Job(tmp_path, "waiting", visible="5"))
    assert not jobs[1].started(timeout=2)
    jobs[0].proc.kill()  # kill -9: no clean-up of its own; the kernel releases the lock
    assert jobs[1].started() and jobs[1].pid_and_gpus[1] == "5"


def test_slurm_jobs_on_one_node_each_have_their_own_gpu_0(tmp_path, jobs):
    jobs += [Job(tmp_path, "a", visible="0", SLURM_JOB_ID="101"), Job(tmp_path, "b", visible="0", SLURM_JOB_ID="102")]
    assert jobs[0].started() and jobs[1].started()  # both at once: each job's "0" is a different GPU
    same_job = Job(tmp_path, "c", visible="0", SLURM_JOB_ID="101")  # a second Snakemake job inside allocation 101
    jobs.append(same_job)
    assert not same_job.started(timeout=2)
    jobs[0].end()
    assert same_job.started()
    names = {gpu_slots.lock_name("0", {"SLURM_JOB_ID": j}) for j in ("101", "102")} | {gpu_slots.lock_name("0", {})}
    assert len(names) == 3


def test_more_gpus_than_the_pool_has_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "oecl_core.gpu_slots", "5", "--", "true"], capture_output=True,
                         text=True, env=environment(tmp_path))
    assert out.returncode == 2
    assert "this job needs 5 GPUs but CUDA_VISIBLE_DEVICES has only 4 (0,1,2,3)" in out.stderr
    bad = subprocess.run([sys.executable, "-m", "oecl_core.gpu_slots", "0", "--", "true"], capture_output=True,
                         text=True, env=environment(tmp_path))
    assert bad.returncode == 2 and "usage" in bad.stderr
    (tmp_path / "a_file").write_text("")
    no_folder = subprocess.run([sys.executable, "-m", "oecl_core.gpu_slots", "1", "--", "true"], capture_output=True,
                               text=True, env=environment(tmp_path, OECL_GPU_LOCKS=str(tmp_path / "a_file/locks")))
    assert no_folder.returncode == 2 and "cannot use the GPU lock folder" in no_folder.stderr
    assert "set OECL_GPU_LOCKS to a folder" in no_folder.stderr


def test_without_gpus_the_command_runs_unchanged(tmp_path, jobs):
    jobs += [Job(tmp_path, "none_visible", visible=""), Job(tmp_path, "cpu_machine", visible=None)]
    assert jobs[0].started() and jobs[0].pid_and_gpus[1] == ""  # left as it was: no GPU
    assert "no GPU in CUDA_VISIBLE_DEVICES: the job runs as it is" in jobs[0].end()
    assert jobs[1].started()
    if not gpu_slots.machine_gpus():  # this machine has no GPU
        assert jobs[1].pid_and_gpus[1] == "unset"
        assert "no GPU in this machine" in jobs[1].end()


def test_the_machine_gpus_are_counted_from_nvidia_smi_or_the_driver(tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\necho '  MIG 1g.10gb Device 0: (UUID: MIG-b)'\n"
                   "echo 'GPU 1: NVIDIA H100 (UUID: GPU-c)'\n")
    smi.chmod(0o755)
    assert gpu_slots.machine_gpus(nvidia_smi=str(smi)) == ["0", "1"]
    proc = tmp_path / "gpus"
    for bus in ("0000:01:00.0", "0000:41:00.0", "0000:81:00.0"):
        (proc / bus).mkdir(parents=True)
    assert gpu_slots.machine_gpus(proc_dir=str(proc), nvidia_smi=str(tmp_path / "absent")) == ["0", "1", "2"]
    assert gpu_slots.machine_gpus(proc_dir=str(tmp_path / "absent"), nvidia_smi=str(tmp_path / "absent")) == []
    assert gpu_slots.pool({"CUDA_VISIBLE_DEVICES": "GPU-a, 3,3"}) == (["GPU-a", "3"], "CUDA_VISIBLE_DEVICES")


def test_a_signal_while_waiting_exits_as_a_stopped_run(tmp_path, jobs):
    from oecl_core.train import STOPPED_EXIT

    assert gpu_slots.STOPPED_EXIT == STOPPED_EXIT
    jobs.append(Job(tmp_path, "held", visible="0"))
    assert jobs[0].started()
    jobs.append(Job(tmp_path, "waiting", visible="0"))
    assert not jobs[1].started(timeout=2)
    jobs[1].proc.send_signal(signal.SIGTERM)
    assert jobs[1].proc.wait(timeout=30) == STOPPED_EXIT
    assert "stopped by SIGTERM while waiting for a GPU" in jobs[1].end()


def test_the_command_starts_with_the_signal_dispositions_the_launcher_was_given(tmp_path):
    """Snakemake's process in a SLURM job ignores SIGUSR1 (Snakefile); the launcher leaves that as it is, and gives
    back the default of SIGPIPE, which Python ignores."""
    out = subprocess.run(["sh", "-c", f"trap '' USR1; exec {sys.executable} -m oecl_core.gpu_slots 1 -- "
                          "grep SigIgn /proc/self/status"], capture_output=True, text=True,
                         env=environment(tmp_path, visible="0"))
    ignored = int(out.stdout.split()[1], 16)
    assert ignored & (1 << (signal.SIGUSR1 - 1)) and not ignored & (1 << (signal.SIGPIPE - 1)), out


def test_the_launcher_imports_no_torch_and_cuda_visible_devices_leaves_a_cpu_machine_on_the_cpu(tmp_path):
    probe = "import sys, oecl_core.gpu_slots; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=environment(tmp_path)).stdout.strip() == "False"
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    device = subprocess.run([sys.executable, "-m", "oecl_core.gpu_slots", "1", "--", sys.executable, "-c",
                             "from oecl_core.device import resolve_device; print(resolve_device('auto'))"],
                            capture_output=True, text=True, env=environment(tmp_path, visible="2"))
    assert device.returncode == 0 and device.stdout.strip() == "cpu", device.stderr
    assert "CUDA_VISIBLE_DEVICES=2" in device.stderr


def test_pipeline_jobs_with_gpus_start_behind_the_launcher_and_jobs_without_as_before():
    assert gpu_slots.command(0, distributed.launcher(0)) == "python"
    assert gpu_slots.command(1, distributed.launcher(1)) == "python -m oecl_core.gpu_slots 1 -- python"
    assert gpu_slots.command(4, distributed.launcher(4)) == \
        "python -m oecl_core.gpu_slots 4 -- torchrun --standalone --nproc_per_node 4"


def test_a_torchrun_job_holds_its_gpus_for_all_its_processes(tmp_path, jobs):
    """A job with train_resources gpu: 2 runs torchrun behind the launcher: both processes see the job's two GPUs
    (each takes cuda:LOCAL_RANK among them, oecl_core.distributed.setup) and no other job gets them meanwhile."""
    script = tmp_path / "rank.py"
    script.write_text("import os, sys, time\n"
                      "p = os.path.join(sys.argv[1], 'rank' + os.environ['LOCAL_RANK'])\n"
                      "open(p, 'w').write(os.environ['CUDA_VISIBLE_DEVICES'])\n"
                      "time.sleep(8)\n")
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = gpu_slots.command(2, distributed.launcher(2)).replace("python -m", f"{sys.executable} -m", 1)
    command = command.replace("torchrun", torchrun)
    job = subprocess.Popen([*command.split(), str(script), str(tmp_path)], stderr=subprocess.PIPE, text=True,
                           env=environment(tmp_path, visible="4,5,6"))
    deadline = time.monotonic() + 120
    while not (tmp_path / "rank1").exists() or not (tmp_path / "rank0").exists():
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()[1]
        time.sleep(0.1)
    jobs.append(Job(tmp_path, "beside", visible="4,5,6"))  # the one GPU the torchrun job left
    assert jobs[0].started() and jobs[0].pid_and_gpus[1] == "6"
    jobs.append(Job(tmp_path, "after", visible="4,5,6"))
    assert not jobs[1].started(timeout=1)  # the torchrun job still runs: its GPUs stay taken
    said = job.communicate(timeout=120)[1]
    assert job.returncode == 0, said
    assert (tmp_path / "rank0").read_text() == (tmp_path / "rank1").read_text() == "4,5"
    assert "GPUs 4,5 of CUDA_VISIBLE_DEVICES for this job" in said
    assert jobs[1].started() and jobs[1].pid_and_gpus[1] == "4"


def _interval(run: Path) -> tuple[float, float]:
    """When a run trained: its config.json is written as training starts, its metrics.json when it is scored."""
    return (run / "config.json").stat().st_mtime, (run / "metrics.json").stat().st_mtime


def test_concurrent_pipeline_training_jobs_each_get_their_own_gpu(tmp_path):
    """Snakemake on a simulated 4-GPU machine (CUDA_VISIBLE_DEVICES=0,1,2,3 on the CPU; torch stays on the CPU),
    the local profile's `gpu` cap at 3 and the smoke preset's jobs given a GPU each: four tiny training jobs, at most
    three at once, and the jobs that ran at the same time had different GPUs (each job's log names its own)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["preset"] = "smoke"
    config["train_resources"]["smoke"]["gpu"] = 1
    spec = "one_vs_rest~epochs=1~n_aug=2~width=0.0625"
    config["tables"] = {"table1": {"rows": [{"dataset": "digits", "classes": [0, 1, 2, 3], "benchmark": spec}],
                                   "columns": [{"method": "oecl", "run": True}], "seeds": [0]}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = environment(tmp_path)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]  # the rule's `python` is this one
    cmd = [sys.executable, "-m", "snakemake", "table1", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
           "--workflow-profile", str(REPO / "profiles/local"), "--cores", "4", "--resources", "gpu=3",
           "--configfile", str(tmp_path / "config.yaml")]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "python -m oecl_core.gpu_slots 1 -- python -m oecl_core run" in out.stdout + out.stderr
    gpus, intervals = {}, {}
    for cls in range(4):
        log = (tmp_path / f"results/smoke/logs/train/{spec}/digits/oecl/{cls}/seed0.log").read_text()
        first = log.splitlines()[0]
        gpus[cls] = re.fullmatch(r"oecl gpu_slots: GPU (\d) of CUDA_VISIBLE_DEVICES for this job \(pid \d+\): "
                                 r"CUDA_VISIBLE_DEVICES=\1", first).group(1)
        intervals[cls] = _interval(tmp_path / f"results/smoke/runs/{spec}/digits/oecl/{cls}/seed0")
    overlapping = [(a, b) for a in range(4) for b in range(a + 1, 4)
                   if intervals[a][0] < intervals[b][1] and intervals[b][0] < intervals[a][1]]
    assert overlapping, f"no two jobs ran at once: {intervals}"
    assert all(gpus[a] != gpus[b] for a, b in overlapping), (gpus, overlapping)
    events = sorted([(start, 1) for start, _ in intervals.values()] + [(end, -1) for _, end in intervals.values()])
    running = [sum(step for _, step in events[:k + 1]) for k in range(len(events))]
    assert max(running) <= 3, f"more jobs at once than the cap of three GPUs: {intervals}"
