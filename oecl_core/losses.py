"""Loss functions. Public signatures are part of the library's API."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent loss, averaged over all 2B anchors.

    z1, z2: un-normalised projections of two views, shape (B, D); row i of z1 and row i of z2 are the
    positive pair, the other 2B - 2 views of the batch are the negatives.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1 and z2 must both have shape (B, D); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = z @ z.t() / temperature
    # An anchor is never its own negative: drop the diagonal from the softmax.
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    # built on z's device: a copy from the host would wait for the device (one sync per step on CUDA)
    positives = torch.cat([torch.arange(b, 2 * b, device=z.device), torch.arange(0, b, device=z.device)])
    return F.cross_entropy(logits, positives)


def supcon(z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, L_out): over the 2B views, anchor i's positives P(i) are
    every other view with its label; loss = mean over anchors of -1/|P(i)| sum_p log softmax_{a != i}(z_i . z_a / t)_p
    on l2-normalised projections. With every label distinct it is nt_xent."""
    if z1.shape != z2.shape or z1.dim() != 2 or len(labels) != len(z1):
        raise ValueError(f"z1, z2 must be (B, D) and labels (B,); got {tuple(z1.shape)}, {tuple(z2.shape)}, "
                         f"{tuple(labels.shape)}")
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    y = torch.cat([labels, labels]).to(z.device)
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    log_prob = F.log_softmax((z @ z.t() / temperature).masked_fill(self_mask, float("-inf")), dim=1)
    positives = (y[:, None] == y[None, :]) & ~self_mask
    return -(log_prob.masked_fill(~positives, 0).sum(dim=1) / positives.sum(dim=1)).mean()


def mean_norm(z: torch.Tensor) -> torch.Tensor:
    """mean_i ||z[i]||_2 (un-squared): the OE penalty of eq. (7)."""
    return z.float().norm(dim=1).mean()


def oecl_loss(z1: torch.Tensor, z2: torch.Tensor, z_oe: torch.Tensor, alpha: float,
              temperature: float = 0.5) -> torch.Tensor:
    """OECL, eq. (7): NT-Xent on the ID views plus alpha times the mean l2 norm of every OE view.

    z_oe stacks the un-normalised projections of every OE view, shape (M, D).
    """
    loss = nt_xent(z1, z2, temperature)
    if z_oe is None or z_oe.numel() == 0:
        return loss
    return loss + alpha * mean_norm(z_oe)


# Outlier-exposure baselines of eoe (Liznerski et al., "Exposing Outlier Exposure"; liznerski/eoe): every batch holds
# normal and OE samples, `is_oe` (bool, (B,)) marks the OE ones, which are labelled anomalous.


def hsc_distance(z: torch.Tensor) -> torch.Tensor:
    """The pseudo-Huber distance of HSC: d(z) = sqrt(||z||^2 + 1) - 1, per row of z (B, D)."""
    return (z.float().pow(2).sum(dim=1) + 1).sqrt() - 1


def hsc_loss(z: torch.Tensor, is_oe: torch.Tensor) -> torch.Tensor:
    """Hypersphere classification: mean over the batch of d(z) for normal samples and
    -log(1 - exp(-d(z)) + 1e-9) for OE samples (eoe's form, 1e-9 inside the log)."""
    d = hsc_distance(z)
    oe = is_oe.to(device=d.device, dtype=torch.bool)
    return torch.where(oe, -torch.log(1 - torch.exp(-d) + 1e-9), d).mean()


def bce_loss(logit: torch.Tensor, is_oe: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on one logit per sample whose sigmoid is the probability of being anomalous (OE = 1)."""
    return F.binary_cross_entropy_with_logits(logit.float().reshape(-1), is_oe.float().reshape(-1).to(logit.device))


def focal_loss(logit: torch.Tensor, is_oe: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss without class weighting: mean of -(1 - p_t)^gamma log p_t, p_t = the probability of the true label
    (anomalous for OE, normal otherwise), with p_t clamped to [1e-7, 1 - 1e-7] in the weight as eoe does
    (training/focal.py); gamma = 0 is bce_loss."""
    logit, target = logit.float().reshape(-1), is_oe.float().reshape(-1).to(logit.device)
    bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
    p_t = torch.exp(-bce).clamp(1e-7, 1 - 1e-7)
    return ((1 - p_t).pow(gamma) * bce).mean()


def dsad_loss(z: torch.Tensor, is_oe: torch.Tensor) -> torch.Tensor:
    """Deep SAD as eoe runs it (training/dsad.py), centre at the origin: mean of ||z||^2 for normal samples and
    1 / (||z||^2 + 1e-9) for OE samples."""
    sq = z.float().pow(2).sum(dim=1)
    oe = is_oe.to(device=sq.device, dtype=torch.bool)
    return torch.where(oe, 1 / (sq + 1e-9), sq).mean()


def dsvdd_loss(z: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """Deep SVDD: mean of ||z - c||^2 over the batch (normal samples only; no OE)."""
    return (z.float() - center.float()).pow(2).sum(dim=1).mean()
