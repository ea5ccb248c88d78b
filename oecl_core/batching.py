"""The batch rule every run follows, in one place: the training engine applies it and the planner counts by it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepBatches:
    batch: int  # ID images per step
    oe_batch: int  # OE images per step
    steps: int  # steps per epoch


def step_batches(batch_size: int, oe_batch_size: int, n_train: int) -> StepBatches:
    """A class smaller than the batch trains with one step of all its images; the OE batch shrinks with it, so the
    configured ID : OE ratio holds (the public code asserts equal ID and OE batches)."""
    batch = min(batch_size, n_train)
    return StepBatches(batch=batch, oe_batch=max(1, round(oe_batch_size * batch / batch_size)),
                       steps=max(1, n_train // batch))
