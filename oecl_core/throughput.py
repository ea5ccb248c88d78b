"""Training and scoring throughput (a script that prints figures, not a test): `python -m oecl_core.throughput`.

For each image size (32 px: CIFAR stem; 224 px: ImageNet stem), on whatever device is present:
  1. training views/s and peak memory of the engine's OECL step (data on the device as uint8, batched tensor
     augmentations, one forward over ID and OE views, LARS as the paper preset runs it);
  2. the speed-up of each switch of that step: bf16 autocast against float32, channels-last inputs, torch.compile,
     the whole step as one CUDA graph (CUDA only),
     LARS through multi-tensor kernels against one kernel sequence per parameter;
  3. the same model, loss and optimiser fed by a per-sample torchvision / PIL DataLoader pipeline (the public code's
     way: PIL transforms per image in worker processes), same batch, and as many workers as the step has threads;
  4. scoring views/s (1 clean + n_aug augmented views per image), at the default and a large forward batch;
  5. FLOPs of the step's forward + backward (torch.utils.flop_counter) and the achieved FLOP rate; on a GPU, its
     fraction of the device's dense bf16 peak (a small table of known devices, or --peak-tflops).
"Views" counts every image forwarded: a step with B ID and B OE images forwards 4B views. --json writes the figures
for `python -m oecl_core plan --bench-json`.

Made for short GPU windows: the JSON is rewritten (atomically) after every figure, with the figures done, those
skipped and why, and, on SIGTERM or Ctrl-C, that it stopped; a switch that cannot run here (torch.compile without a C
compiler, Python.h or, on CUDA, triton), or that fails in its first steps, is skipped, not fatal; --budget-seconds
bounds the whole script (110 s by default on a GPU): before each figure its time is estimated from the default step's
measured time (the constants of throughput_figures) and a figure that would not fit is skipped. Scoring forwards are
capped by resources.max_forward_views (the largest activation below 2^31 elements: 32-bit CUDA indexing).

This module is the command line, the budget and the JSON; throughput_figures measures the figures of one image size
from the timed steps of throughput_steps.
"""
from __future__ import annotations

import argparse

import torch

from .device import resolve_device
from .throughput_figures import Budget, Recorder, size_figures, why_failed
from .throughput_steps import peak_bf16_tflops, synthetic_images  # noqa: F401 (imported from here: window.py)

SWITCHES = ("bf16", "channels_last", "compile", "foreach_lars", "cuda_graphs")


class _Stop(BaseException):
    """SIGTERM asked the script to stop (a BaseException: a figure's `except Exception` does not swallow it)."""


def _raise_stop(signum, _frame):
    raise _Stop(signum)


def main(argv=None) -> dict:
    """The throughput figures from the command line's arguments (argv: a list, as from Python); returns the report."""
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(prog="python -m oecl_core.throughput", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 224], help="image sizes (< 64 px: the CIFAR stem)")
    p.add_argument("--width", type=float, default=1.0 if cuda else 0.25, help="ResNet-18 width multiplier")
    p.add_argument("--batch", type=int, default=None, help="ID images per step, and as many OE images "
                   "(default: 256 on a GPU; 32 at 32 px, 8 at 224 px on the CPU)")
    p.add_argument("--steps", type=int, default=5 if cuda else 2, help="timed steps per round and variant")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each figure is the median over them")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each variant first")
    p.add_argument("--switches", nargs="*", default=list(SWITCHES), choices=SWITCHES,
                   help="switches to time against the default step (none: only the default step)")
    p.add_argument("--workers", type=int, default=None, help="PIL DataLoader workers (default: torch's thread count)")
    p.add_argument("--no-pil", action="store_true", help="skip the per-sample PIL pipeline")
    p.add_argument("--n-aug", type=int, default=32)
    p.add_argument("--score-images", type=int, default=None)
    p.add_argument("--large-score-batch", type=int, default=8192,
                   help="the large scoring forward batch (views; capped by resources.max_forward_views)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak, if not in the table")
    p.add_argument("--budget-seconds", type=float, default=110.0 if cuda else None,
                   help="a bound on the whole script: a figure whose estimate does not fit what is left is skipped "
                        "(and recorded so in the JSON); default: 110 on a GPU, no bound on the CPU; inf: no bound")
    p.add_argument("--json", default=None, help="rewritten after every figure (for python -m oecl_core plan "
                   "--bench-json)")
    args = p.parse_args(None if argv is None else [str(a) for a in argv])  # a caller may pass Paths and numbers
    if args.steps < 1 or args.rounds < 1 or args.warmup < 0 or (args.batch is not None and args.batch < 2):
        p.error("--steps and --rounds must be >= 1, --warmup >= 0 and --batch >= 2")

    if args.budget_seconds == float("inf"):
        args.budget_seconds = None
    budget = Budget(args.budget_seconds)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}"
          + (f"; budget {args.budget_seconds:g} s" if args.budget_seconds is not None else ""))
    report = {"device": name, "torch": torch.__version__, "width": args.width, "n_aug": args.n_aug, "sizes": {},
              "budget_seconds": args.budget_seconds, "argv": None if argv is None else [str(a) for a in argv]}
    rec = Recorder(report, args.json, budget)
    rec.save()
    import signal
    import threading

    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_stop) if on_main else None  # `timeout` kills with SIGTERM
    try:
        for size in args.sizes:
            if not budget.fits(0.0):
                rec.skip(f"{size}", rec.over_budget(0.0))
                continue
            try:
                size_figures(size, args, device, rec)
            except Exception as err:  # the default step failed: this size has no figures; the next may
                rec.skip(f"{size}", f"failed: {why_failed(err)}")
        report["finished"] = True
    except (_Stop, KeyboardInterrupt) as err:
        report["stopped"] = "SIGTERM" if isinstance(err, _Stop) else "interrupted (KeyboardInterrupt)"
        print(f"\nstopped: {report['stopped']}")
        raise SystemExit(143 if isinstance(err, _Stop) else 130) from None
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)
        rec.save()
        if args.json:
            print(f"\nwrote {args.json} ({len(report['done'])} figures done, {len(report['skipped'])} skipped)")
    return report


if __name__ == "__main__":
    main()
