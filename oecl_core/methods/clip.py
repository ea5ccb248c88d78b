"""CLIP baselines as eoe runs them (liznerski/eoe @11054e4, src/eoe/training/clip.py, main/train_clip_*.py):
`clip` (zero-shot) and `bce_cl` (BCE-CL: CLIP's image encoder fine-tuned with outlier exposure).

Prompts "a photo of a {class name}", one per normal class, and "a photo of something"; an image's logits are
100 x the cosine of its CLIP embedding to each prompt's (text features computed once and frozen). Score:
1 - the softmax probability of "something" (eoe's anomaly score); with one normal class, the probability of the
class prompt. BCE-CL minimises the cross-entropy: the likeliest normal prompt for normal images, "something" for
OE images, 1:1 batches. Weights: OpenAI's ViT-B/32 through
open_clip (a maintained package), downloaded at first use into open_clip's cache, whose sha256 is recorded there
at first use and checked on every later load. Tests use a small randomly initialised CLIP and never download.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import CropFlipAugment
from ..scores import center_crop
from .eoe import EoeObjective

CLIP_ARCH, CLIP_TAG = "ViT-B-32-quickgelu", "openai"  # eoe: clip.load('ViT-B/32') (OpenAI's weights, QuickGELU)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LOGIT_SCALE = 100.0  # eoe hard-codes 100 (the model's own logit_scale is not used)
PROMPTS = ("a photo of a {}", "a photo of something")


def clip_backbone():
    """(open_clip model with pretrained weights, tokenizer, input size). Downloads the weights at first use."""
    try:
        import open_clip
    except ImportError as err:
        raise ImportError("the CLIP baselines need open_clip: pip install open_clip_torch "
                          "(or pip install -e '.[clip]')") from err
    from ..data.fetch import record_checksum

    cache_dir = os.environ.get("OECL_CLIP_CACHE")  # None: open_clip's default cache
    cfg = open_clip.get_pretrained_cfg(CLIP_ARCH, CLIP_TAG)
    path = Path(open_clip.download_pretrained(cfg, cache_dir=cache_dir))
    record_checksum(path)  # trust on first use; a changed file later raises ChecksumError
    model = open_clip.create_model(CLIP_ARCH, pretrained=str(path))
    size = model.visual.image_size  # an int or (height, width)
    return model, open_clip.get_tokenizer(CLIP_ARCH), size[0] if isinstance(size, (tuple, list)) else size


class ClipPromptNet(nn.Module):
    """CLIP's image encoder and the frozen, l2-normalised embeddings of the prompts, one "a photo of a {name}" per
    normal class and "a photo of something" last: images in [0, 1] (any size, resized bicubically to CLIP's input
    as CLIP's preprocessing does) -> the prompt logits, (B, K + 1)."""

    def __init__(self, clip_model, tokenizer, input_size: int, class_names):
        super().__init__()
        names = [class_names] if isinstance(class_names, str) else list(class_names)
        with torch.no_grad():
            text = clip_model.encode_text(tokenizer([PROMPTS[0].format(n) for n in names] + [PROMPTS[1]]))
        self.register_buffer("text", F.normalize(text.float(), dim=1))
        self.visual = clip_model.visual  # the text tower is dropped: its features are fixed
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1))

    def forward(self, x):
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bicubic",
                              align_corners=False).clamp(0, 1)
        image = F.normalize(self.visual((x - self.mean) / self.std).float(), dim=1)
        return LOGIT_SCALE * image @ self.text.t()


def normal_class_names(cfg) -> list[str]:
    """The names of a run's normal classes, one prompt each (eoe: one per normal class in leave-one-out)."""
    from ..data import get_dataset

    names = get_dataset(cfg.dataset).classes()
    if cfg.benchmark == "one_vs_rest":
        return [names[cfg.cls]]
    if cfg.benchmark == "leave_one_out":
        return [n for i, n in enumerate(names) if i != cfg.cls]
    if cfg.benchmark == "unlabeled":
        return list(names)
    raise ValueError(f"the CLIP baselines name the normal classes in their prompts; benchmark {cfg.benchmark!r} has no "
                     "such list here (one_vs_rest, leave_one_out and unlabeled do)")


class BCECLIP(EoeObjective):
    """BCE-CL: eoe's CLIP objective trained with OE (train_clip_cifar.py / train_clip_imagenet.py)."""
    name = "bce_cl"
    label = "BCE-CL"
    order = 14
    primary_score = "p_class_prompt"  # 1 - p("something")
    from_scratch = False

    def preset_settings(self, preset, image_size):
        # SGD Nesterov, momentum 0.9, weight decay 1e-3, 80 epochs, x0.1 at 50, 60, 70, 75, batch 128 + 128 OE;
        # lr 2e-5 for 32-px data, 1e-4 for ImageNet-30 (and, here, the other 224-px sets)
        return dict(optimizer="sgd_nesterov", momentum=0.9, weight_decay=1e-3, lr=2e-5 if image_size <= 64 else 1e-4,
                    lr_schedule="multistep", lr_milestones=(50, 60, 70, 75), epochs=80, batch_size=128,
                    oe_batch_size=128, warmup_epochs=0, alpha=1.0, oe_resample=True, n_aug=0, width=1.0)

    def network(self, cfg):
        model, tokenizer, size = clip_backbone()
        return ClipPromptNet(model, tokenizer, size, normal_class_names(cfg))

    def counted_network(self, cfg):
        # CLIP's image tower with random weights (no download), on the CPU; the text tower runs once, not per view
        import open_clip

        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # open_clip warns that the weights are random, as wanted here
        try:
            visual = open_clip.create_model(CLIP_ARCH, pretrained=None).visual
        finally:
            logging.getLogger().setLevel(quiet)
        size = visual.image_size  # an int or (height, width)
        return visual, size[0] if isinstance(size, (tuple, list)) else size

    def on_start(self, model, train_images, cfg):
        pass  # CLIP normalises with its own statistics

    def train_augment(self, cfg):
        # eoe: ColorJitter 0.01, RandomCrop(32, padding 4) (224 px: of the image resized to 256 x 256, its aspect
        # ratio not kept, train_clip_imagenet.py), flip, then CLIP's resize, and 0.001 Gaussian noise; the resize to
        # CLIP's input happens in the network
        if cfg.stored_size > cfg.image_size:
            return CropFlipAugment(cfg.image_size, jitter=0.01, noise=0.001, stretch=cfg.stored_size)
        return CropFlipAugment(cfg.image_size, pad=max(1, round(4 * cfg.image_size / 32)), jitter=0.01, noise=0.001)

    def test_view(self, images, cfg):
        # CLIP's own preprocessing, which eoe scores with: the centre square of the whole image (resized on its
        # shorter side, CenterCrop), brought to CLIP's input size by the network. At 224 px that is the centre
        # square of the image stored at 256, not its centre 224 crop.
        return center_crop(images, max(cfg.stored_size, cfg.image_size))

    def objective(self, z, is_oe):
        # normal: -log of the likeliest normal prompt's probability; OE: -log p("something") (eoe training/clip.py)
        log_p = F.log_softmax(z, dim=1)
        return torch.where(is_oe.to(z.device), -log_p[:, -1], -log_p[:, :-1].max(dim=1).values).mean()

    def normality(self, model, z):
        return 1 - F.softmax(z, dim=1)[:, -1]  # eoe's anomaly score is p("something")


class ZeroShotCLIP(BCECLIP):
    """Zero-shot CLIP: eoe's CLIP objective with 0 training epochs (README; its scripts with -e 0)."""
    name = "clip"
    label = "CLIP"
    order = 13
    uses_external_oe = False
    trains = False

    def preset_settings(self, preset, image_size):
        return dict(super().preset_settings(preset, image_size), epochs=0, alpha=0.0, oe="none")
