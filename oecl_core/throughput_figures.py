"""Every throughput figure of one image size (oecl_core/throughput.py runs it per size): the step variants timed
in interleaved rounds, the switches' speed-ups, FLOPs, LARS alone, scoring and the PIL pipeline, each checked
against what is left of the budget before it runs."""
from __future__ import annotations

import time

import torch

from .forward_cap import max_forward_views
from .step_graph import WARMUP_STEPS as GRAPH_WARMUP_STEPS
from .throughput_steps import (compile_unavailable, lars_optimizer, make_step, optimizer_step_ms, peak_bf16_tflops,
                               peak_bytes, pil_throughput, reset_peak, scoring_throughput, step_flops, step_model,
                               sync_device, synthetic_images, views_per_second)

# The budget checks a figure against an estimate before it runs. A figure not yet measured is estimated from the
# default step's measured time t, by these guesses (meant to err long):
COMPILE_S = 60.0  # inductor compiling ResNet-18's forward and backward: tens of seconds, more on a cold cache
SLOWER_VARIANT = 3.0  # a variant's step (float32 instead of bf16 on a GPU, say) takes at most 3 t
PIL_STEP = 10.0  # a step fed by the per-sample PIL pipeline: at most 10 t, after PIL_START_S for the workers' start
PIL_START_S = 5.0
FLOP_COUNT_STEP = 3.0  # a step under FlopCounterMode (Python dispatch per operator): at most 3 t
LARS_REPEATS = 10  # timed LARS steps alone, each at most t / 2
SCORE_VIEW = 2.0  # a scoring view: forward only, but its augmentation dominates on the CPU (1.75 t per view there)



class Budget:
    """What is left of --budget-seconds (no bound without it)."""

    def __init__(self, seconds: float | None):
        self.deadline = None if seconds is None else time.perf_counter() + seconds

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.perf_counter()

    def fits(self, estimate_s: float) -> bool:
        return self.left() > estimate_s


class Recorder:
    """The report, and its JSON rewritten (atomically) after every figure: a run killed midway leaves every
    figure measured so far, the figures done, those skipped and why, and, where it stopped, why."""

    def __init__(self, report: dict, path, budget: Budget):
        from .io import write_json

        self.report, self.path, self.budget, self._write = report, path, budget, write_json
        report.update(done=[], skipped={}, stopped=None, finished=False)
        self.t0 = time.perf_counter()

    def save(self):
        self.report["elapsed_s"] = round(time.perf_counter() - self.t0, 2)
        if self.path:
            self._write(self.path, self.report)

    def done(self, figure: str):
        self.report["done"].append(figure)
        self.save()

    def skip(self, figure: str, reason: str) -> str:
        self.report["skipped"][figure] = reason
        print(f"  skipped {figure}: {reason}")
        self.save()
        return reason

    def over_budget(self, estimate_s: float) -> str:
        return f"budget: {max(0.0, self.budget.left()):.1f} s left, about {estimate_s:.1f} s needed"

    def figure(self, name: str, estimate_s: float, fn) -> bool:
        """Runs fn() if its estimate fits the budget; a failure is recorded and skipped, not fatal."""
        if not self.budget.fits(estimate_s):
            self.skip(name, self.over_budget(estimate_s))
            return False
        try:
            fn()
        except Exception as err:
            self.skip(name, f"failed: {why_failed(err)}")
            return False
        self.done(name)
        return True


def why_failed(err: Exception) -> str:
    """The error's type and first line, for the JSON's reasons (an inductor error runs to pages)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:300] if lines else ''}"


def size_figures(size: int, args, device, rec: Recorder) -> dict:
    """Every figure for one image size; prints them as they come and records each in rec (the JSON). The step
    variants are timed in interleaved rounds (each round times every variant for --steps steps) and each variant's
    rate is its median over the rounds, so a load that comes and goes on a shared machine does not favour whichever
    variant ran at a quiet moment. A switch that cannot run here (torch.compile without a C compiler), fails in its
    first steps, or does not fit the budget is recorded as skipped, and the others go on."""
    cuda, budget = device.type == "cuda", rec.budget
    batch = args.batch or (256 if cuda else (32 if size < 64 else 8))
    views = 4 * batch
    images, oe = synthetic_images(4 * batch, size, 0).to(device), synthetic_images(4 * batch, size, 1).to(device)
    out = {"size": size, "batch": batch, "views_per_step": views, "rounds": args.rounds}
    rec.report["sizes"][str(size)] = out  # saved with every figure, complete or not
    print(f"\n{size} px: ResNet-18 ({'cifar' if size < 64 else 'imagenet'} stem) x{args.width} width; OECL step with "
          f"{batch} ID + {batch} OE images = {views} views; median over {args.rounds} interleaved rounds of "
          f"{args.steps} timed steps, after {args.warmup} warm-up steps")

    # (label, precision, channels_last, compiled, per-parameter LARS, graphed); the default step first, compile
    # (long) last
    variants = {"default": ("engine step (defaults)", "auto", None, False, False, False)}
    if "bf16" in args.switches:  # the default is bf16 on CUDA and float32 on the CPU: time the other one
        variants["bf16_other"] = ("float32" if cuda else "bf16 autocast", "fp32" if cuda else "bf16", None, False,
                                  False, False)
    if "channels_last" in args.switches:
        variants["channels_last_other"] = ("channels-last " + ("off" if cuda else "on"), "auto", not cuda, False, False,
                                           False)
    if "foreach_lars" in args.switches:
        variants["lars_per_parameter"] = ("LARS one kernel sequence per parameter", "auto", None, False, True, False)
    if "cuda_graphs" in args.switches:
        variants["cuda_graphs"] = ("whole step as one CUDA graph", "auto", None, False, False, True)
    if "compile" in args.switches:
        variants["compile"] = ("torch.compile", "auto", None, True, False, False)
    switch_of = {"bf16_other": "bf16", "channels_last_other": "channels_last", "compile": "compile",
                 "lars_per_parameter": "foreach_lars", "cuda_graphs": "cuda_graphs"}
    switches = out["switches"] = {}

    def skip_variant(key, reason):
        rec.skip(f"{size}/train/{key}", reason)
        if key != "default":
            switches[switch_of[key]] = {"skipped": reason}

    steps, models, peaks, step_s = {}, {}, {}, {}
    n_score = args.score_images or (2048 if cuda else (256 if size < 64 else 32))
    n_min = min(256, n_score)  # the fewest images a scoring figure scores: one batch

    def reserve():
        """Time kept for the default scoring figure (what plan reads beside the default step) over the figures
        before it: one batch of images at the default step's time per view."""
        return SCORE_VIEW * step_s.get("default", 0.0) / views * n_min * (args.n_aug + 3)

    for key, (_label, precision, channels_last, compiled, per_parameter, graphed) in variants.items():
        t = step_s.get("default", 0.0)
        estimate = 0.0 if key == "default" else \
            max(1, args.warmup) * SLOWER_VARIANT * t + COMPILE_S * compiled + reserve()
        why = compile_unavailable(device) if compiled else None
        if graphed and not cuda:
            why = "CUDA graphs need a CUDA device"
        if why or not budget.fits(estimate):
            skip_variant(key, why or rec.over_budget(estimate))
            continue
        try:
            cl = cuda if channels_last is None else channels_last
            model = step_model(size, args.width, device, cl)
            step = make_step(torch.compile(model) if compiled else model, lars_optimizer(model, per_parameter), images,
                             oe, batch, device, precision, cl, graphed)
            reset_peak(device)
            t0 = time.perf_counter()
            # the first step of a compiled network compiles it; a graphed step records its graph after its eager ones
            for i in range(max(1, args.warmup, (GRAPH_WARMUP_STEPS + 1) * graphed)):
                if i and not budget.fits(step_s[key]):
                    break
                t1 = time.perf_counter()
                step()
                sync_device(device)
                step_s[key] = time.perf_counter() - t1
        except Exception as err:
            if key == "default":
                raise
            skip_variant(key, f"failed in its first steps: {why_failed(err)}")
            if compiled:
                torch._dynamo.reset()
            continue
        steps[key], models[key], peaks[key] = step, model, peak_bytes(device)
        if compiled:
            out["compile_and_warmup_s"] = time.perf_counter() - t0
            print(f"  compiling and {max(1, args.warmup)} warm-up steps: {out['compile_and_warmup_s']:.0f} s")

    rates = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key in list(steps):
            if not budget.fits(args.steps * step_s[key] + (0.0 if key == "default" else reserve())):
                continue
            reset_peak(device)
            try:
                rate, _n = views_per_second(steps[key], args.steps, 0, device, budget, step_s[key])
            except Exception as err:  # a variant failing later (a recompilation, say): dropped, the others go on
                if key == "default":
                    raise
                skip_variant(key, f"failed while timed: {why_failed(err)}")
                del steps[key], rates[key]
                continue
            rates[key].append(rate)
            step_s[key] = views / rate
            peaks[key] = max(peaks[key], peak_bytes(device))
    for key in steps:
        if not rates[key]:
            skip_variant(key, rec.over_budget(args.steps * step_s[key]) + " (no timing round)")
    if not rates.get("default"):
        return out  # every other figure of this size needs the default step's rate
    out["rounds_done"] = {key: len(r) for key, r in rates.items() if r}
    rate = {key: sorted(r)[len(r) // 2] for key, r in rates.items() if r}
    for key in rate:
        spread = f"{min(rates[key]):.1f}-{max(rates[key]):.1f}"
        print(f"  train  {variants[key][0]:<44} {rate[key]:10.1f} views/s (rounds {spread})   "
              f"peak {peaks[key] / 2**20:7.0f} MiB")
    default_rate, t = rate["default"], views / rate["default"]
    out.update(train_views_per_s=default_rate, train_views_per_s_rounds=rates["default"],
               train_peak_bytes=peaks["default"])
    rec.done(f"{size}/train/default")

    cuda_on = {"bf16_other": cuda, "channels_last_other": cuda, "compile": False, "lars_per_parameter": True,
               "cuda_graphs": False}
    for key in rate:  # each switch: its rate on and off; the default step has it on where cuda_on says so
        if key != "default":
            on, off = (default_rate, rate[key]) if cuda_on[key] else (rate[key], default_rate)
            switches[switch_of[key]] = {"on": on, "off": off, "speedup": on / off}
            rec.done(f"{size}/train/{key}")

    def flops():
        n = step_flops(steps["default"])
        achieved = n * default_rate / views / 1e12
        out.update(flops_per_step=n, achieved_tflops=achieved)
        line = f"  FLOPs per step (forward + backward) {n / 1e9:.1f} G; achieved {achieved:.4f} TFLOP/s"
        peak = args.peak_tflops or (peak_bf16_tflops(torch.cuda.get_device_name(device)) if cuda else None)
        if peak:
            out.update(peak_bf16_tflops=peak, fraction_of_peak=achieved / peak)
            line += f" = {100 * out['fraction_of_peak']:.1f}% of the {peak:g} TFLOP/s bf16 peak"
        elif cuda:
            line += " (device not in PEAK_BF16_TFLOPS: give --peak-tflops for the fraction of peak)"
        print(line)

    rec.figure(f"{size}/flops", FLOP_COUNT_STEP * t + reserve(), flops)

    def lars_alone():
        opt_model = step_model(size, args.width, device, cuda)
        fused_ms = optimizer_step_ms(opt_model, False, device, LARS_REPEATS)
        loop_ms = optimizer_step_ms(opt_model, True, device, LARS_REPEATS)
        print(f"  LARS step alone: {fused_ms:.2f} ms multi-tensor, {loop_ms:.2f} ms per parameter "
              f"(x{loop_ms / fused_ms:.2f})")
        switches["foreach_lars"].update(optimizer_ms_on=fused_ms, optimizer_ms_off=loop_ms)

    if "lars_per_parameter" in rate:
        rec.figure(f"{size}/lars_alone", (LARS_REPEATS + 1) * t + reserve(), lars_alone)
    for name, s in switches.items():
        if "speedup" in s:
            print(f"  speed-up of {name:<14} x{s['speedup']:.2f} ({s['on']:.1f} vs {s['off']:.1f} views/s)")

    # scoring: the default forward batch (what plan reads) first; both capped below 32-bit indexing's limit
    model = models["default"].eval()
    cap = max_forward_views(model, size)
    default_fb = min(2048, cap)
    out.update(score_forward_cap=cap, score_images_by_forward_batch={}, score_views_per_s_by_forward_batch={})
    per_view, score_images = SCORE_VIEW * t / views, None
    for fb in [default_fb] + [min(args.large_score_batch, cap)] * (min(args.large_score_batch, cap) != default_fb):
        name, warm = f"{size}/score/{fb}", 2 * n_min
        # as many of the images as fit the budget (all without one); none if fewer than one batch of them
        n = n_score if budget.deadline is None else \
            min(n_score, int((budget.left() / per_view - warm) / (args.n_aug + 1)))
        if n < n_min:
            rec.skip(name, rec.over_budget(per_view * (warm + n_min * (args.n_aug + 1))))
            continue

        def score(fb=fb, n=n):
            nonlocal per_view, score_images
            if score_images is None:
                score_images = synthetic_images(n_score, size, 2).to(device)
            reset_peak(device)
            rate_s = scoring_throughput(model, score_images[:n], args.n_aug, device, fb)
            per_view = 1 / rate_s
            out["score_views_per_s_by_forward_batch"][fb] = rate_s
            out["score_images_by_forward_batch"][fb] = n
            if fb == default_fb:
                out["score_views_per_s"] = rate_s
            capped = f" (capped from {args.large_score_batch})" if fb == cap != args.large_score_batch else ""
            print(f"  score  {n} images x (1 clean + {args.n_aug} augmented), {fb:>6} views per forward{capped}: "
                  f"{rate_s:10.1f} views/s   peak {peak_bytes(device) / 2**20:7.0f} MiB")

        rec.figure(name, 0.0, score)
    model.train()

    if not args.no_pil:  # last: the slowest figure, and the one the planner needs least
        workers = args.workers if args.workers is not None else torch.get_num_threads()
        pil_steps, pil_step_s = args.steps * args.rounds, PIL_STEP * t

        def pil():
            pil_model = step_model(size, args.width, device, cuda)
            r, n = pil_throughput(pil_model, lars_optimizer(pil_model, False), images.cpu(), oe.cpu(), batch, pil_steps,
                                  device, workers, args.warmup, budget, pil_step_s)
            print(f"  train  {f'per-sample PIL DataLoader ({workers} workers)':<44} {r:10.1f} views/s ({n} steps)")
            print(f"  engine step / PIL pipeline: x{default_rate / r:.2f}")
            out.update(pil_views_per_s=r, pil_workers=workers, pil_steps=n, engine_over_pil=default_rate / r)

        rec.figure(f"{size}/pil", PIL_START_S + (args.warmup + 1) * pil_step_s, pil)
    return out
