"""One optimisation step of the training engine (oecl_core/train.py), on its own so that the graphed step
(oecl_core/step_graph.py) records the same function without importing the engine."""
from __future__ import annotations

import torch

from . import distributed
from .augment import to_float
from .device import autocast
from .distributed import SINGLE, Processes


def training_step(model, method, optimizer, augment, gen, x_id, x_oe, alpha: float, temperature: float, y_id=None,
                  precision: str = "auto", channels_last: bool | None = None, procs: Processes = SINGLE,
                  autocast_cache: bool = True):
    """One optimisation step on uint8 batches: the method's views, one forward over cat(ID views, OE views),
    the method's loss (its targets: the ID labels y_id for a supervised method, else what the views carry).
    Returns the detached loss (no host sync) and the number of views forwarded (by all processes).
    model may be the compiled network; precision: see device.autocast; channels_last (None: on CUDA) feeds the
    network channels-last inputs. With several processes (procs, oecl_core/distributed.py) x_id and x_oe are the
    global batch, model is the DistributedDataParallel network, and each process forwards its share of the views.
    autocast_cache False: see device.autocast (step_graph.GraphedStep's steps)."""
    device = x_id.device
    views = method.views(to_float(x_id), None if x_oe is None else to_float(x_oe), augment, gen)
    targets = y_id if y_id is not None else views.targets
    parts = [v for v in (views.id1, views.id2, views.oe) if v is not None]
    if procs.active:
        parts = [distributed.share(v, procs) for v in parts]
    inputs = torch.cat(parts)
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with autocast(device, precision, cache=autocast_cache):
        z = model(inputs).float()
    if procs.active:  # every process computes the loss of the global batch
        z = torch.cat(distributed.gather_groups(z, [len(p) for p in parts], procs))
    n1, n2 = len(views.id1), 0 if views.id2 is None else len(views.id2)
    z2 = z[n1:n1 + n2] if views.id2 is not None else None
    z_oe = z[n1 + n2:] if views.oe is not None else None
    loss = method.loss(z[:n1], z2, z_oe, alpha, temperature, targets=targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), len(inputs) * procs.world_size
