"""GT+ (Hendrycks et al., "Using Self-Supervised Learning Can Improve Model Robustness and Uncertainty"): predict
which geometric transformation an image underwent, score an image by how confidently its transformations are
recognised. Followed: the one-class code of hendrycks/ss-ood @8051356592a152614ab7251fd15084dd86eb9104 (train.py,
test.py; ImageNet-30 at 224 px).

At 224 px: every image is shifted by (tx, ty) in {0, -s, +s}^2 (s = a quarter of the side, 56 px; reflected
border) and rotated by all four multiples of 90 degrees; three softmax heads (tx, ty, rotation) on ss-ood's CBAM
ResNet-18; loss = the mean of their three cross-entropies; score = the sum over all 36 transformations of
p_tx + p_ty + p_rot of the true labels. ss-ood enumerates the 9 shifts of each image within an epoch (its data set
is 9x the images); here each pass draws one shift per image, so one ss-ood epoch is 9 of ours.
At 32 px ss-ood publishes no one-class code; the rotation head alone is used (the translation heads are the
224-px code's), on the contrastive methods' CIFAR ResNet-18.

`gt_plus_oe` adds outlier exposure as in Hendrycks et al.'s OE paper: on OE images (transformed the same way)
each head's cross-entropy to the uniform distribution, weighted by alpha = 0.5.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import CropFlipAugment, crop_batch, rotate90, to_float
from ..device import autocast, constant
from ..models import EoeResNet18, HeadsNet, ResNet18
from ..scores import center_crop
from .base import Method, Views

SHIFT_CLASSES = 3  # 0, -s, +s


def shift_images(x: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, s: int) -> torch.Tensor:
    """Translate each image by (dx, dy) = (value of class tx, value of class ty), class 0/1/2 = 0/-s/+s pixels,
    content moving right / down for positive values; the border is reflected (OpenCV's BORDER_REFLECT_101, as
    ss-ood, which is PyTorch's 'reflect' padding)."""
    values = constant((0, -s, s), x.device)  # cached: no host copy per step
    padded = F.pad(x, [s] * 4, mode="reflect")
    return crop_batch(padded, s - values[ty], s - values[tx], x.shape[2], x.shape[3])


def all_rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cat over k = 0..3 of x rotated by k * 90 degrees, and the labels k."""
    out = torch.cat([rotate90(x, k) for k in range(4)])
    return out, torch.arange(4, device=x.device).repeat_interleave(len(x))


class GTPlus(Method):
    name = "gt_plus"
    label = "GT+"
    order = 10
    flags_collapse = False
    primary_score = "gt_score"

    def configure(self, cfg):
        self.translate = cfg.image_size > 64
        self.shift = cfg.image_size // 4

    def preset_settings(self, preset, image_size):
        # ss-ood train.py: SGD, Nesterov, lr 0.1, momentum 0.9, weight decay 5e-4, batch 64, cosine per step,
        # 5 epochs of 9 shifts per image (= 45 passes here); no warm-up, no OE term in gt_plus.
        common = dict(optimizer="sgd_nesterov", lr=0.1, momentum=0.9, weight_decay=5e-4, lr_schedule="step",
                      lr_warmup_multiplier=1.0, lr_warmup_epochs=0, warmup_epochs=0, width=1.0, n_aug=0,
                      oe_resample=True)
        if preset == "smoke":
            return dict(common, epochs=30, batch_size=32, oe_batch_size=32, width=0.125)
        return dict(common, epochs=45, batch_size=64, oe_batch_size=64)

    def network(self, cfg):
        if cfg.image_size > 64:
            return HeadsNet(EoeResNet18(cfg.width, out_dim=2 * SHIFT_CLASSES + 4), {"all": nn.Identity()})
        encoder = ResNet18(cfg.stem, cfg.width, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        return HeadsNet(encoder, {"rotation": nn.Linear(encoder.out_dim, 4)})

    def train_augment(self, cfg):
        # ss-ood: RandomCrop(224) of the 256-px image and a flip before the transformations (32 px: pad 4)
        pad = 0 if cfg.stored_size > cfg.image_size else max(1, round(cfg.image_size / 8))
        return CropFlipAugment(cfg.image_size, pad=pad)

    def transform(self, x: torch.Tensor, gen: torch.Generator | None, tx=None, ty=None):
        """The transformed batch (4 rotations of every, possibly shifted, image) and its labels (N, 3) =
        (tx, ty, rotation); without translation heads tx = ty = 0."""
        b = len(x)
        if self.translate:
            if tx is None:
                tx, ty = torch.randint(0, SHIFT_CLASSES, (2, b), generator=gen, device=x.device)
            x = shift_images(x, tx, ty, self.shift)
        else:
            tx = ty = torch.zeros(b, dtype=torch.long, device=x.device)
        rotated, k = all_rotations(x)
        return rotated, torch.stack([tx.repeat(4), ty.repeat(4), k], dim=1)

    def views(self, x_id, x_oe, augment, gen):
        inputs, labels = self.transform(augment(x_id, gen), gen)
        oe = None if x_oe is None else self.transform(augment(x_oe, gen), gen)[0]
        return Views(inputs, None, oe, targets=labels)

    def head_logits(self, z: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        """[(logits, label column)] per head: (tx, ty, rotation) with translation, else rotation only."""
        if self.translate:
            return [(z[:, 0:3], 0), (z[:, 3:6], 1), (z[:, 6:10], 2)]
        return [(z[:, 0:4], 2)]

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        heads = self.head_logits(z1)
        loss = sum(F.cross_entropy(logits, targets[:, col]) for logits, col in heads) / len(heads)
        if z_oe is not None and alpha > 0:
            # cross-entropy to the uniform distribution: -mean over classes of log softmax, per head
            uniform = sum(-F.log_softmax(logits, dim=1).mean(dim=1).mean() for logits, _ in self.head_logits(z_oe))
            loss = loss + alpha * uniform / len(heads)
        return loss

    @torch.no_grad()
    def score(self, model, test_images, cfg, train_images=None, progress=None, batch_size=64):
        """sum over all transformations of the softmax probabilities of the true labels (ss-ood test.py)."""
        self.configure(cfg)
        model.eval()
        device = next(model.parameters()).device
        shifts = [(a, b) for a in range(SHIFT_CLASSES) for b in range(SHIFT_CLASSES)] if self.translate else [(0, 0)]
        out = []
        for start in range(0, len(test_images), batch_size):
            batch = test_images[start:start + batch_size].to(device, non_blocking=True)  # no stream sync
            x = center_crop(to_float(batch), cfg.image_size)
            total = torch.zeros(len(x), device=device)
            for a, b in shifts:
                n = len(x)
                full = lambda v, n=n: torch.full((n,), v, dtype=torch.long, device=device)
                inputs, labels = self.transform(x, None, full(a), full(b))
                with autocast(device):
                    z = model(inputs).float()
                for logits, col in self.head_logits(z):
                    p = F.softmax(logits, dim=1).gather(1, labels[:, col:col + 1]).squeeze(1)
                    total += p.view(4, len(x)).sum(dim=0)
            out.append(total)
            if progress:
                progress(min(start + batch_size, len(test_images)), len(test_images))
        return {self.primary_score: torch.cat(out).double().cpu().numpy()}


class GTPlusOE(GTPlus):
    name = "gt_plus_oe"
    label = "GT+ (OE)"
    order = 11
    uses_external_oe = True

    def preset_settings(self, preset, image_size):
        return dict(super().preset_settings(preset, image_size), alpha=0.5)
