"""CSI (Tack et al., "CSI: Novelty Detection via Contrastive Learning on Distributionally Shifted Instances"),
followed from alinlab/CSI @60742b60a16501350eca823fcc910ddd10f7a379 (training/unsup/simclr_CSI.py,
models/base_model.py, evals/ood_pre.py), rotation shifts, one-class setting.

Training: each image is flipped at random twice (two views), each view rotated by k = 0..3 and then augmented by
SimCLR's augmentation without flip; NT-Xent (temperature 0.5) over all 8B views, where a rotated image is another
instance (only the same image, same rotation, other view is positive), plus the cross-entropy of a 4-way
shift classifier on every view, both weighted 1. Network: ResNet-18, a projection head Linear(d, d) - ReLU -
Linear(d, 128) (no BatchNorm, unlike OECL's) and the shift head Linear(d, 4).

At 224 px CSI's ImageNet loader crops first (datasets/datasets.py: Resize(256), RandomResizedCrop(224) and a flip
of the whole image, per view) and its GPU augmentation is colour only (models/classifier.py): there each view is a
resized crop with a random flip, then rotated by k = 0..3, then jittered per rotated view; likewise at scoring.

Score (ood_pre.py): for each rotation k, the mean z_k(x) of the projections of 10 augmented views (random flip,
rotation k, SimCLR augmentation with the crop area fixed at 0.54), and the mean shift logit l_k(x) for class k;
from the training images the unit vectors of their z_k and the weights w_sim_k = 1 / mean ||z_k|| and
w_shi_k = 1 / mean l_k; score = 1/4 sum_k [w_sim_k * max_m <z_k(x), unit(z_k(train_m))> + w_shi_k * l_k(x)].
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import Canvas, SimCLRAugment, rotate90, to_float
from ..device import autocast
from ..losses import nt_xent
from ..models import HeadsNet, ResNet18
from .base import Method, Views

PROJ_DIM = 128
SCORE_CROP_AREA = 0.54  # --resize_factor 0.54 --resize_fix in CSI's evaluation command


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(len(x), generator=gen, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def crops_first(cfg) -> bool:
    """Whether the run follows CSI's 224-px pipeline (a crop of the larger stored image before the rotations)."""
    return cfg.stored_size > cfg.image_size


def rotations(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([rotate90(x, k) for k in range(4)])


def crop_and_flip(augment: SimCLRAugment, x, gen: torch.Generator) -> torch.Tensor:
    """One resized crop and random flip per image: the crop flips at 224 px (flip_p 0.5, CSI's loader); an
    augmentation without flip (images of different shapes at the training size) is followed by random_flip."""
    v = augment.crop(x, gen)
    return v if augment.flip_p > 0 else random_flip(v, gen)


class CSI(Method):
    name = "csi"
    label = "CSI"
    order = 12
    flags_collapse = False
    primary_score = "csi_score"
    crop_first = False  # set by configure

    def preset_settings(self, preset, image_size):
        # CSI's defaults (common/common.py, README): 1000 epochs, LARS (trust 0.001) over SGD, lr 0.1 warmed up
        # x10 over 10 epochs then cosine stepped per iteration, weight decay 1e-6, 32 images per GPU on 4 GPUs,
        # crop scale (0.08, 1), 10 augmented samples per image at test time.
        common = dict(optimizer="lars_csi", lr=0.1, momentum=0.9, weight_decay=1e-6, lr_schedule="step",
                      lr_warmup_multiplier=10.0, temperature=0.5, crop_scale_min=0.08, n_aug=10, warmup_epochs=0,
                      oe_resample=True)
        if preset == "smoke":  # the smoke preset's SGD, as its contrastive runs (LARS needs CSI's 1000 epochs)
            return dict(common, optimizer="sgd", weight_decay=5e-4, lr_warmup_multiplier=1.0, lr_warmup_epochs=0,
                        epochs=30, batch_size=16, width=0.125, n_aug=4)
        return dict(common, epochs=1000, batch_size=128, lr_warmup_epochs=10, width=1.0)

    def network(self, cfg):
        encoder = ResNet18(cfg.stem, cfg.width, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        d = encoder.out_dim
        return HeadsNet(encoder, {"simclr": nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, PROJ_DIM)),
                                  "shift": nn.Linear(d, 4)})

    def configure(self, cfg):
        self.crop_first = crops_first(cfg)

    def train_augment(self, cfg):
        # at 224 px the crop flips (CSI's loader); at 32 px random_flip does, before the rotations
        return SimCLRAugment(crop_scale_min=cfg.crop_scale_min, flip_p=0.5 if crops_first(cfg) else 0.0,
                             output_size=cfg.image_size)

    def views(self, x_id, x_oe, augment, gen):
        labels = torch.arange(4, device=x_id.device).repeat_interleave(len(x_id))
        if self.crop_first or isinstance(x_id, Canvas):  # images of different shapes cannot be rotated together
            pair = [augment.colour(rotations(crop_and_flip(augment, x_id, gen)), gen) for _ in range(2)]
            return Views(pair[0], pair[1], None, targets=labels)
        shifted = []
        for _ in range(2):
            v = random_flip(x_id, gen)
            shifted.append(rotations(v))
        return Views(augment(shifted[0], gen), augment(shifted[1], gen), None, targets=labels)

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        sim = nt_xent(z1[:, :PROJ_DIM], z2[:, :PROJ_DIM], temperature)
        shift = F.cross_entropy(torch.cat([z1[:, PROJ_DIM:], z2[:, PROJ_DIM:]]), torch.cat([targets, targets]))
        return sim + shift

    @torch.no_grad()
    def shifted_features(self, model, images: torch.Tensor, cfg, seed: int, batch_size: int = 128):
        """Per rotation k: the mean projection (N, 128) and the mean logit of shift class k (N,) over n_aug views."""
        model.eval()
        device = next(model.parameters()).device
        first = crops_first(cfg)
        augment = SimCLRAugment(crop_scale_min=SCORE_CROP_AREA, crop_scale_max=SCORE_CROP_AREA,
                                flip_p=0.5 if first else 0.0, output_size=cfg.image_size)
        gen = torch.Generator(device=device).manual_seed(seed)
        n_aug = max(1, cfg.n_aug)
        z = torch.zeros(4, len(images), PROJ_DIM, device=device)
        logit = torch.zeros(4, len(images), device=device)

        def add(k, rows, views):
            with autocast(device):
                out = model(views).float()
            z[k, rows] += out[:, :PROJ_DIM] / n_aug
            logit[k, rows] += out[:, PROJ_DIM + k] / n_aug

        for start in range(0, len(images), batch_size):
            x = to_float(images[start:start + batch_size].to(device, non_blocking=True))  # no stream sync
            rows = slice(start, start + len(x))
            if first or isinstance(x, Canvas):  # ood_pre.py at 224 px: each crop (and flip) in its 4 rotations
                for _ in range(n_aug):
                    v = crop_and_flip(augment, x, gen)
                    for k in range(4):
                        add(k, rows, augment.colour(rotate90(v, k), gen))
                continue
            for k in range(4):
                for _ in range(n_aug):
                    add(k, rows, augment(rotate90(random_flip(x, gen), k), gen))
        return z, logit

    @torch.no_grad()
    def score(self, model, test_images, cfg, train_images=None, progress=None):
        if train_images is None:
            raise ValueError("the CSI score needs the training images (its weights and nearest neighbours)")
        train_z, train_logit = self.shifted_features(model, train_images, cfg, cfg.seed + 20_000)
        test_z, test_logit = self.shifted_features(model, test_images, cfg, cfg.seed + 10_000)
        total = torch.zeros(len(test_images), device=test_z.device)
        for k in range(4):
            w_sim = 1 / train_z[k].norm(dim=1).mean()
            w_shi = 1 / train_logit[k].mean()
            axis = F.normalize(train_z[k], dim=1)
            sim = torch.cat([(test_z[k][i:i + 4096] @ axis.t()).max(dim=1).values
                             for i in range(0, len(test_z[k]), 4096)])
            total += w_sim * sim + w_shi * test_logit[k]
        if progress:
            progress(len(test_images), len(test_images))
        return {self.primary_score: (total / 4).double().cpu().numpy()}
