"""oecl_core.gpu_slots: concurrent jobs get GPUs of their own from a pool (simulated here through
CUDA_VISIBLE_DEVICES on the CPU), wait when all are taken, and free them however they end."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oecl_core import gpu_slots

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
