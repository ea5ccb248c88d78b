"""The one training engine every method shares.

Per step: the method builds its views of an ID batch (and an OE batch), the engine forwards
cat(ID views, OE views) in one pass so BatchNorm sees both, and the method's loss is minimised.
All randomness (data order, OE sampling, augmentations) derives from (seed, epoch), so a run resumed
from a checkpoint continues exactly as if it had never stopped.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .augment import to_float
from .config import RunConfig
from .data import Split
from . import distributed
from .batching import step_batches
from .device import autocast, place_network, use_cudnn_benchmark
from .distributed import SINGLE, Processes
from .io import save_torch, write_json, write_text
from .methods import get_method
from .methods.base import empty_oe_error
from .optim import alpha_at, build_optimizer, scheduled_lr, set_lr
from .progress import Progress
from .scores import center_crop
from .step_graph import GraphedStep
# The engine's parts in their own modules; their names stay importable from here, where the callers import them.
from .checkpoint import (CHECKPOINT, CHECKPOINT_REMOVED, RESUMABLE_CHANGES, SETTING_DEFAULTS,  # noqa: F401
                         CheckpointRemoved, ResumeMismatch, load_checkpoint, optimizer_state, settings_changes)
from .run_log import (BN_SETTLE_STEPS, COLLAPSE_DROP, COLLAPSE_SEPARATION, LOG_FIELDS, is_collapsed,  # noqa: F401
                      log_text, read_log)
from .stops import STOP_CHECK_STEPS, STOP_SIGNALS, STOPPED_EXIT, RunStopped, StopRequests, should_stop  # noqa: F401
from .train_step import training_step

_log_text = log_text  # the name tests import

AUG_STAT_VIEWS = 8  # augmented views per probe image for the mu / sigma / sigma_v statistics (Fig. 2)
# A run whose convolution weights moved less than this (median relative change from their initialisation) has
# barely left its random initialisation: flagged `undertrained` (docs/fidelity.md, optimiser pilot).
UNDERTRAINED_CHANGE = 0.10


class TrainingDiverged(RuntimeError):
    pass


def epoch_seed(seed: int, epoch: int) -> int:
    # Distinct, reproducible streams per (seed, epoch): no generator state has to be checkpointed.
    return seed * 1_000_003 + epoch * 7919 + 17


def epoch_generator(seed: int, epoch: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(epoch_seed(seed, epoch))


@dataclass
class TrainResult:
    out_dir: Path
    model: torch.nn.Module
    log: list[dict]
    epochs_done: int
    finished: bool
    collapsed: bool
    train_seconds: float


@torch.no_grad()
def mean_feature_norm(model, images: torch.Tensor | None, size: int, batch_size: int = 512) -> float:
    """Mean ||f(x)|| over clean (centre-cropped) views in eval mode (NaN when there are no images)."""
    if images is None or len(images) == 0:
        return float("nan")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, len(images), batch_size):
        with autocast(device):
            f = model(center_crop(to_float(images[start:start + batch_size].to(device)), size)).float()
        total += f.norm(dim=1).sum().item()
    model.train(was_training)
    return total / len(images)


@torch.no_grad()
def augmentation_stats(model, images: torch.Tensor | None, augment, size: int,
                       views: int = AUG_STAT_VIEWS, seed: int = 0) -> dict:
    """The quantities of Theorem III.1, averaged over images: with f_1..f_V the features of V augmented views
    and m their mean, mu = ||m||, sigma = spread along m / ||m||, sigma_v = sqrt(trace of the covariance
    perpendicular to m). Returns mean mu, mean sigma and mean sigma_v (NaN without images)."""
    if images is None or len(images) == 0:
        return {"mu": float("nan"), "sigma": float("nan"), "sigma_v": float("nan")}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    x = to_float(images.to(device))
    with autocast(device):
        f = torch.stack([model(augment(x, gen)).float() for _ in range(views)], dim=1)  # (N, V, D)
    model.train(was_training)
    m = f.mean(dim=1, keepdim=True)
    u = m / m.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    centred = f - m
    along = (centred * u).sum(dim=-1, keepdim=True)
    perp = centred - along * u
    return {"mu": m.norm(dim=-1).mean().item(), "sigma": along.pow(2).mean(dim=1).sqrt().mean().item(),
            "sigma_v": perp.pow(2).sum(dim=-1).mean(dim=1).sqrt().mean().item()}


def _sample(images, n, seed):
    if images is None or len(images) == 0:
        return None
    gen = torch.Generator().manual_seed(seed)
    return images[torch.randperm(len(images), generator=gen)[:n]]


def build_network(cfg: RunConfig, method=None) -> torch.nn.Module:
    """The run's network, initialised from its seed, on the CPU."""
    method = method or get_method(cfg.method)
    torch.manual_seed(cfg.seed)
    return method.network(cfg)


def conv_weight_change(model, cfg: RunConfig) -> float:
    """Median over the convolution weights of ||w - w_init|| / ||w_init||: how far training moved the network
    from its initialisation, which is rebuilt from the seed (the global RNG state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        init = build_network(cfg)
    trained = dict(model.named_parameters())
    changes = [((trained[name].detach().float().cpu() - w).norm() / w.norm()).item()
               for name, w in init.named_parameters() if w.dim() == 4]
    return float(torch.tensor(changes).median())


# Devices whose runs may set cuda_graphs (tests add "cpu" to drive the graphed engine path without a capture).
GRAPH_DEVICES = ("cuda",)


def compiled_for_training(model, cfg: RunConfig, device: torch.device):
    """The module the training steps call: the network itself, or torch.compile of it (the compiled module shares
    the network's parameters, so checkpoints, probes and scoring use the eager network unchanged). cuda_graphs
    records the whole eager step instead (step_graph.GraphedStep), so it excludes compile."""
    if cfg.cuda_graphs:
        if device.type not in GRAPH_DEVICES:
            raise ValueError(f"cuda_graphs needs a CUDA device, and this run trains on {device}; leave cuda_graphs off")
        if cfg.compile:
            raise ValueError("cuda_graphs records the eager step as one CUDA graph and compile compiles the network; "
                             "choose one of them")
        return model
    return torch.compile(model) if cfg.compile else model


@dataclass
class Engine:
    """What a run trains with, as build_engine makes it (train() and window.training_steps share it)."""
    method: object
    model: torch.nn.Module  # the network itself: checkpoints, probes and scoring use it
    optimizer: torch.optim.Optimizer
    augment: object
    step_model: torch.nn.Module  # the module the training steps call (compiled, or the multi-process wrapper)

    def start(self, cfg: RunConfig, train_images: torch.Tensor, resumed: bool) -> None:
        """The method's start on the training images (a run resumed from a checkpoint has had it), and its binding
        to the network."""
        if not resumed:
            self.method.on_start(self.model, train_images, cfg)
        self.method.bind(self.model)


def build_engine(cfg: RunConfig, method, device: torch.device, procs: Processes = SINGLE) -> Engine:
    """The run's network (initialised from its seed: the global RNG is seeded here), optimiser, augmentation and
    stepped module on `device`, for a configured method (method.configure(cfg) done)."""
    use_cudnn_benchmark(device)
    model = place_network(build_network(cfg, method), device)  # channels-last on CUDA, as runner.load_trained
    if procs.active:
        model = distributed.global_batchnorm(model, device)
    optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    augment = method.train_augment(cfg)
    step_model = compiled_for_training(distributed.wrap(model, procs, device) if procs.active else model, cfg, device)
    return Engine(method, model, optimizer, augment, step_model)


def train(cfg: RunConfig, split: Split, out_dir, stop_after_epoch: int | None = None,
          progress: bool | None = None) -> TrainResult:
    """Train (or resume) the run in out_dir; writes config.json, log.csv and checkpoint.pt there.

    stop_after_epoch ends this call early (the run can be resumed later), e.g. to fit a cluster time limit.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    procs, device = distributed.setup(cfg.device)
    method = get_method(cfg.method)
    if procs.active and cfg.method not in distributed.METHODS:
        raise ValueError(f"method {cfg.method} has no multi-process training "
                         f"(checked: {', '.join(distributed.METHODS)}); train it with one process")
    method.configure(cfg)
    needs_oe = method.uses_external_oe and cfg.alpha > 0
    if needs_oe and split.oe is None:
        raise ValueError(f"method {cfg.method} with alpha {cfg.alpha} needs OE images, "
                         f"but the run has no OE source ({cfg.oe!r})")
    if needs_oe and len(split.oe) == 0:  # empty by construction (few-shot with k = 0)
        if not method.oe_optional:
            raise empty_oe_error(cfg)
        print(f"{out_dir}: the OE pool is empty (0 images), so the OE term is zero and the run trains SimCLR",
              file=sys.stderr)
        needs_oe = False
    if method.needs_train_labels and split.train_labels is None:
        raise ValueError(f"method {cfg.method} learns from class labels, but benchmark {cfg.benchmark} "
                         "gives its training images none; use the unlabeled benchmark "
                         "(all classes of the data set are normal, Table VIII)")
    if len(split.train) < 2:
        raise ValueError(f"{len(split.train)} normal training image(s): contrastive training needs at least 2")

    engine = build_engine(cfg, method, device, procs)
    model, optimizer, augment, step_model = engine.model, engine.optimizer, engine.augment, engine.step_model

    if cfg.cuda_graphs and procs.active:
        raise ValueError("cuda_graphs records one process's step; train with one process, or leave cuda_graphs off")
    state = load_checkpoint(out_dir, cfg)  # refuses other settings before anything is written
    if procs.is_main:  # one writer per run folder
        write_json(out_dir / "config.json", cfg.to_dict())
    log, start_epoch, within = [], 0, None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        log, start_epoch, within = state["log"], state["epoch"], state.get("within")
        if start_epoch < cfg.epochs:
            at = f", step {within['step']} of {within['steps']}" if within else ""
            print(f"resuming {out_dir} from its checkpoint at epoch {start_epoch} of {cfg.epochs}{at}", file=sys.stderr)
    saved_epoch = start_epoch
    # after the checkpoint's optimiser state is in: the graphed step moves the learning rate onto the device
    graphed = (GraphedStep(step_model, method, optimizer, augment, torch.Generator(device=device), cfg.precision)
               if cfg.cuda_graphs else None)

    train_images = split.train.to(device)
    train_labels = split.train_labels.to(device) if method.needs_train_labels else None
    oe_images = split.oe.to(device) if needs_oe else None
    engine.start(cfg, train_images, resumed=state is not None)
    sizes = step_batches(cfg.batch_size, cfg.oe_batch_size, len(train_images))
    batch, steps, oe_batch = sizes.batch, sizes.steps, sizes.oe_batch
    if procs.active:
        distributed.check_batch(procs, batch, oe_batch, needs_oe)
    # Fixed images whose mean feature norm is logged every epoch (raw material of Figures 1, 2 and 8).
    id_probe = _sample(split.train, cfg.log_samples, 1)
    probes = {
        "norm_id": id_probe,
        "norm_oe": method.oe_probe(id_probe, _sample(split.oe, cfg.log_samples, 2)),
        "norm_ood": _sample(split.test[~split.test_is_normal], cfg.log_samples, 3),
    }

    end_epoch = cfg.epochs if stop_after_epoch is None else min(cfg.epochs, stop_after_epoch)

    def save_checkpoint(epochs_done: int, within: dict | None = None) -> None:
        """The run after `epochs_done` epochs, and `within` the next one (its finished steps) when it stopped there."""
        state = {"model": model.state_dict(), "optimizer": optimizer_state(optimizer), "epoch": epochs_done,
                 "log": log, "config": cfg.to_dict()}
        save_torch(out_dir / CHECKPOINT, state if within is None else {**state, "within": within})

    bar = Progress(cfg.epochs, f"{cfg.method} {split.description}", enabled=progress if procs.is_main else False)
    started = time.monotonic()
    model.train()
    with StopRequests() as stop:
        for epoch in range(start_epoch, end_epoch):
            t0 = time.monotonic()
            # oe_resample=False reproduces the public code's never re-seeded samplers: one order, one OE subset.
            sampling_gen = epoch_generator(cfg.seed, epoch if cfg.oe_resample else 0, "cpu")
            if graphed is None:
                aug_gen = epoch_generator(cfg.seed, epoch, device)
            else:  # the graphs read the generator they were recorded with: re-seed it, the same stream
                aug_gen = graphed.gen.manual_seed(epoch_seed(cfg.seed, epoch))
            order = torch.randperm(len(train_images), generator=sampling_gen)[: steps * batch].to(device)
            if needs_oe:
                repeats = math.ceil(steps * oe_batch / len(oe_images))
                oe_order = torch.cat([torch.randperm(len(oe_images), generator=sampling_gen) for _ in range(repeats)])
                oe_order = oe_order[: steps * oe_batch].to(device)
            alpha = alpha_at(epoch, cfg.alpha, cfg.warmup_epochs)
            step_losses, first_step = [], 0
            if within is not None:  # a run stopped within this epoch: its finished steps are not redone
                first_step = within["step"]
                aug_gen.set_state(within["aug_gen"])
                step_losses = [torch.tensor(v, device=device) for v in within["losses"]]
                t0 -= within["seconds"]
                within = None
            for step in range(first_step, steps):
                epoch_progress = epoch + step / steps if cfg.lr_schedule == "step" else epoch
                lr = scheduled_lr(cfg.lr, epoch_progress, cfg.epochs, cfg.lr_warmup_epochs, cfg.lr_warmup_multiplier,
                                  cfg.lr_milestones if cfg.lr_schedule == "multistep" else None)
                set_lr(optimizer, lr)
                ids = order[step * batch:(step + 1) * batch]
                x_id, y_id = train_images[ids], None if train_labels is None else train_labels[ids]
                x_oe = oe_images[oe_order[step * oe_batch:(step + 1) * oe_batch]] if needs_oe else None
                if graphed is None:
                    loss, n_inputs = training_step(step_model, method, optimizer, augment, aug_gen, x_id, x_oe, alpha,
                                                   cfg.temperature, y_id, cfg.precision, None, procs)
                else:
                    loss, n_inputs = graphed(x_id, x_oe, alpha, cfg.temperature, y_id)
                step_losses.append(loss)
                if step + 1 < steps and should_stop(stop, procs, device, step):
                    if procs.is_main:
                        save_checkpoint(epoch, within={
                            "step": step + 1, "steps": steps, "aug_gen": aug_gen.get_state(),
                            "losses": [v.item() for v in step_losses], "seconds": time.monotonic() - t0})
                    raise RunStopped(f"{out_dir}: stopped by {', '.join(stop.received) or 'another process'} at epoch "
                                     f"{epoch + 1}, step {step + 1} of {steps}; every finished step is in its "
                                     "checkpoint", stop.received)
            # One host sync per epoch, not per step; a bad step still gets named.
            losses = torch.stack(step_losses).float().cpu()
            bad = (~torch.isfinite(losses)).nonzero()
            if len(bad):
                last = (f"the last good checkpoint ({out_dir / CHECKPOINT}, epoch {saved_epoch}) is kept"
                        if saved_epoch else "no checkpoint had been written yet")
                raise TrainingDiverged(
                    f"loss became {losses[bad[0, 0]].item()} at epoch {epoch + 1}, "
                    f"step {bad[0, 0].item() + 1} of {steps}; "
                    f"{last}. Lower the learning rate or alpha, or check the input data."
                )
            seconds = time.monotonic() - t0
            row = {"epoch": epoch + 1, "loss": losses.mean().item(), "lr": lr, "alpha": alpha}
            row.update({k: mean_feature_norm(model, v, cfg.image_size) for k, v in probes.items()})
            row.update(seconds=seconds, images_per_s=steps * n_inputs / seconds, steps=steps)
            if cfg.aug_stats_every and ((epoch + 1) % cfg.aug_stats_every == 0 or epoch == 0):
                for group in ("id", "ood"):
                    probe = probes[f"norm_{group}"]
                    stats = augmentation_stats(model, None if probe is None else probe[:64], augment, cfg.image_size,
                                               seed=epoch)
                    row.update({f"{k}_{group}": v for k, v in stats.items()})
            log.append(row)
            row["collapsed"] = int(method.flags_collapse and is_collapsed(log))
            if procs.is_main:
                write_text(out_dir / "log.csv", log_text(log))
            bar.update(epoch + 1, f"loss {row['loss']:.3f} alpha {alpha:g} "
                                  f"|f| id {row['norm_id']:.3g} oe {row['norm_oe']:.3g}")
            if procs.is_main and ((epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == end_epoch):
                save_checkpoint(epoch + 1)
                saved_epoch = epoch + 1
            if epoch + 1 < end_epoch and should_stop(stop, procs, device, None):
                if procs.is_main and saved_epoch != epoch + 1:
                    save_checkpoint(epoch + 1)
                raise RunStopped(f"{out_dir}: stopped by {', '.join(stop.received) or 'another process'} after epoch "
                                 f"{epoch + 1}; every finished epoch is in its checkpoint", stop.received)
    if stop.received and procs.is_main:  # in the last epoch: trained and saved, the scoring is left to the next call
        raise RunStopped(f"{out_dir}: stopped by {', '.join(stop.received)} after its last epoch; it is saved, and "
                         "the next call scores it", stop.received)
    bar.close()
    done = log[-1]["epoch"] if log else 0
    if procs.is_main:
        write_text(out_dir / "log.csv", log_text(log))
    return TrainResult(out_dir, model, log, done, done >= cfg.epochs,
                       method.flags_collapse and is_collapsed(log), time.monotonic() - started)
