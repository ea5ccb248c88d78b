"""Optimisers and schedules for OECL training.

The OECL paper trains with LARS (lr 0.1, momentum 0.9, weight decay 1e-6) and a
cosine learning-rate decay without restarts, following CSI (trust coefficient
0.001, eps 1e-8).  The public OECL code wraps SGD in a LARS class that applies
the trust ratio only to parameter groups flagged for it and flags none, so what
it actually runs is plain SGD (lr 0.1, momentum 0.9, weight decay 5e-4).  Both
are available here: ``build_optimizer(model, "lars", ...)`` is a LARS whose
trust ratio is really applied, ``build_optimizer(model, "sgd", ...)`` is what the
public code effectively runs.

The schedule helpers are pure functions: ``cosine_lr`` for the learning rate,
``alpha_at`` / ``scaled_warmup`` for the outlier-exposure weight, which the
paper keeps at 0 for the first 50 of 500 epochs (pure SimCLR warm-up).
"""

from __future__ import annotations

import inspect
import math
from typing import Iterable

import torch

__all__ = [
    "LARS",
    "SGD",
    "param_groups_for",
    "build_optimizer",
    "cosine_lr",
    "scheduled_lr",
    "set_lr",
    "alpha_at",
    "scaled_warmup",
    "OPTIMIZER_CHOICES",
]

#: Names accepted by :func:`build_optimizer`.
OPTIMIZER_CHOICES: tuple[str, ...] = ("lars", "lars_csi", "sgd", "sgd_nesterov", "adam")


class _WithoutDynamo:
    """torch.optim.Optimizer's methods as they are written, without the torch._disable_dynamo wrapper torch puts
    on them: that wrapper imports torch._dynamo at its first call (about 1.2 s, a third of a smoke job's start-up).
    It only tells a torch.compile tracing the optimiser to leave it alone, and no training here compiles its
    optimiser (train.compiled_for_training compiles the network alone), so the optimisers behave as torch's do."""

    add_param_group = inspect.unwrap(torch.optim.Optimizer.add_param_group)
    zero_grad = inspect.unwrap(torch.optim.Optimizer.zero_grad)
    state_dict = inspect.unwrap(torch.optim.Optimizer.state_dict)
    load_state_dict = inspect.unwrap(torch.optim.Optimizer.load_state_dict)


# SGD.step as written, without the decorator that imports torch._dynamo on each call to mark graph breaks
_SGD_STEP = inspect.unwrap(torch.optim.SGD.step)


class SGD(_WithoutDynamo, torch.optim.SGD):
    """torch.optim.SGD (the same update, state and state_dict), which does not import torch._dynamo."""

    def step(self, closure=None):
        with torch.set_grad_enabled(self.defaults["differentiable"]):  # what the decorator does besides
            return _SGD_STEP(self, closure)


class LARS(_WithoutDynamo, torch.optim.Optimizer):
    """SGD with momentum whose per-parameter step is scaled by a layer-wise trust ratio.

    For every parameter ``w`` with gradient ``g`` in a group with ``lars=True``
    (the default)::

        trust = trust_coefficient * ||w|| / (||g|| + weight_decay * ||w|| + eps)
        trust = 1                      if ||w|| == 0 or ||g|| == 0
        d     = g + weight_decay * w
        d     = trust * d
        buf   = momentum * buf + d     (buf starts at d on the first step)
        w    -= lr * buf

    The trust ratio is computed with the raw gradient ``g`` (before weight decay
    is added).  For groups with ``lars=False`` (biases and normalisation
    parameters, see :func:`param_groups_for`) the update is plain SGD with
    momentum: ``d = g + weight_decay * w`` with no trust scaling, and
    :func:`param_groups_for` gives such groups ``weight_decay=0.0``.

    Momentum buffers live in ``self.state[p]["momentum_buffer"]``, so they are
    saved and restored by ``state_dict()`` / ``load_state_dict()``.

    The step runs through ``torch._foreach_*`` multi-tensor operations over all
    parameters of a group (trust ratios still one per tensor, from
    ``torch._foreach_norm``); tests/test_optim.py keeps the per-parameter loop it
    replaced and checks that both give the same parameters.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"invalid learning rate {lr!r}: must be >= 0")
        if momentum < 0.0:
            raise ValueError(f"invalid momentum {momentum!r}: must be >= 0")
        if weight_decay < 0.0:
            raise ValueError(f"invalid weight_decay {weight_decay!r}: must be >= 0")
        if trust_coefficient <= 0.0:
            raise ValueError(f"invalid trust_coefficient {trust_coefficient!r}: must be > 0")
        if eps < 0.0:
            raise ValueError(f"invalid eps {eps!r}: must be >= 0")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
            lars=True,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("LARS does not support sparse gradients")
            # torch._foreach_* ops need one device and dtype per list
            by_kind: dict[tuple, list[torch.Tensor]] = {}
            for p in params:
                by_kind.setdefault((p.device, p.dtype), []).append(p)
            for same_kind in by_kind.values():
                self._fused_update(same_kind, group)

        return loss

    def _fused_update(self, params: list[torch.Tensor], group: dict) -> None:
        """The update of the class docstring for a list of parameters on one device, through multi-tensor
        kernels (a handful of launches for the whole list instead of several per parameter)."""
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        grads = [p.grad for p in params]
        # new tensors: the gradients themselves are left as backward wrote them
        d = torch._foreach_add(grads, params, alpha=weight_decay) if weight_decay != 0.0 else \
            torch._foreach_mul(grads, 1.0)
        if group.get("lars", True):
            w_norm = torch.stack(torch._foreach_norm(params))
            g_norm = torch.stack(torch._foreach_norm(grads))
            trust = group["trust_coefficient"] * w_norm / (g_norm + weight_decay * w_norm + group["eps"])
            trust = torch.where((w_norm > 0) & (g_norm > 0), trust, torch.ones_like(trust))
            torch._foreach_mul_(d, list(trust.unbind()))
        if momentum != 0.0:
            states = [self.state[p] for p in params]
            old = [(st["momentum_buffer"], dp) for st, dp in zip(states, d) if "momentum_buffer" in st]
            if old:  # buf = momentum * buf + d
                bufs, ds = map(list, zip(*old))
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, ds)
            for st, dp in zip(states, d):
                st.setdefault("momentum_buffer", dp)  # a new buffer starts at the first step's d
            d = [st["momentum_buffer"] for st in states]
        if isinstance(lr, torch.Tensor):  # on the device (a CUDA graph replays with the lr of each step)
            torch._foreach_add_(params, torch._foreach_mul(d, -lr))
        else:
            torch._foreach_add_(params, d, alpha=-lr)


def param_groups_for(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Split ``model``'s trainable parameters into two optimiser groups.

    * weights of conv/linear layers (``ndim > 1``): ``weight_decay`` and ``lars=True``;
    * biases and normalisation-layer parameters (``ndim <= 1``):
      ``weight_decay=0.0`` and ``lars=False``.

    Parameters with ``requires_grad=False`` are left out.  Both groups are always
    returned (one may be empty), in the order [adapted, non-adapted].
    """
    adapted: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (adapted if p.ndim > 1 else plain).append(p)
    return [
        {"params": adapted, "weight_decay": weight_decay, "lars": True},
        {"params": plain, "weight_decay": 0.0, "lars": False},
    ]


def build_optimizer(
    model: torch.nn.Module, name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Build the optimiser named ``name`` for ``model``.

    * ``"lars"``: :class:`LARS` over :func:`param_groups_for(model, weight_decay)
      <param_groups_for>` (trust ratio and decay on conv/linear weights only);
    * ``"lars_csi"``: :class:`LARS` with the trust ratio and decay on *every* parameter, biases and
      BatchNorm included: torchlars' wrapper around SGD as CSI runs it (alinlab/CSI common/train.py,
      kakaobrain/torchlars lars.py), the LARS the paper cites;
    * ``"sgd"``: ``torch.optim.SGD(model.parameters(), lr, momentum, weight_decay)`` (as :class:`SGD`),
      decay on every parameter, no nesterov: what the public OECL code runs;
    * ``"adam"``: ``torch.optim.Adam(model.parameters(), lr, weight_decay=weight_decay)`` (the eoe baselines).

    Any other name raises ``ValueError`` listing the valid choices.
    """
    key = name.lower() if isinstance(name, str) else name
    if key == "lars":
        return LARS(param_groups_for(model, weight_decay), lr=lr, momentum=momentum,
                    weight_decay=weight_decay)
    if key == "lars_csi":
        params = [p for p in model.parameters() if p.requires_grad]
        return LARS([{"params": params, "weight_decay": weight_decay, "lars": True}], lr=lr, momentum=momentum,
                    weight_decay=weight_decay)
    if key == "sgd":
        return SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if key == "sgd_nesterov":  # ss-ood's one-class GT training (train.py)
        return SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    if key == "adam":  # the eoe baselines (momentum is unused: Adam's betas stay at PyTorch's defaults)
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    choices = ", ".join(repr(c) for c in OPTIMIZER_CHOICES)
    raise ValueError(f"unknown optimizer {name!r}; valid choices are {choices}")


def cosine_lr(base_lr: float, progress: float) -> float:
    """Cosine decay without restarts from ``base_lr`` (progress 0) to 0 (progress 1).

    ``base_lr * 0.5 * (1 + cos(pi * progress))`` with ``progress`` clamped to [0, 1].
    """
    p = min(max(float(progress), 0.0), 1.0)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * p))


def scheduled_lr(base_lr: float, epoch_progress: float, epochs: int, warmup_epochs: float = 0.0,
                 warmup_multiplier: float = 1.0, milestones=None) -> float:
    """The learning rate after ``epoch_progress`` epochs (fractional when stepped per iteration).

    With ``milestones`` (a sequence of epochs): MultiStepLR with gamma 0.1, the schedule of the eoe baselines
    (liznerski/eoe), ``base_lr * 0.1 ** (number of milestones <= epoch)``; the other arguments are then unused.

    Without warm-up (``warmup_epochs == 0`` or ``warmup_multiplier == 1``): cosine decay from ``base_lr``
    to 0 over ``epochs``. With it, CSI's schedule (alinlab/CSI common/train.py: GradualWarmupScheduler,
    multiplier 10, then CosineAnnealingLR(T_max=epochs), stepped at epoch - 1 + n / len(loader)): the
    rate rises linearly from ``base_lr`` to ``base_lr * warmup_multiplier`` over ``warmup_epochs``, then
    follows a cosine of period ``epochs`` started at the end of the warm-up, so it ends just above 0.
    """
    if milestones is not None:
        return base_lr * 0.1 ** sum(1 for m in milestones if epoch_progress >= m)
    if warmup_epochs <= 0 or warmup_multiplier == 1.0:
        return cosine_lr(base_lr, epoch_progress / epochs)
    if epoch_progress <= warmup_epochs:
        return base_lr * ((warmup_multiplier - 1.0) * epoch_progress / warmup_epochs + 1.0)
    return cosine_lr(base_lr * warmup_multiplier, (epoch_progress - warmup_epochs) / epochs)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group of ``optimizer`` to ``lr`` (a group whose lr is a device
    tensor, step_graph.GraphedStep's, has it filled in place: no host sync, and a recorded graph reads it)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def alpha_at(epoch: int, alpha: float, warmup_epochs: int) -> float:
    """The outlier-exposure weight for the 0-based ``epoch``.

    A hard step, as in the paper (alpha = 0 for the first 50 of 500 epochs):
    ``0.0`` while ``epoch < warmup_epochs``, ``alpha`` afterwards.
    """
    return 0.0 if epoch < warmup_epochs else float(alpha)


def scaled_warmup(epochs: int, paper_warmup: int = 50, paper_epochs: int = 500) -> int:
    """The OE warm-up length (in epochs) scaled to a run of ``epochs`` epochs.

    ``round(epochs * paper_warmup / paper_epochs)`` with round-half-up (not
    Python's banker's rounding, so 25 epochs -> 3 rather than 2), then clamped:

    * ``epochs <= 0`` -> 0 (nothing to warm up);
    * ``epochs == 1`` -> 0: the only epoch must see outliers, otherwise OE would
      never be used;
    * ``epochs >= 2`` -> at least 1 (a short run still starts with pure SimCLR,
      unless ``paper_warmup == 0``, which gives 0) and at most ``epochs - 1``
      (at least one epoch always trains with OE).

    So ``scaled_warmup(500) == 50``, ``scaled_warmup(20) == 2``,
    ``scaled_warmup(2) == 1``.
    """
    if paper_epochs <= 0:
        raise ValueError(f"paper_epochs must be > 0, got {paper_epochs!r}")
    if paper_warmup < 0:
        raise ValueError(f"paper_warmup must be >= 0, got {paper_warmup!r}")
    if epochs <= 1 or paper_warmup == 0:
        return 0
    # exact integer round-half-up of epochs * paper_warmup / paper_epochs
    warmup = (2 * epochs * paper_warmup + paper_epochs) // (2 * paper_epochs)
    return int(min(max(warmup, 1), epochs - 1))
