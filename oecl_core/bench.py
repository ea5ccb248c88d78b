"""Throughput benchmark (a script that prints figures, not a test): `python -m oecl_core.bench`.

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
bounds the whole bench (110 s by default on a GPU): before each figure its time is estimated from the default step's
measured time (module constants below) and a figure that would not fit is skipped. Scoring forwards are capped by
resources.max_forward_views (the largest activation below 2^31 elements: 32-bit CUDA indexing).
"""
from __future__ import annotations

import argparse
import resource
import time

import torch

from .augment import SimCLRAugment
from .device import autocast, resolve_device
from .methods import get_method
from .models import build_model
from .optim import LARS, build_optimizer
from .resources import max_forward_views
from .scores import feature_stats
from .step_graph import WARMUP_STEPS as GRAPH_WARMUP_STEPS, GraphedStep
from .train import training_step

# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets, matched against
# torch.cuda.get_device_name in order (the first name fragment found wins).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM5 (the name reads e.g. "NVIDIA H100 80GB HBM3")
    ("A100", 312.0),
    ("L40S", 362.0),
)
SWITCHES = ("bf16", "channels_last", "compile", "foreach_lars", "cuda_graphs")


def peak_bf16_tflops(device_name: str) -> float | None:
    for fragment, tflops in PEAK_BF16_TFLOPS:
        if fragment.lower() in device_name.lower():
            return tflops
    return None


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_bytes(device) -> int:
    """Peak memory: the CUDA allocator's peak since the last reset, or on the CPU the process's resident-set high-water
    mark (it never goes down, so on the CPU it bounds every figure measured so far)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _views_per_second(step, steps: int, warmup: int, device, budget=None, step_s: float = 0.0) -> tuple[float, int]:
    """Calls step() (which returns the number of views it forwarded) warmup + steps times; times the last steps.
    With a budget, stops timing (after one step at least) once another step of step_s seconds would not fit (no
    synchronisation per step: the figure stays that of back-to-back steps). Returns (views/s, steps timed)."""
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    n_views = done = 0
    while done < steps and (done == 0 or budget is None or budget.fits(step_s)):
        n_views += step()
        done += 1
    _sync(device)
    return n_views / (time.perf_counter() - t0), done


class Budget:
    """What is left of --budget-seconds (no bound without it)."""

    def __init__(self, seconds: float | None):
        self.deadline = None if seconds is None else time.perf_counter() + seconds

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.perf_counter()

    def fits(self, estimate_s: float) -> bool:
        return self.left() > estimate_s


def compile_unavailable(device) -> str | None:
    """Why torch.compile cannot work here, or None: inductor writes C++ (CPU code and its wrappers) that a C compiler
    builds against Python.h, and on CUDA generates triton kernels."""
    import shutil
    import sysconfig
    from pathlib import Path

    if not any(shutil.which(c) for c in ("cc", "gcc", "c++", "g++", "clang")):
        return "no C compiler (cc, gcc, c++) on PATH"
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").is_file():
        return f"no Python.h in {include} (the python3-dev headers)"
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except Exception as err:  # an ImportError, or a broken install
            return f"triton does not import ({type(err).__name__}: {err})"
    return None


def synthetic_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images (low-frequency noise, upsampled) so that crops and colour ops do real work."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, size // 4), max(2, size // 4), generator=g)
    return (torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear") * 255).to(torch.uint8)


def _model(size: int, width: float, device, channels_last: bool):
    torch.manual_seed(0)
    model = build_model("cifar" if size < 64 else "imagenet", width).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _lars(model, per_parameter: bool):
    """LARS as the paper preset runs it (lars_csi). per_parameter: one group per tensor, so the step launches one
    kernel sequence per parameter, as the per-parameter Python loop it replaced did."""
    if not per_parameter:
        return build_optimizer(model, "lars_csi", 0.1, 0.9, 1e-6)
    return LARS([{"params": [p]} for p in model.parameters()], lr=0.1, momentum=0.9, weight_decay=1e-6)


def make_step(model, optimizer, images, oe, batch, device, precision="auto", channels_last=None, graphed=False):
    """A step function over random global batches of the uint8 images on the device: returns views forwarded.
    graphed: the step recorded as a CUDA graph and replayed (step_graph.GraphedStep, as --cuda-graphs trains)."""
    method, augment = get_method("oecl"), SimCLRAugment(output_size=images.shape[-1])
    gen = torch.Generator(device=device).manual_seed(0)
    graph = GraphedStep(model, method, optimizer, augment, gen, precision) if graphed else None

    def step():
        idx = torch.randint(0, len(images), (batch,), device=device, generator=gen)
        oe_idx = torch.randint(0, len(oe), (batch,), device=device, generator=gen)
        if graph is not None:
            return graph(images[idx], oe[oe_idx], 1.0, 0.5)[1]
        return training_step(model, method, optimizer, augment, gen, images[idx], oe[oe_idx], 1.0, 0.5,
                             precision=precision, channels_last=channels_last)[1]

    return step


def step_flops(step) -> int:
    """FLOPs of one training step (convolutions and matrix products of forward and backward, as
    torch.utils.flop_counter counts them; the augmentation and the optimiser are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def optimizer_step_ms(model, per_parameter: bool, device, repeats: int = 20) -> float:
    """Milliseconds per LARS step alone, with gradients in place (the time the fused kernels save)."""
    opt = _lars(model, per_parameter)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    opt.step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        opt.step()
    _sync(device)
    return 1000 * (time.perf_counter() - t0) / repeats


class _PILPairs(torch.utils.data.Dataset):
    """Two independently augmented views of each image, decoded and transformed one by one with PIL."""

    def __init__(self, images: torch.Tensor, size: int):
        from PIL import Image
        from torchvision import transforms as T

        self.pil = [Image.fromarray(im.permute(1, 2, 0).numpy()) for im in images]
        self.transform = T.Compose([
            T.RandomResizedCrop(size, scale=(0.08, 1.0)), T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(p=0.2), T.ToTensor(),
        ])

    def __len__(self):
        return len(self.pil)

    def __getitem__(self, i):
        return self.transform(self.pil[i]), self.transform(self.pil[i])


def bench_pil(model, optimizer, images, oe, batch, steps, device, workers, warmup=2, budget=None,
              step_s: float = 0.0) -> tuple[float, int]:
    """(views/s, steps timed) of the per-sample PIL pipeline; with a budget, the timing stops where it would not fit
    (each step estimated as long as the last warm-up step, or step_s without one)."""
    from .losses import oecl_loss

    def loader(data):
        sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=batch * (warmup + steps))
        return iter(torch.utils.data.DataLoader(_PILPairs(data, images.shape[-1]), batch_size=batch, sampler=sampler,
                                                num_workers=workers, pin_memory=device.type == "cuda", drop_last=True))

    id_loader, oe_loader = loader(images), loader(oe)

    def step():
        (a, b), (c, d) = next(id_loader), next(oe_loader)
        inputs = torch.cat([a, b, c, d]).to(device, non_blocking=True)
        if device.type == "cuda":
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            z = model(inputs).float()
        loss = oecl_loss(z[:batch], z[batch:2 * batch], z[2 * batch:], 1.0, 0.5)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(inputs)

    for _ in range(warmup):
        t0 = time.perf_counter()
        step()
        _sync(device)
        step_s = time.perf_counter() - t0
    return _views_per_second(step, steps, 0, device, budget, step_s)


def bench_scoring(model, images, n_aug, device, forward_batch: int, batch: int = 256) -> float:
    """Scoring views/s: 1 clean + n_aug augmented views per image, forward_batch views per forward pass."""
    augment = SimCLRAugment(output_size=images.shape[-1])
    batch = min(batch, len(images))
    feature_stats(model, images[:batch], augment, n_aug=1, batch_size=batch, forward_batch=forward_batch)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    feature_stats(model, images, augment, n_aug=n_aug, batch_size=batch, forward_batch=forward_batch)
    _sync(device)
    return len(images) * (n_aug + 1) / (time.perf_counter() - t0)


# The budget checks a figure against an estimate before it runs. A figure not yet measured is estimated from the
# default step's measured time t, by these guesses (meant to err long):
COMPILE_S = 60.0  # inductor compiling ResNet-18's forward and backward: tens of seconds, more on a cold cache
SLOWER_VARIANT = 3.0  # a variant's step (float32 instead of bf16 on a GPU, say) takes at most 3 t
PIL_STEP = 10.0  # a step fed by the per-sample PIL pipeline: at most 10 t, after PIL_START_S for the workers' start
PIL_START_S = 5.0
FLOP_COUNT_STEP = 3.0  # a step under FlopCounterMode (Python dispatch per operator): at most 3 t
LARS_REPEATS = 10  # timed LARS steps alone, each at most t / 2
SCORE_VIEW = 2.0  # a scoring view: forward only, but its augmentation dominates on the CPU (1.75 t per view there)


class _Stop(BaseException):
    """SIGTERM asked the bench to stop (a BaseException: a figure's `except Exception` does not swallow it)."""


def _raise_stop(signum, _frame):
    raise _Stop(signum)


def _why(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:300] if lines else ''}"


class Recorder:
    """The report, and its JSON rewritten (atomically) after every figure: a bench killed midway leaves every figure
    measured so far, the figures done, those skipped and why, and, where it stopped, why."""

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
            self.skip(name, f"failed: {_why(err)}")
            return False
        self.done(name)
        return True


def bench_size(size: int, args, device, rec: Recorder) -> dict:
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

    for key, (label, precision, channels_last, compiled, per_parameter, graphed) in variants.items():
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
            model = _model(size, args.width, device, cl)
            step = make_step(torch.compile(model) if compiled else model, _lars(model, per_parameter), images, oe,
                             batch, device, precision, cl, graphed)
            _reset_peak(device)
            t0 = time.perf_counter()
            # the first step of a compiled network compiles it; a graphed step records its graph after its eager ones
            for i in range(max(1, args.warmup, (GRAPH_WARMUP_STEPS + 1) * graphed)):
                if i and not budget.fits(step_s[key]):
                    break
                t1 = time.perf_counter()
                step()
                _sync(device)
                step_s[key] = time.perf_counter() - t1
        except Exception as err:
            if key == "default":
                raise
            skip_variant(key, f"failed in its first steps: {_why(err)}")
            if compiled:
                torch._dynamo.reset()
            continue
        steps[key], models[key], peaks[key] = step, model, _peak_bytes(device)
        if compiled:
            out["compile_and_warmup_s"] = time.perf_counter() - t0
            print(f"  compiling and {max(1, args.warmup)} warm-up steps: {out['compile_and_warmup_s']:.0f} s")

    rates = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key in list(steps):
            if not budget.fits(args.steps * step_s[key] + (0.0 if key == "default" else reserve())):
                continue
            _reset_peak(device)
            try:
                rate, _n = _views_per_second(steps[key], args.steps, 0, device, budget, step_s[key])
            except Exception as err:  # a variant failing later (a recompilation, say): dropped, the others go on
                if key == "default":
                    raise
                skip_variant(key, f"failed while timed: {_why(err)}")
                del steps[key], rates[key]
                continue
            rates[key].append(rate)
            step_s[key] = views / rate
            peaks[key] = max(peaks[key], _peak_bytes(device))
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
        opt_model = _model(size, args.width, device, cuda)
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
            _reset_peak(device)
            rate_s = bench_scoring(model, score_images[:n], args.n_aug, device, fb)
            per_view = 1 / rate_s
            out["score_views_per_s_by_forward_batch"][fb] = rate_s
            out["score_images_by_forward_batch"][fb] = n
            if fb == default_fb:
                out["score_views_per_s"] = rate_s
            capped = f" (capped from {args.large_score_batch})" if fb == cap != args.large_score_batch else ""
            print(f"  score  {n} images x (1 clean + {args.n_aug} augmented), {fb:>6} views per forward{capped}: "
                  f"{rate_s:10.1f} views/s   peak {_peak_bytes(device) / 2**20:7.0f} MiB")

        rec.figure(name, 0.0, score)
    model.train()

    if not args.no_pil:  # last: the slowest figure, and the one the planner needs least
        workers = args.workers if args.workers is not None else torch.get_num_threads()
        pil_steps, pil_step_s = args.steps * args.rounds, PIL_STEP * t

        def pil():
            pil_model = _model(size, args.width, device, cuda)
            r, n = bench_pil(pil_model, _lars(pil_model, False), images.cpu(), oe.cpu(), batch, pil_steps, device,
                             workers, args.warmup, budget, pil_step_s)
            print(f"  train  {f'per-sample PIL DataLoader ({workers} workers)':<44} {r:10.1f} views/s ({n} steps)")
            print(f"  engine step / PIL pipeline: x{default_rate / r:.2f}")
            out.update(pil_views_per_s=r, pil_workers=workers, pil_steps=n, engine_over_pil=default_rate / r)

        rec.figure(f"{size}/pil", PIL_START_S + (args.warmup + 1) * pil_step_s, pil)
    return out


def main(argv=None) -> dict:
    """The bench from the command line's arguments (argv: a list, as from Python); returns the report."""
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(prog="python -m oecl_core.bench", description=__doc__.split("\n")[0])
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
                   help="a bound on the whole bench: a figure whose estimate does not fit what is left is skipped "
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
                bench_size(size, args, device, rec)
            except Exception as err:  # the default step failed: this size has no figures; the next may
                rec.skip(f"{size}", f"failed: {_why(err)}")
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
