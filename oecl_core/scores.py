"""Anomaly scores on the contrastive feature f (the projection before l2-normalisation).

Convention: higher = more normal. With V augmented views t_1..t_V of an image x:
    s_l2     = ||f(x)||^2                     (clean view; eq. 9 / 14)
    s_l2_ens = mean_v ||f(t_v(x))||^2         (eq. 15)
    s_mu     = ||mean_v f(t_v(x))||^2         (eq. 10 / 16)
    sim_s_mu = sim / E_train[sim] + s_mu / E_train[s_mu], sim = max cosine of f(x) to the training set
               (CSI's way of adding the nearest-neighbour similarity, each term scaled by its training mean)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .augment import Canvas, to_float
from .device import autocast
from .forward_cap import max_forward_views

# Every score a run records (metrics.json's auroc): the one list of their names.
SCORE_NAMES = ("s_l2", "s_l2_ens", "s_mu", "sim_s_mu")
# The scores of an image on its own (feature_stats); sim_s_mu also needs the training images (score_images).
IMAGE_SCORES = SCORE_NAMES[:3]


def s_l2(features: torch.Tensor) -> torch.Tensor:
    """features (N, D) -> ||f||^2, shape (N,)."""
    return features.float().pow(2).sum(dim=-1)


def s_mu(features: torch.Tensor) -> torch.Tensor:
    """features (N, V, D) -> ||mean over V||^2, shape (N,)."""
    return features.float().mean(dim=1).pow(2).sum(dim=-1)


def s_l2_ens(features: torch.Tensor) -> torch.Tensor:
    """features (N, V, D) -> mean over V of ||f||^2, shape (N,)."""
    return features.float().pow(2).sum(dim=-1).mean(dim=1)


def hsc_score(z: torch.Tensor) -> torch.Tensor:
    """HSC's score, higher = more normal: exp(-d(z)) with d(z) = sqrt(||z||^2 + 1) - 1, i.e. one minus eoe's anomaly
    score 1 - exp(-d(z)); z (N, D) -> (N,)."""
    from .losses import hsc_distance

    return torch.exp(-hsc_distance(z))


def max_cosine(queries: torch.Tensor, bank: torch.Tensor, exclude_self: bool = False,
               chunk: int = 4096) -> torch.Tensor:
    """Largest cosine similarity of each query to the bank; exclude_self drops the diagonal (queries == bank)."""
    bank = F.normalize(bank.float(), dim=1)
    out = []
    for start in range(0, len(queries), chunk):
        q = F.normalize(queries[start:start + chunk].float(), dim=1)
        sim = q @ bank.t()
        if exclude_self:
            rows = torch.arange(len(q), device=q.device)
            sim[rows, rows + start] = -float("inf")
        out.append(sim.max(dim=1).values)
    return torch.cat(out)


def center_crop(x, size: int) -> torch.Tensor:
    """The centre size x size view (the test view); of each image of a Canvas, its own centre (Canvas.centre)."""
    if isinstance(x, Canvas):
        return x.centre(size)
    h, w = x.shape[-2:]
    if h == size and w == size:
        return x
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


@torch.no_grad()
def feature_stats(model, images: torch.Tensor, augment, n_aug: int = 32, batch_size: int = 256,
                  seed: int = 0, image_size: int | None = None, forward_batch: int = 2048, progress=None,
                  mu_with_clean: bool = False) -> dict:
    """Streams over the images and their n_aug augmented views without ever holding all views:
    returns the clean-view features (N, D) and per-image s_l2, s_l2_ens and s_mu (float64 numpy).
    mu_with_clean: s_mu averages the clean view with the n_aug views (n_aug + 1 in all, as the public code)."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    size = image_size or images.shape[-1]
    if n_aug:  # augmented views are forwarded together: capped, since past 2^31 elements 32-bit indexing fails
        forward_batch = min(forward_batch, max_forward_views(model, size))
    views_per_pass = max(1, min(n_aug, forward_batch // max(1, batch_size)))
    clean_feats, ens, mu = [], [], []
    for start in range(0, len(images), batch_size):
        x = to_float(images[start:start + batch_size].to(device, non_blocking=True))
        with autocast(device):
            clean = model(center_crop(x, size)).float()
        feat_sum = torch.zeros_like(clean)
        sq_sum = torch.zeros(len(x), device=device)
        done = 0
        while done < n_aug:
            k = min(views_per_pass, n_aug - done)
            views = torch.cat([augment(x, gen) for _ in range(k)])
            with autocast(device):
                f = model(views).float().view(k, len(x), -1)
            feat_sum += f.sum(dim=0)
            sq_sum += f.pow(2).sum(dim=-1).sum(dim=0)
            done += k
        clean_feats.append(clean)
        if n_aug:
            ens.append(sq_sum / n_aug)
            mean = (feat_sum + clean) / (n_aug + 1) if mu_with_clean else feat_sum / n_aug
            mu.append(mean.pow(2).sum(dim=-1))
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    clean = torch.cat(clean_feats)
    out = {"features": clean, "s_l2": s_l2(clean).double().cpu().numpy()}
    if n_aug:
        out["s_l2_ens"] = torch.cat(ens).double().cpu().numpy()
        out["s_mu"] = torch.cat(mu).double().cpu().numpy()
    return out


@torch.no_grad()
def score_images(model, test_images: torch.Tensor, augment, train_images: torch.Tensor | None = None,
                 n_aug: int = 32, batch_size: int = 256, seed: int = 0, image_size: int | None = None,
                 train_reference: int = 1000, progress=None, mu_with_clean: bool = False,
                 forward_batch: int = 2048) -> dict[str, np.ndarray]:
    """Every score of SCORE_NAMES for the test images (sim_s_mu only when training images are given).
    forward_batch: views per forward pass (the scores do not depend on it beyond float rounding)."""
    test = feature_stats(model, test_images, augment, n_aug, batch_size, seed, image_size, progress=progress,
                         mu_with_clean=mu_with_clean, forward_batch=forward_batch)
    scores = {k: v for k, v in test.items() if k != "features"}
    if train_images is not None and n_aug:
        bank = feature_stats(model, train_images, augment, 0, batch_size, seed, image_size)["features"]
        # Training means of both terms, from a fixed subset (the nearest neighbour of a training image is itself:
        # skip it).
        ref = torch.arange(min(train_reference, len(train_images)))
        ref_stats = feature_stats(model, train_images[ref], augment, n_aug, batch_size, seed + 1, image_size,
                                  mu_with_clean=mu_with_clean, forward_batch=forward_batch)
        train_sim = (max_cosine(bank[ref], bank, exclude_self=True).double().cpu().numpy() if len(bank) > 1
                     else np.ones(1))
        test_sim = max_cosine(test["features"], bank).double().cpu().numpy()
        scores["sim_s_mu"] = (test_sim / max(train_sim.mean(), 1e-12)
                              + test["s_mu"] / max(ref_stats["s_mu"].mean(), 1e-12))
    return scores
