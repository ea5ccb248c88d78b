"""The timed pieces of the throughput script (oecl_core/throughput.py): the engine's OECL training step and its
switches, the per-sample PIL DataLoader pipeline it is compared with, scoring, FLOP counting and the device
helpers that time them."""
from __future__ import annotations

import resource
import time

import torch

from .augment import SimCLRAugment
from .device import autocast
from .methods import get_method
from .models import build_model
from .optim import LARS, build_optimizer
from .scores import feature_stats
from .step_graph import GraphedStep
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


def peak_bf16_tflops(device_name: str) -> float | None:
    for fragment, tflops in PEAK_BF16_TFLOPS:
        if fragment.lower() in device_name.lower():
            return tflops
    return None


def sync_device(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device) -> int:
    """Peak memory: the CUDA allocator's peak since the last reset, or on the CPU the process's resident-set high-water
    mark (it never goes down, so on the CPU it bounds every figure measured so far)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def views_per_second(step, steps: int, warmup: int, device, budget=None, step_s: float = 0.0) -> tuple[float, int]:
    """Calls step() (which returns the number of views it forwarded) warmup + steps times; times the last steps.
    With a budget, stops timing (after one step at least) once another step of step_s seconds would not fit (no
    synchronisation per step: the figure stays that of back-to-back steps). Returns (views/s, steps timed)."""
    for _ in range(warmup):
        step()
    sync_device(device)
    t0 = time.perf_counter()
    n_views = done = 0
    while done < steps and (done == 0 or budget is None or budget.fits(step_s)):
        n_views += step()
        done += 1
    sync_device(device)
    return n_views / (time.perf_counter() - t0), done


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


def step_model(size: int, width: float, device, channels_last: bool):
    """The ResNet-18 of the step (CIFAR stem below 64 px), seeded: every variant starts from the same weights."""
    torch.manual_seed(0)
    model = build_model("cifar" if size < 64 else "imagenet", width).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def lars_optimizer(model, per_parameter: bool):
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
    opt = lars_optimizer(model, per_parameter)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    opt.step()
    sync_device(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        opt.step()
    sync_device(device)
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


def pil_throughput(model, optimizer, images, oe, batch, steps, device, workers, warmup=2, budget=None,
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
        sync_device(device)
        step_s = time.perf_counter() - t0
    return views_per_second(step, steps, 0, device, budget, step_s)


def scoring_throughput(model, images, n_aug, device, forward_batch: int, batch: int = 256) -> float:
    """Scoring views/s: 1 clean + n_aug augmented views per image, forward_batch views per forward pass."""
    augment = SimCLRAugment(output_size=images.shape[-1])
    batch = min(batch, len(images))
    feature_stats(model, images[:batch], augment, n_aug=1, batch_size=batch, forward_batch=forward_batch)  # warm-up
    sync_device(device)
    t0 = time.perf_counter()
    feature_stats(model, images, augment, n_aug=n_aug, batch_size=batch, forward_batch=forward_batch)
    sync_device(device)
    return len(images) * (n_aug + 1) / (time.perf_counter() - t0)
