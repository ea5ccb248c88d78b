"""Multi-process training: one run on several GPUs (or CPU processes) launched by torchrun.

    torchrun --standalone --nproc_per_node 4 -m oecl_core run --preset paper --dataset cifar10 ...

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; with WORLD_SIZE > 1 the engine joins a process group (NCCL on CUDA,
Gloo on the CPU) and trains one global batch per step exactly as one process would:

* every process draws the same global batch and the same augmentations (all randomness is a function of
  (seed, epoch), never of the process count) and forwards its contiguous share of each group of views
  (ID view 1, ID view 2, OE views), so the union of the shares is the one-process batch;
* BatchNorm is global (the paper's "global BN"): torch's SyncBatchNorm on CUDA, GlobalBatchNorm below on the CPU
  (torch's SyncBatchNorm refuses CPU tensors), statistics over the union of the shares;
* the outputs of all processes are gathered with their gradients, so every process computes the one-process loss
  on the global batch: NT-Xent with the negatives of every process, the OE norm penalty averaged over every OE view.
  The gather's backward sums the W identical copies of each output's gradient and DistributedDataParallel
  averages over the W processes, so each parameter gets the one-process gradient;
* rank 0 alone writes config.json, log.csv, checkpoints and metrics.json; a checkpoint holds the plain network's
  state (SyncBatchNorm / GlobalBatchNorm keep BatchNorm's keys) and resumes on any process count.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .device import resolve_device
from .methods import METHODS as _REGISTRY

# Methods whose training is checked to be the one-process step (Method.multi_process). Others have their own
# networks or losses that were not checked.
METHODS = tuple(name for name, method in _REGISTRY.items() if method.multi_process)


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Processes()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer (torchrun sets it)") from None


def from_environment() -> Processes:
    """This process's place among the processes torchrun started (one process without torchrun)."""
    world = _env_int("WORLD_SIZE", 1)
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"WORLD_SIZE={world}, RANK={rank}: need WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE")
    return Processes(rank, world, local)


def setup(device_name: str) -> tuple[Processes, torch.device]:
    """Joins the process group when torchrun started several processes; returns them and this process's device
    (cuda:LOCAL_RANK on CUDA)."""
    procs = from_environment()
    device = resolve_device(device_name)
    if not procs.active:
        return procs, device
    if device.type == "cuda":
        if procs.local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {procs.local_rank} but only {torch.cuda.device_count()} GPU(s) visible: "
                               "start at most one process per GPU (torchrun --nproc_per_node)")
        device = torch.device("cuda", procs.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=procs.rank,
                                world_size=procs.world_size)
    elif dist.get_world_size() != procs.world_size:
        raise RuntimeError(f"a process group of {dist.get_world_size()} processes exists, "
                           f"WORLD_SIZE says {procs.world_size}")
    return procs, device


def gpus_for(method: str, gpus: int) -> int:
    """GPUs a pipeline job of `method` uses when the configuration gives jobs `gpus`: all of them for a method with
    multi-process training, at most one otherwise (it trains in one process)."""
    if not isinstance(gpus, int) or gpus < 0:
        raise ValueError(f"GPUs per training job must be an integer >= 0, got {gpus!r}")
    return gpus if method in METHODS else min(gpus, 1)


def launcher(gpus: int) -> str:
    """The command a pipeline job runs `-m oecl_core ...` with: python for one GPU (or none), torchrun with one process
    per GPU for more (rules/train.smk)."""
    return "python" if gpus <= 1 else f"torchrun --standalone --nproc_per_node {gpus}"


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient of each process's input is the sum of every process's output gradient."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class _AllGather(torch.autograd.Function):
    """Every process's x stacked in rank order (equal shapes); the gradient of each process's x is the sum over the
    processes of the gradient of its rows (a reduce-scatter, done as an all-reduce: the outputs gathered here are
    small, and Gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = len(x)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        rank = dist.get_rank()
        return grad[rank * ctx.rows:(rank + 1) * ctx.rows]


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the union of every process's batch (gradients flow
    through the exchange), for backends torch's SyncBatchNorm does not support (Gloo on the CPU). Eval mode and
    single-process runs are plain BatchNorm. Same parameters, buffers and state_dict keys as BatchNorm."""

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.full((1,), float(x.numel() // x.shape[1]), device=x.device)
        totals = _AllReduceSum.apply(torch.cat([xf.sum(dims), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centred = xf - mean.view(shape)
        var = _AllReduceSum.apply(centred.pow(2).sum(dims)) / n  # biased, as BatchNorm normalises with
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * (n / (n - 1)), alpha=factor)  # unbiased
        return y.to(x.dtype)


def global_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """The model with every BatchNorm made global across the processes (in place; the parameters and buffers are
    the same tensors)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert(model)


def _convert(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _convert(child))
    return module


def wrap(model: nn.Module, procs: Processes, device: torch.device) -> nn.Module:
    """DistributedDataParallel around the (global-BN) model: gradients averaged over the processes."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def check_batch(procs: Processes, batch: int, oe_batch: int, needs_oe: bool) -> None:
    """Each process takes an equal share of every group of views, so the batches must divide by the process count."""
    bad = [f"{name} {n}" for name, n in (("ID batch", batch), ("OE batch", oe_batch if needs_oe else 0))
           if n % procs.world_size]
    if bad:
        raise ValueError(f"{' and '.join(bad)} not divisible by the {procs.world_size} processes: use batch sizes "
                         f"that are multiples of the process count (e.g. 256 + 256 on 4 GPUs)")


def all_reduce_max(flag: torch.Tensor) -> None:
    """flag becomes the largest of every process's flag (in place)."""
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)


def share(views: torch.Tensor, procs: Processes) -> torch.Tensor:
    """This process's contiguous share of a group of views (rows rank * n / W ... (rank + 1) * n / W)."""
    n = len(views) // procs.world_size
    return views[procs.rank * n:(procs.rank + 1) * n]


def gather_groups(z_local: torch.Tensor, group_sizes: list[int], procs: Processes) -> list[torch.Tensor]:
    """The outputs of every process, with gradients, regrouped as one process would have them: z_local stacks this
    process's shares of each group (sizes group_sizes); returns each group's global outputs in the global order."""
    gathered = _AllGather.apply(z_local).chunk(procs.world_size)
    groups, start = [], 0
    for size in group_sizes:
        groups.append(torch.cat([z[start:start + size] for z in gathered]))
        start += size
    return groups
