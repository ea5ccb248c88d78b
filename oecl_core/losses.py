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
    positives = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, positives)


def mean_norm(z: torch.Tensor) -> torch.Tensor:
    """mean_i ||z[i]||_2 (un-squared): the OE penalty of eq. (7)."""
    return z.float().norm(dim=1).mean()


def oecl_loss(z1: torch.Tensor, z2: torch.Tensor, z_oe: torch.Tensor, alpha: float, temperature: float = 0.5) -> torch.Tensor:
    """OECL, eq. (7): NT-Xent on the ID views plus alpha times the mean l2 norm of every OE view.

    z_oe stacks the un-normalised projections of every OE view, shape (M, D).
    """
    loss = nt_xent(z1, z2, temperature)
    if z_oe is None or z_oe.numel() == 0:
        return loss
    return loss + alpha * mean_norm(z_oe)
