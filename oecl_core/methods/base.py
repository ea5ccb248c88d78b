"""What a method is to the training engine: how it builds the views of a batch and its loss.

The engine forwards cat(id_view1, id_view2, oe_views) in one pass (so BatchNorm sees ID and OE images
together), splits the projections and hands them to `loss`. Scores are shared by every contrastive
method (oecl_core.scores), so a method only says what differs in training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Views:
    id1: torch.Tensor  # first view of every ID image, (B', C, H, W)
    id2: torch.Tensor  # second view, row-aligned with id1 (row i of id1 and id2 form a positive pair)
    oe: torch.Tensor | None  # every OE view stacked, (M, C, H, W), or None


class Method:
    name: str = ""
    uses_external_oe: bool = False  # whether the run needs an OE pool
    default_epochs_factor: int = 1  # self-OECL trains twice as long in the paper (1000 vs 500 epochs)

    def configure(self, cfg) -> None:
        """Take method-specific settings from the run's RunConfig (most methods have none)."""

    def oe_probe(self, id_images: torch.Tensor | None, oe_images: torch.Tensor | None) -> torch.Tensor | None:
        """The fixed uint8 images whose mean feature norm is logged as the OE norm each epoch."""
        return oe_images

    def views(self, x_id: torch.Tensor, x_oe: torch.Tensor | None, augment: Augment, gen: torch.Generator) -> Views:
        raise NotImplementedError

    def loss(self, z1: torch.Tensor, z2: torch.Tensor, z_oe: torch.Tensor | None, alpha: float, temperature: float) -> torch.Tensor:
        raise NotImplementedError
