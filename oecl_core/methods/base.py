"""What a method is to the training engine: its network, its training augmentation, how it builds the views of
a batch, its loss and its score.

The engine forwards cat(id_view1, [id_view2], [oe_views]) in one pass (so BatchNorm sees ID and OE images
together), splits the outputs and hands them to `loss`. The defaults are those of the contrastive methods
(SimCLR, OECL, ...): the ResNet-18 + projection head of the paper, SimCLR's augmentation and the feature-norm
scores of oecl_core.scores; a baseline overrides what differs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def empty_oe_error(cfg) -> ValueError:
    """The refusal of a run whose method is an objective over OE images and whose OE pool is empty by construction
    (few-shot with k = 0): trained anyway, it would not be the method."""
    return ValueError(f"method {cfg.method} is an objective over OE images, but the OE pool of benchmark "
                      f"{cfg.label or cfg.benchmark!r} is empty (0 images): without them the run is not {cfg.method}. "
                      "Give it OE images (e.g. few_shot~shots=1), or train oecl, which trains SimCLR without them")


_NOT_INHERITED = ("label", "order", "multi_process", "paper_method")


@dataclass(frozen=True)
class Views:
    id1: torch.Tensor  # first view of every ID image, (B', C, H, W)
    id2: torch.Tensor | None  # second view, row-aligned with id1 (a positive pair), or None for one-view methods
    oe: torch.Tensor | None  # every OE view stacked, (M, C, H, W), or None
    targets: torch.Tensor | None = None  # per-input labels a method needs in its loss (e.g. the applied rotation)


class Method:
    name: str = ""
    # label, order, multi_process and paper_method are facts of one method: a subclass (another method) does not
    # inherit them (__init_subclass__), so e.g. a variant of OECL is neither shown as "OECL" nor taken as checked
    # multi-process
    label: str = ""  # the name tables show for it ("": its name)
    # its place in every list of methods (oecl list, --method's help, ...): the paper's methods, then the
    # baselines; a method without one comes after these, by module and definition (oecl_core.methods)
    order: int | None = None
    uses_external_oe: bool = False  # whether the run needs an OE pool
    # True where the method makes its own OE images from the ID batch (self-OECL's rotations): its OE term, and so
    # its alpha, stands without an external OE pool
    oe_from_id_images: bool = False
    # True where multi-process training (oecl_core/distributed.py) is checked to be the one-process step
    # (tests/test_distributed.py); other methods train in one process
    multi_process: bool = False
    # one of the paper's own methods (OECL, self-OECL) or the SimCLR they extend: what `sweep` runs by default
    paper_method: bool = False
    # True where the objective stands without OE images (OECL's OE term is added to SimCLR, so OECL with an empty
    # OE pool trains SimCLR, as the paper's k = 0 row does); False where the OE images define the objective (HSC,
    # BCE, ...): such a run with an empty pool is refused (empty_oe_error)
    oe_optional: bool = False
    default_epochs_factor: int = 1  # self-OECL trains twice as long in the paper (1000 vs 500 epochs)
    # The norm collapse of the paper's Fig. 4 (ID features pushed to zero with the OE's) concerns the norm-penalised
    # contrastive methods; a baseline whose objective moves normal features towards the origin on purpose (HSC,
    # DSAD) would be flagged by mistake.
    flags_collapse: bool = True
    trains: bool = True  # False: scored as built (zero-shot CLIP); its runs have 0 epochs and no checkpoint
    # False for methods starting from pre-trained weights: the under-training check (how far the convolutions moved
    # from their initialisation) only means something from a random initialisation
    from_scratch: bool = True
    needs_train_labels: bool = False  # True: the loss's targets are the class labels of the ID batch (SupCLR)
    # None: the contrastive scores (s_mu, s_l2, ...), the table picks one. Otherwise the one score the method
    # defines, under this name in metrics.json, which every table reads for this method.
    primary_score: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for attr in _NOT_INHERITED:
            if attr not in vars(cls):
                setattr(cls, attr, getattr(Method, attr))

    @classmethod
    def sort_key(cls) -> float:
        return math.inf if cls.order is None else cls.order

    @classmethod
    def display_label(cls) -> str:
        return cls.label or cls.name

    def configure(self, cfg) -> None:
        """Take method-specific settings from the run's RunConfig (most methods have none)."""

    def preset_settings(self, preset: str, image_size: int) -> dict:
        """The method's own changes to a preset's run settings (a baseline brings its authors' setup)."""
        return {}

    def network(self, cfg) -> torch.nn.Module:
        from ..models import build_model

        return build_model(cfg.stem, cfg.width)

    def counted_network(self, cfg) -> tuple[torch.nn.Module, int]:
        """The network whose FLOPs per view the planner counts (oecl_core.plan) and its input size: the run's network
        on the meta device (shapes only, nothing computed or allocated)."""
        with torch.device("meta"):
            return self.network(cfg), cfg.image_size

    def train_augment(self, cfg) -> Augment:
        from ..augment import SimCLRAugment

        return SimCLRAugment(crop_scale_min=cfg.crop_scale_min, output_size=cfg.image_size)

    def on_start(self, model: torch.nn.Module, train_images: torch.Tensor, cfg) -> None:
        """Called once before the first step of a fresh run (not on resume), with the uint8 training images on
        the model's device: data-dependent initialisation lives in the model's buffers, so checkpoints keep it."""

    def bind(self, model: torch.nn.Module) -> None:
        """Called with the model once it holds its trained or initial state (fresh, resumed or loaded for
        scoring), for methods whose loss reads one of its buffers (DSVDD's centre)."""

    def oe_probe(self, id_images: torch.Tensor | None, oe_images: torch.Tensor | None) -> torch.Tensor | None:
        """The fixed uint8 images whose mean feature norm is logged as the OE norm each epoch."""
        return oe_images

    def views(self, x_id: torch.Tensor, x_oe: torch.Tensor | None, augment: Augment, gen: torch.Generator) -> Views:
        raise NotImplementedError

    def loss(self, z1: torch.Tensor, z2: torch.Tensor | None, z_oe: torch.Tensor | None, alpha: float,
             temperature: float, targets: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def score(self, model, test_images: torch.Tensor, cfg, train_images: torch.Tensor | None = None,
              progress=None) -> dict[str, np.ndarray]:
        """Scores of the uint8 test images, higher = more normal, one array per score name."""
        from ..scores import score_images

        return score_images(model, test_images, self.train_augment(cfg), train_images=train_images, n_aug=cfg.n_aug,
                            seed=cfg.seed + 10_000, image_size=cfg.image_size, progress=progress,
                            mu_with_clean=cfg.s_mu_clean_view, forward_batch=cfg.score_batch_views)
