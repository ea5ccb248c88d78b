"""Throughput benchmark (a script that prints figures, not a test): `python -m oecl_core.bench`.

Prints, on whatever device is present:
  1. training images/s of the engine's OECL step fed by batched tensor augmentations (data on the device);
  2. training images/s of the same model and loss fed by a per-sample torchvision/PIL DataLoader pipeline
     (the public code's way: PIL transforms per image in worker processes);
  3. scoring images/s for s_mu / s_l2_ens / s_l2 with 1 clean + n_aug augmented views, streamed.
"Images" counts every view forwarded: a step with B ID and B OE images forwards 4B views.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from .augment import SimCLRAugment
from .methods import get_method
from .models import build_model
from .optim import build_optimizer
from .scores import feature_stats
from .device import autocast, resolve_device
from .train import training_step


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


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


def bench_batched(model, optimizer, images, oe, batch, steps, device, warmup=2) -> float:
    method, augment = get_method("oecl"), SimCLRAugment(output_size=images.shape[-1])
    gen = torch.Generator(device=device).manual_seed(0)
    images, oe = images.to(device), oe.to(device)

    def step():
        idx = torch.randint(0, len(images), (batch,), device=device, generator=gen)
        oe_idx = torch.randint(0, len(oe), (batch,), device=device, generator=gen)
        return training_step(model, method, optimizer, augment, gen, images[idx], oe[oe_idx], 1.0, 0.5)[1]

    return _views_per_second(step, steps, warmup, device)


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


def bench_scoring(model, images, n_aug, batch, device) -> float:
    augment = SimCLRAugment(output_size=images.shape[-1])
    feature_stats(model, images[:batch], augment, n_aug=1, batch_size=batch)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    feature_stats(model, images, augment, n_aug=n_aug, batch_size=batch)
    _sync(device)
    return len(images) / (time.perf_counter() - t0)


def main(argv=None) -> None:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(prog="python -m oecl_core.bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--size", type=int, default=32, help="image size (32: CIFAR; the CIFAR stem is used below 64 px)")
    p.add_argument("--width", type=float, default=1.0 if cuda else 0.25, help="ResNet-18 width multiplier")
    p.add_argument("--batch", type=int, default=256 if cuda else 64, help="ID images per step (and as many OE images)")
    p.add_argument("--steps", type=int, default=20 if cuda else 4)
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="DataLoader workers of the PIL pipeline")
    p.add_argument("--n-aug", type=int, default=32)
    p.add_argument("--score-images", type=int, default=2048 if cuda else 256)
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    stem = "cifar" if args.size < 64 else "imagenet"
    images, oe = synthetic_images(4 * args.batch, args.size, 0), synthetic_images(4 * args.batch, args.size, 1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}")
    print(f"model: ResNet-18 ({stem} stem) x{args.width} width, {args.size} px; OECL step with {args.batch} ID + "
          f"{args.batch} OE images = {4 * args.batch} views; {args.steps} timed steps after 2 warm-up steps")
    results = {}
    for label, fn in (("batched tensor augmentation (ours)", lambda m, o: bench_batched(m, o, images, oe, args.batch, args.steps, device)),
                      (f"per-sample PIL DataLoader ({args.workers} workers)", lambda m, o: bench_pil(m, o, images, oe, args.batch, args.steps, device, args.workers))):
        torch.manual_seed(0)
        model = build_model(stem, args.width).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model, "lars", 0.1, 0.9, 1e-6)
        results[label] = fn(model, optimizer)
        print(f"  train  {label:<42} {results[label]:10.1f} views/s")
    ours, theirs = results.values()
    print(f"  speed-up of batched augmentation: x{ours / theirs:.2f}")
    model = build_model(stem, args.width).to(device)
    rate = bench_scoring(model, synthetic_images(args.score_images, args.size, 2), args.n_aug, min(256, args.score_images), device)
    print(f"  score  {args.score_images} images x (1 clean + {args.n_aug} augmented views): {rate:10.1f} images/s "
          f"({rate * (args.n_aug + 1):.0f} views/s)")


if __name__ == "__main__":
    main()
