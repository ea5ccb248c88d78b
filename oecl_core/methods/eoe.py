"""The outlier-exposure baselines of eoe (Liznerski et al., "Exposing Outlier Exposure"), as that code trains them
(liznerski/eoe @11054e448223b988c26c636bedb33b4f83b94aca, src/eoe/): HSC, BCE, Focal, DSAD and DSVDD.

Every step is B normal + B OE images (eoe's BalancedConcatLoader), OE labelled anomalous; one view per image with
eoe's augmentation (random crop, flip, tiny colour jitter and noise at 32 px); its networks (CNN32 at 32 px, the
CBAM ResNet-18 at 224 px, both normalising with the normal class's own mean and std); Adam with weight decay 0 and
a x0.1 MultiStepLR. Each score is eoe's anomaly score negated or complemented, so higher = more normal.
docs/methods.md traces every setting to its file.
"""
from __future__ import annotations

import torch

from ..augment import CropFlipAugment, to_float
from ..device import autocast
from ..losses import bce_loss, dsad_loss, dsvdd_loss, focal_loss, hsc_loss
from ..models import EoeNet
from ..scores import center_crop, hsc_score
from .base import Method, Views


def eoe_settings(preset: str, image_size: int) -> dict:
    """eoe's training setup per resolution (train_cifar.py / train_imagenet.py); `smoke` is a CPU-sized budget."""
    common = dict(optimizer="adam", weight_decay=0.0, lr_schedule="multistep", warmup_epochs=0, oe_resample=True,
                  width=1.0, n_aug=0)
    if preset == "smoke":
        return dict(common, lr=1e-3, epochs=20, lr_milestones=(10, 15), batch_size=32, oe_batch_size=32)
    if image_size <= 64:  # train_cifar.py: 200 epochs, milestones 100 / 150, batch 128 (+ 128 OE)
        return dict(common, lr=1e-3, epochs=200, lr_milestones=(100, 150), batch_size=128, oe_batch_size=128)
    # train_imagenet.py (also the 224-px data sets of the OECL paper): 150 epochs, milestones 100 / 125
    return dict(common, lr=1e-3, epochs=150, lr_milestones=(100, 125), batch_size=128, oe_batch_size=128)


class EoeObjective(Method):
    uses_external_oe = True
    flags_collapse = False
    logit = False  # True: the network ends in one logit (BCE, focal)

    def preset_settings(self, preset, image_size):
        return dict(eoe_settings(preset, image_size), alpha=1.0)

    def network(self, cfg):
        return EoeNet(cfg.image_size, cfg.width, logit=self.logit)

    def train_augment(self, cfg):
        # 224 px: RandomCrop(224) anywhere in the image resized to 256 on its shorter side, and a flip, no jitter
        if cfg.stored_size > cfg.image_size:
            return CropFlipAugment(cfg.image_size)
        return CropFlipAugment(cfg.image_size, pad=max(1, round(4 * cfg.image_size / 32)), jitter=0.01, noise=0.001)

    def on_start(self, model, train_images, cfg):
        # cropped before the conversion to float: the same values, and float memory for the crops only
        model.normalise.fit(to_float(center_crop(train_images, cfg.image_size)))

    def views(self, x_id, x_oe, augment, gen):
        oe = None if x_oe is None else augment(x_oe, gen)
        return Views(augment(x_id, gen), None, oe)

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        z = z1 if z_oe is None else torch.cat([z1, z_oe])
        is_oe = torch.arange(len(z), device=z.device) >= len(z1)
        return self.objective(z, is_oe)

    def objective(self, z: torch.Tensor, is_oe: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def normality(self, model, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def test_view(self, images, cfg):
        """The one view a test image is scored on: eoe's Resize(256) + CenterCrop(224) at 224 px."""
        return center_crop(images, cfg.image_size)

    @torch.no_grad()
    def score(self, model, test_images, cfg, train_images=None, progress=None, batch_size=256):
        model.eval()
        device = next(model.parameters()).device
        out = []
        for start in range(0, len(test_images), batch_size):
            x = self.test_view(to_float(test_images[start:start + batch_size].to(device, non_blocking=True)), cfg)
            with autocast(device):
                z = model(x).float()
            out.append(self.normality(model, z))
            if progress:
                progress(min(start + batch_size, len(test_images)), len(test_images))
        return {self.primary_score: torch.cat(out).double().cpu().numpy()}


class HSC(EoeObjective):
    """Hypersphere classification (eoe training/hsc.py): normal -> d(z), OE -> -log(1 - exp(-d(z)) + 1e-9)."""
    name = "hsc"
    label = "HSC"
    order = 5
    primary_score = "exp_neg_d"  # exp(-d(z)) = 1 - eoe's anomaly score

    def objective(self, z, is_oe):
        return hsc_loss(z, is_oe)

    def normality(self, model, z):
        return hsc_score(z)


class DSAD(HSC):
    """Deep SAD as eoe runs it (training/dsad.py): centre at the origin, normal -> ||z||^2, OE -> 1 / (||z||^2 +
    1e-9); scored with HSC's exp(-d(z))."""
    name = "dsad"
    label = "DSAD"
    order = 8

    def objective(self, z, is_oe):
        return dsad_loss(z, is_oe)


class BCE(EoeObjective):
    """Binary cross-entropy on one logit (eoe training/bce.py); the score is 1 - sigmoid(logit) = p(normal)."""
    name = "bce"
    label = "BCE"
    order = 6
    logit = True
    primary_score = "p_normal"

    def objective(self, z, is_oe):
        return bce_loss(z, is_oe)

    def normality(self, model, z):
        return torch.sigmoid(-z.reshape(-1))


class Focal(BCE):
    """Focal loss, gamma 2, no class weight (eoe training/focal.py); scored as BCE."""
    name = "focal"
    label = "Focal"
    order = 7

    def objective(self, z, is_oe):
        return focal_loss(z, is_oe, gamma=2.0)


class DSVDD(EoeObjective):
    """Deep SVDD (eoe training/dsvdd.py): ||z - c||^2 with the centre c fixed before training; no OE. The score
    is -||z - c||^2. eoe computes c as the mean of its initial network's outputs on the normal training images
    (BatchNorm in training mode) and pushes coordinates within eps = 0.1 of zero out to +-0.1."""
    name = "dsvdd"
    label = "DSVDD"
    order = 9
    uses_external_oe = False
    primary_score = "neg_dist_c"

    def preset_settings(self, preset, image_size):
        return dict(eoe_settings(preset, image_size), alpha=0.0, oe="none")

    def network(self, cfg):
        net = EoeNet(cfg.image_size, cfg.width)
        net.register_buffer("center", torch.zeros(net.body.out_dim))
        return net

    @torch.no_grad()
    def on_start(self, model, train_images, cfg, batch_size=256):
        super().on_start(model, train_images, cfg)
        was_training = model.training
        model.train()  # as eoe: BatchNorm uses the batch statistics (their running estimates move, as in eoe)
        x = to_float(center_crop(train_images, cfg.image_size))
        batch_means = torch.stack([model(x[i:i + batch_size]).float().mean(dim=0)
                                   for i in range(0, len(x), batch_size)])
        model.center.copy_(dsvdd_center(batch_means.mean(dim=0)))
        model.train(was_training)

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        return dsvdd_loss(z1, self._center)

    def normality(self, model, z):
        return -(z - model.center).pow(2).sum(dim=1)

    def bind(self, model):
        self._center = model.center


def dsvdd_center(mean: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """eoe's centre fix-up: coordinates with |c| < eps become +-eps by their sign (exact zeros stay zero)."""
    small = mean.abs() < eps
    return torch.where(small & (mean < 0), -eps, torch.where(small & (mean > 0), eps, mean))
