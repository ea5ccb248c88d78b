"""Throughput benchmark (a script that prints figures, not a test): `python -m oecl_core.bench`.

For each image size (32 px: CIFAR stem; 224 px: ImageNet stem), on whatever device is present:
  1. training views/s and peak memory of the engine's OECL step (data on the device as uint8, batched tensor
     augmentations, one forward over ID and OE views, LARS as the paper preset runs it);
  2. the speed-up of each switch of that step: bf16 autocast against float32, channels-last inputs, torch.compile,
     LARS through multi-tensor kernels against one kernel sequence per parameter;
  3. the same model, loss and optimiser fed by a per-sample torchvision / PIL DataLoader pipeline (the public code's
     way: PIL transforms per image in worker processes), same batch, and as many workers as the step has threads;
  4. scoring views/s (1 clean + n_aug augmented views per image), at the default and a large forward batch;
  5. FLOPs of the step's forward + backward (torch.utils.flop_counter) and the achieved FLOP rate; on a GPU, its
     fraction of the device's dense bf16 peak (a small table of known devices, or --peak-tflops).
"Views" counts every image forwarded: a step with B ID and B OE images forwards 4B views. --json writes the figures
for `python -m oecl_core plan --bench-json`.
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
from .scores import feature_stats
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
SWITCHES = ("bf16", "channels_last", "compile", "foreach_lars")


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


def _views_per_second(step, steps: int, warmup: int, device) -> float:
    """Calls step() (which returns the number of views it forwarded) warmup + steps times; times the last steps."""
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    n_views = sum(step() for _ in range(steps))
    _sync(device)
    return n_views / (time.perf_counter() - t0)


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


def make_step(model, optimizer, images, oe, batch, device, precision="auto", channels_last=None):
    """A step function over random global batches of the uint8 images on the device: returns views forwarded."""
    method, augment = get_method("oecl"), SimCLRAugment(output_size=images.shape[-1])
    gen = torch.Generator(device=device).manual_seed(0)

    def step():
        idx = torch.randint(0, len(images), (batch,), device=device, generator=gen)
        oe_idx = torch.randint(0, len(oe), (batch,), device=device, generator=gen)
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


def bench_pil(model, optimizer, images, oe, batch, steps, device, workers, warmup=2) -> float:
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

    return _views_per_second(step, steps, warmup, device)


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


def bench_size(size: int, args, device) -> dict:
    """Every figure for one image size; prints them as they come. The step variants are timed in interleaved rounds
    (each round times every variant for --steps steps) and each variant's rate is its median over the rounds, so a
    load that comes and goes on a shared machine does not favour whichever variant ran at a quiet moment."""
    cuda = device.type == "cuda"
    batch = args.batch or (256 if cuda else (32 if size < 64 else 8))
    images, oe = synthetic_images(4 * batch, size, 0).to(device), synthetic_images(4 * batch, size, 1).to(device)
    out = {"size": size, "batch": batch, "views_per_step": 4 * batch, "rounds": args.rounds}
    print(f"\n{size} px: ResNet-18 ({'cifar' if size < 64 else 'imagenet'} stem) x{args.width} width; OECL step with "
          f"{batch} ID + {batch} OE images = {4 * batch} views; median over {args.rounds} interleaved rounds of "
          f"{args.steps} timed steps, after {args.warmup} warm-up steps")

    # (label, precision, channels_last, compiled, per-parameter LARS); the default step first
    variants = {"default": ("engine step (defaults)", "auto", None, False, False)}
    if "bf16" in args.switches:  # the default is bf16 on CUDA and float32 on the CPU: time the other one
        variants["bf16_other"] = ("float32" if cuda else "bf16 autocast", "fp32" if cuda else "bf16", None, False, False)
    if "channels_last" in args.switches:
        variants["channels_last_other"] = ("channels-last " + ("off" if cuda else "on"), "auto", not cuda, False, False)
    if "compile" in args.switches:
        variants["compile"] = ("torch.compile", "auto", None, True, False)
    if "foreach_lars" in args.switches:
        variants["lars_per_parameter"] = ("LARS one kernel sequence per parameter", "auto", None, False, True)

    steps, models, peaks = {}, {}, {}
    for key, (label, precision, channels_last, compiled, per_parameter) in variants.items():
        cl = cuda if channels_last is None else channels_last
        model = _model(size, args.width, device, cl)
        net = torch.compile(model) if compiled else model
        steps[key] = make_step(net, _lars(model, per_parameter), images, oe, batch, device, precision, cl)
        models[key] = model
        _reset_peak(device)
        t0 = time.perf_counter()
        for _ in range(max(1, args.warmup)):  # the first step of a compiled network compiles it
            steps[key]()
        _sync(device)
        peaks[key] = _peak_bytes(device)
        if compiled:
            print(f"  compiling and {args.warmup} warm-up steps: {time.perf_counter() - t0:.0f} s")
    rates = {key: [] for key in variants}
    for _ in range(args.rounds):
        for key in variants:
            _reset_peak(device)
            rates[key].append(_views_per_second(steps[key], args.steps, 0, device))
            peaks[key] = max(peaks[key], _peak_bytes(device))
    rate = {key: sorted(r)[len(r) // 2] for key, r in rates.items()}
    for key, (label, *_rest) in variants.items():
        spread = f"{min(rates[key]):.1f}-{max(rates[key]):.1f}"
        print(f"  train  {label:<44} {rate[key]:10.1f} views/s (rounds {spread})   peak {peaks[key] / 2**20:7.0f} MiB")
    default_rate = rate["default"]
    out.update(train_views_per_s=default_rate, train_views_per_s_rounds=rates["default"], train_peak_bytes=peaks["default"])

    flops = step_flops(steps["default"])
    steps_per_s = default_rate / (4 * batch)
    out.update(flops_per_step=flops, achieved_tflops=flops * steps_per_s / 1e12)
    line = f"  FLOPs per step (forward + backward) {flops / 1e9:.1f} G; achieved {flops * steps_per_s / 1e12:.4f} TFLOP/s"
    peak = args.peak_tflops or (peak_bf16_tflops(torch.cuda.get_device_name(device)) if cuda else None)
    if peak:
        out.update(peak_bf16_tflops=peak, fraction_of_peak=flops * steps_per_s / 1e12 / peak)
        line += f" = {100 * out['fraction_of_peak']:.1f}% of the {peak:g} TFLOP/s bf16 peak"
    elif cuda:
        line += " (device not in PEAK_BF16_TFLOPS: give --peak-tflops for the fraction of peak)"
    print(line)

    switches = {}
    if "bf16_other" in rate:
        switches["bf16"] = {"on": default_rate, "off": rate["bf16_other"]} if cuda else \
            {"on": rate["bf16_other"], "off": default_rate}
    if "channels_last_other" in rate:
        switches["channels_last"] = {"on": default_rate, "off": rate["channels_last_other"]} if cuda else \
            {"on": rate["channels_last_other"], "off": default_rate}
    if "compile" in rate:
        switches["compile"] = {"on": rate["compile"], "off": default_rate}
    if "lars_per_parameter" in rate:
        opt_model = _model(size, args.width, device, cuda)
        fused_ms, loop_ms = optimizer_step_ms(opt_model, False, device), optimizer_step_ms(opt_model, True, device)
        print(f"  LARS step alone: {fused_ms:.2f} ms multi-tensor, {loop_ms:.2f} ms per parameter (x{loop_ms / fused_ms:.2f})")
        switches["foreach_lars"] = {"on": default_rate, "off": rate["lars_per_parameter"], "optimizer_ms_on": fused_ms,
                                    "optimizer_ms_off": loop_ms}
    for name, s in switches.items():
        s["speedup"] = s["on"] / s["off"]
        print(f"  speed-up of {name:<14} x{s['speedup']:.2f} ({s['on']:.1f} vs {s['off']:.1f} views/s)")
    out["switches"] = switches

    if not args.no_pil:
        workers = args.workers if args.workers is not None else torch.get_num_threads()
        pil_model = _model(size, args.width, device, cuda)
        pil = bench_pil(pil_model, _lars(pil_model, False), images.cpu(), oe.cpu(), batch, args.steps * args.rounds,
                        device, workers, warmup=args.warmup)
        print(f"  train  {f'per-sample PIL DataLoader ({workers} workers)':<44} {pil:10.1f} views/s "
              f"({args.steps * args.rounds} steps)")
        print(f"  engine step / PIL pipeline: x{default_rate / pil:.2f}")
        out.update(pil_views_per_s=pil, pil_workers=workers, engine_over_pil=default_rate / pil)

    n_score = args.score_images or (2048 if cuda else (256 if size < 64 else 32))
    model = models["default"].eval()
    score_images = synthetic_images(n_score, size, 2).to(device)
    scoring = {}
    for forward_batch in sorted({2048, args.large_score_batch}):
        _reset_peak(device)
        rate_s = bench_scoring(model, score_images, args.n_aug, device, forward_batch)
        scoring[forward_batch] = rate_s
        print(f"  score  {n_score} images x (1 clean + {args.n_aug} augmented), {forward_batch:>6} views per forward: "
              f"{rate_s:10.1f} views/s   peak {_peak_bytes(device) / 2**20:7.0f} MiB")
    out.update(score_views_per_s=scoring[2048], score_views_per_s_by_forward_batch=scoring)
    return out


def main(argv=None) -> dict:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(prog="python -m oecl_core.bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 224], help="image sizes (< 64 px: the CIFAR stem)")
    p.add_argument("--width", type=float, default=1.0 if cuda else 0.25, help="ResNet-18 width multiplier")
    p.add_argument("--batch", type=int, default=None,
                   help="ID images per step, and as many OE images (default: 256 on a GPU; 32 at 32 px, 8 at 224 px on the CPU)")
    p.add_argument("--steps", type=int, default=10 if cuda else 2, help="timed steps per round and variant")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each figure is the median over them")
    p.add_argument("--warmup", type=int, default=3 if cuda else 2, help="untimed steps of each variant first")
    p.add_argument("--switches", nargs="*", default=list(SWITCHES), choices=SWITCHES,
                   help="switches to time against the default step (none: only the default step)")
    p.add_argument("--workers", type=int, default=None, help="PIL DataLoader workers (default: torch's thread count)")
    p.add_argument("--no-pil", action="store_true", help="skip the per-sample PIL pipeline")
    p.add_argument("--n-aug", type=int, default=32)
    p.add_argument("--score-images", type=int, default=None)
    p.add_argument("--large-score-batch", type=int, default=8192, help="the large scoring forward batch (views)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak, if not in the table")
    p.add_argument("--json", default=None, help="write the figures here (for python -m oecl_core plan --bench-json)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.rounds < 1 or args.warmup < 0 or (args.batch is not None and args.batch < 2):
        p.error("--steps and --rounds must be >= 1, --warmup >= 0 and --batch >= 2")

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}")
    report = {"device": name, "torch": torch.__version__, "width": args.width, "n_aug": args.n_aug, "sizes": {}}
    for size in args.sizes:
        report["sizes"][str(size)] = bench_size(size, args, device)
    if args.json:
        from .io import write_json

        write_json(args.json, report)
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
