"""Gives a pipeline job GPUs of its own, then runs its command in its place:

    python -m oecl_core.gpu_slots N -- python -m oecl_core run ...

Snakemake's global `gpu` resource (profiles/local) caps how many GPUs the running jobs use together, but hands a job
no GPU number, and every job's `--device auto` would take cuda:0. This launcher takes N GPUs nobody else holds from
the pool, sets CUDA_VISIBLE_DEVICES to them (the job sees them as cuda:0 ... cuda:N-1; a torchrun job's processes
each take cuda:LOCAL_RANK), prints one line to stderr (the job's log) naming them, and execs the command.

* The pool: the ids in CUDA_VISIBLE_DEVICES where it is set (SLURM sets it to a job's own GPUs, in an sbatch job and
  inside salloc; a user may set it to keep some GPUs free), else the machine's GPUs (`nvidia-smi -L`, else
  /proc/driver/nvidia/gpus). No GPU (a CPU machine, CUDA_VISIBLE_DEVICES="") runs the command unchanged.
* A GPU is held by an exclusive flock on its lock file in a node-local folder ($OECL_GPU_LOCKS, by default
  oecl-gpu-slots in the temporary folder, shared by the machine's users). The file's name holds the host and, inside a
  SLURM job, the job id: two SLURM jobs on one node may both see their own GPU as "0".
* The lock's file descriptor is inherited across exec: the command keeps this process's id (it stays Snakemake's own
  child, signals reach it; rules/train.smk) and holds its GPUs for exactly its life. The kernel releases them when it
  ends, however it ends (kill -9 included), and with it any child that inherited the descriptor.
* All taken: it waits (a line in the log when it starts waiting, then every few minutes) and takes the first that
  frees. Asking for more GPUs than the pool has is an error (exit 2).

No torch here: it runs before every GPU job, and torch's import takes seconds.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

LOCKS_ENV = "OECL_GPU_LOCKS"
STOPPED_EXIT = 75  # as oecl_core.train.STOPPED_EXIT: stopped by a signal before any work, a retry starts it again
POLL_S = 0.5
NOTE_EVERY_S = 300.0
PREFIX = "oecl gpu_slots:"


def machine_gpus(proc_dir: str = "/proc/driver/nvidia/gpus", nvidia_smi: str = "nvidia-smi") -> list[str]:
    """This machine's GPUs as CUDA numbers them ("0", "1", ...); [] without an NVIDIA driver."""
    try:
        out = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            count = sum(1 for line in out.stdout.splitlines() if re.match(r"GPU \d+:", line))
            return [str(i) for i in range(count)]
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        return [str(i) for i in range(len(os.listdir(proc_dir)))]
    except OSError:
        return []


def pool(environ=None) -> tuple[list[str], str]:
    """The GPUs this job may take from, and where they came from."""
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return list(dict.fromkeys(g.strip() for g in visible.split(",") if g.strip())), "CUDA_VISIBLE_DEVICES"
    return machine_gpus(), "this machine"


def lock_dir(environ=None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(LOCKS_ENV) or os.path.join(tempfile.gettempdir(), "oecl-gpu-slots")


def lock_name(gpu: str, environ=None) -> str:
    """The lock file of one GPU: per host (should the folder be shared) and per SLURM job (each may see its GPUs
    from 0)."""
    environ = os.environ if environ is None else environ
    job = environ.get("SLURM_JOB_ID")
    parts = [socket.gethostname()] + ([f"slurm{job}"] if job else []) + [f"gpu{gpu}"]
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts)) + ".lock"


def _open_locks(gpus: list[str], directory: str, environ) -> list[int]:
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
        if LOCKS_ENV not in environ:
            try:
                os.chmod(directory, 0o1777)  # the machine's users share its GPUs: anyone may add a lock file
            except OSError:
                pass
    fds = []
    for gpu in gpus:
        path = os.path.join(directory, lock_name(gpu, environ))
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except PermissionError:  # another user's lock file: a read-only descriptor locks it as well
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        fds.append(fd)
    return fds


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def try_take(fds: list[int], n: int) -> tuple[list[int] | None, list[int]]:
    """Locks n free GPUs, the lowest first: (their indices, or None where fewer are free and nothing is held; the
    indices of the GPUs that were free)."""
    free = []
    for i, fd in enumerate(fds):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                continue
            raise
        free.append(i)
        if len(free) == n:
            return free, free
    for i in free:
        fcntl.flock(fds[i], fcntl.LOCK_UN)
    return None, free


def acquire(n: int, environ=None, poll_s: float = POLL_S, note_every_s: float = NOTE_EVERY_S,
            log=sys.stderr) -> tuple[list[str], list[int], str]:
    """Waits for n free GPUs of the pool and locks them: (their ids, their locked descriptors, the pool's source).
    No GPU in the pool: ([], [], source)."""
    environ = os.environ if environ is None else environ
    gpus, source = pool(environ)
    if not gpus:
        return [], [], source
    if n > len(gpus):
        raise ValueError(f"this job needs {n} GPUs but {source} has only {len(gpus)} ({','.join(gpus)}): give the "
                         f"job fewer (config.yaml train_resources gpu) or run it where there are more")
    fds = _open_locks(gpus, lock_dir(environ), environ)
    started = time.monotonic()
    noted = None
    while True:
        taken, free = try_take(fds, n)
        if taken is not None:
            for i in taken:
                if _writable(fds[i]):
                    os.ftruncate(fds[i], 0)
                    os.pwrite(fds[i], f"pid {os.getpid()}\n".encode(), 0)
            for i, fd in enumerate(fds):
                if i not in taken:
                    os.close(fd)
            return [gpus[i] for i in taken], [fds[i] for i in taken], source
        waited = time.monotonic() - started
        if noted is None or waited - noted >= note_every_s:
            busy = [f"{gpus[i]} ({_holder(fd) or 'in use'})" for i, fd in enumerate(fds) if i not in free]
            print(f"{PREFIX} {len(free)} of the {len(gpus)} GPUs of {source} free, this job needs {n}; waiting "
                  f"{'' if noted is None else f'({waited:.0f} s so far) '}for a GPU to free: {', '.join(busy)}",
                  file=log, flush=True)
            noted = waited
        time.sleep(poll_s)


def _writable(fd: int) -> bool:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR


def command(gpus: int, launcher: str) -> str:
    """The shell command a pipeline job starts `-m oecl_core ...` with: its launcher (python or torchrun,
    oecl_core.distributed.launcher) behind this one where the job has GPUs, unchanged where it has none."""
    return launcher if gpus <= 0 else f"python -m oecl_core.gpu_slots {gpus} -- {launcher}"


def _stop(signum, frame):
    print(f"{PREFIX} stopped by {signal.Signals(signum).name} while waiting for a GPU; nothing ran", file=sys.stderr,
          flush=True)
    os._exit(STOPPED_EXIT)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit() or int(argv[0]) < 1:
        print("usage: python -m oecl_core.gpu_slots N -- COMMAND [ARG ...]   (N >= 1 GPUs)", file=sys.stderr)
        return 2
    n, cmd = int(argv[0]), argv[2:]
    # a wait stopped by a signal exits as a stopped run; a signal ignored here (Snakemake's SIGUSR1 in a SLURM job)
    # stays ignored
    before = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
              if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        ids, fds, source = acquire(n)
    except ValueError as e:
        print(f"{PREFIX} {e}", file=sys.stderr, flush=True)
        return 2
    except OSError as e:
        print(f"{PREFIX} cannot use the GPU lock folder {lock_dir()}: {e}; set {LOCKS_ENV} to a folder on this "
              "machine that you can write", file=sys.stderr, flush=True)
        return 2
    for sig, handler in before.items():  # the command starts with the dispositions this process was given
        signal.signal(sig, handler)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; the command gets the defaults back
        signal.signal(sig, signal.SIG_DFL)
    if ids:
        for fd in fds:
            os.set_inheritable(fd, True)  # the command holds the lock until it ends
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
        print(f"{PREFIX} GPU{'s' if n > 1 else ''} {','.join(ids)} of {source} for this job (pid {os.getpid()}): "
              f"CUDA_VISIBLE_DEVICES={','.join(ids)}", file=sys.stderr, flush=True)
    else:
        print(f"{PREFIX} no GPU in {source}: the job runs as it is", file=sys.stderr, flush=True)
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        print(f"{PREFIX} cannot run {cmd[0]!r}: {e}", file=sys.stderr, flush=True)
        return 127


if __name__ == "__main__":
    sys.exit(main())
