"""The whole training step as one CUDA graph (RunConfig.cuda_graphs).

An eager step launches about 800 small kernels (augmentation, forward, backward, LARS) and its host time, not the
GPU, bounds a CIFAR-sized step. Captured once as a CUDA graph, a step is one launch: the augmentation draws, the
forward over ID and OE views, the loss, the backward and the optimiser update replay on the device with no Python
in between. What makes that possible, and what it costs:

* static buffers: each step's uint8 batches are copied into tensors the graph reads (every step of a run has the
  same shapes: the engine drops the last, smaller batch), and the loss is read from the graph's own output;
* the learning rate lives in a device tensor (LARS reads a tensor lr, `optim.set_lr` fills it), so a schedule that
  changes every step needs no new capture; alpha and the temperature are baked in, so a run captures one graph per
  alpha value (two: the SimCLR warm-up and the OE phase);
* the augmentation's generator is registered with the graph, which advances its Philox offset on every replay as
  the eager draws would, so a replayed step draws the numbers the eager step would have;
* the first WARMUP_STEPS steps of a run run eagerly (on a side stream, as capture needs): they create the momentum
  buffers and let cudnn.benchmark choose its kernels before anything is recorded;
* autocast's weight cache is off in every step of the graphed path (a cache lives across a capture otherwise);
  it changes no value, only whether a weight's bf16 copy is reused.

The eager steps and the replays compute the same function; the graph only removes the host from the loop. The
lr-as-tensor update rounds as `p - lr * buf` in two operations where the eager float path fuses them, so results
agree to float rounding (tests/test_step_graph.py). On a CPU the same object runs the same static step without
capture (capture=False), which is what the CPU tests compare with the eager engine step.
"""
from __future__ import annotations

import torch

from .optim import LARS

WARMUP_STEPS = 3  # eager steps before the capture (PyTorch's own recipe warms up on a side stream the same way)


class GraphedStep:
    """Replaces train.training_step for a run whose steps all have one shape; call it as the engine calls that.

    model: the network (channels-last on CUDA, as train() places it); optimizer: a LARS (its lr becomes a device
    tensor: read and set it through optim.set_lr); gen: the one generator of the run's augmentations, registered
    with every graph: a new epoch re-seeds it (manual_seed, set_state) rather than replacing it, because a graph
    reads the seed and offset of the generator it was recorded with."""

    def __init__(self, model, method, optimizer, augment, gen: torch.Generator, precision: str = "auto",
                 capture: bool | None = None):
        if not isinstance(optimizer, LARS):
            raise ValueError(f"cuda_graphs captures the LARS optimisers (lars, lars_csi), whose learning rate can live "
                             f"on the device; this run uses {type(optimizer).__name__}. Leave cuda_graphs off for it")
        self.device = next(model.parameters()).device
        self.capture = self.device.type == "cuda" if capture is None else capture
        if self.capture and self.device.type != "cuda":
            raise ValueError(f"capturing a CUDA graph needs a CUDA device; this network is on {self.device}")
        self.model, self.method, self.optimizer, self.augment = model, method, optimizer, augment
        self.precision = precision
        self.lr = torch.zeros((), dtype=torch.float32, device=self.device)
        for group in optimizer.param_groups:
            self.lr.fill_(float(group["lr"]))
            group["lr"] = self.lr  # one tensor for every group: set_lr fills it
        self.gen = gen
        self.inputs = None  # the static x_id, x_oe, y_id the steps read
        self.graphs = {}  # (alpha, temperature) -> (graph, loss tensor, views forwarded)
        self.eager_steps = 0
        self.side = torch.cuda.Stream(self.device) if self.capture else None

    def __call__(self, x_id, x_oe, alpha: float, temperature: float, y_id=None):
        """One step on these uint8 batches; returns (loss, views forwarded) as train.training_step does."""
        self._load(x_id, x_oe, y_id)
        key = (float(alpha), float(temperature))
        if not self.capture or self.eager_steps < WARMUP_STEPS:
            self.eager_steps += 1
            if not self.capture:
                return self._step(*key)
            self.side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.side):
                loss, n = self._step(*key)
            torch.cuda.current_stream(self.device).wait_stream(self.side)
            return loss, n
        if key not in self.graphs:
            self.graphs[key] = self._record(*key)
        graph, loss, n = self.graphs[key]
        graph.replay()
        return loss.clone(), n  # the next replay overwrites the graph's own loss tensor

    def _load(self, x_id, x_oe, y_id) -> None:
        given = (x_id, x_oe, y_id)
        if self.inputs is None:
            self.inputs = tuple(None if x is None else torch.empty_like(x) for x in given)
        for buffer, x in zip(self.inputs, given):
            if (buffer is None) != (x is None) or (x is not None and buffer.shape != x.shape):
                raise ValueError("a graphed training step needs batches of one shape in every step; got "
                                 f"{None if x is None else tuple(x.shape)} after "
                                 f"{None if buffer is None else tuple(buffer.shape)}")
            if x is not None:
                buffer.copy_(x, non_blocking=True)

    def _step(self, alpha: float, temperature: float):
        from .train_step import training_step

        x_id, x_oe, y_id = self.inputs
        return training_step(self.model, self.method, self.optimizer, self.augment, self.gen, x_id, x_oe, alpha,
                             temperature, y_id, self.precision, autocast_cache=False)

    def _record(self, alpha: float, temperature: float):
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.gen)
        pool = next(iter(self.graphs.values()))[0].pool() if self.graphs else None  # graphs share one memory pool
        with torch.cuda.graph(graph, pool=pool):
            loss, n = self._step(alpha, temperature)
        return graph, loss, n
