"""How much slower a 1-epoch smoke training job is than `import torch` alone (issue 17, jobs that start fast).

Runs, in turn (A B A B ...), `python -c "import torch"` and
`python -m oecl_core train --preset smoke --dataset digits --method oecl --cls 0 --seed 0 --epochs 1 --out TMP`
(TMP a fresh folder each time), both with this checkout first on PYTHONPATH, and prints the median wall time of
each, the ratio of the medians and the median of the pair-by-pair ratios (pairs keep the ratio meaningful when
the machine's speed drifts). A figure, not a test: timings depend on the machine.

    python tools/startup_bench.py --runs 7
    python tools/startup_bench.py --runs 5 -- --method simclr   # arguments after -- go to the training job
    OMP_NUM_THREADS=1 python tools/startup_bench.py             # as the pipeline runs smoke jobs (threads: 1)
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOB = ["-m", "oecl_core", "train", "--preset", "smoke", "--dataset", "digits", "--benchmark", "one_vs_rest",
       "--method", "oecl", "--cls", "0", "--seed", "0", "--epochs", "1"]


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    # cwd: `python -m` puts the current folder first on sys.path, ahead of PYTHONPATH
    done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stderr}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed pairs (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed pairs first (default 1)")
    parser.add_argument("--python", default=sys.executable, help="interpreter (default: this one)")
    parser.add_argument("job_args", nargs="*", help="extra arguments of the training job (after --)")
    args = parser.parse_args(argv)
    # this checkout, not an installed copy of the package
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    bare, job = [], []
    with tempfile.TemporaryDirectory(prefix="startup_bench_") as tmp:
        for i in range(args.warmup + args.runs):
            t_bare = timed([args.python, "-c", "import torch"], env)
            t_job = timed([args.python, *JOB, *args.job_args, "--out", str(Path(tmp) / f"run{i}")], env)
            if i >= args.warmup:
                bare.append(t_bare)
                job.append(t_job)
                print(f"pair {i - args.warmup + 1}: import torch {t_bare:.2f} s, job {t_job:.2f} s, "
                      f"x{t_job / t_bare:.2f}", flush=True)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"OMP_NUM_THREADS={threads}; median of {args.runs}: import torch {statistics.median(bare):.2f} s "
          f"(min {min(bare):.2f}, max {max(bare):.2f}); job {statistics.median(job):.2f} s "
          f"(min {min(job):.2f}, max {max(job):.2f})")
    print(f"ratio of medians x{statistics.median(job) / statistics.median(bare):.2f}; median pair ratio "
          f"x{statistics.median(j / b for j, b in zip(job, bare)):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
