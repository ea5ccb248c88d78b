"""Alignment + uniformity (Wang & Isola), the loss of the paper's Appendix B (eqs. 12-13, Figs. 5 and 6):

    L_align   = E ||z(x) - z(y)||^2 over positive pairs
    L_uniform = log E exp(-||z(x) - z(y)||^2) over pairs of distinct images (each view set on its own, then averaged)
    loss      = 2 * ((1 - w) * L_align + w * L_uniform)      (w = 0.5 gives L_align + L_uniform)

`align_uniform` uses z = f / ||f|| (on the hypersphere); `align_uniform_raw` uses z = f (no l2-normalisation,
Fig. 5). No OE. The weight w is the run setting `uniformity_weight` (Fig. 6 sweeps it)."""
from functools import lru_cache

import torch
import torch.nn.functional as F

from .base import Method, Views


def align_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    return (z1 - z2).pow(2).sum(dim=1).mean()


@lru_cache(maxsize=None)
def _log_pairs(n: int) -> float:
    """log(n (n - 1)), the number of ordered pairs of distinct rows, as float32's log computes it (math.log, then
    rounded to float32, differs in the last bit for some n, e.g. 54): a host number, computed once per n."""
    return torch.log(torch.tensor(float(n * (n - 1)))).item()


def uniform_loss(z: torch.Tensor) -> torch.Tensor:
    n = len(z)
    d2 = torch.cdist(z, z).pow(2)
    # the off-diagonal entries in row-major order, as d2[~eye] gives them, by shape alone: a boolean mask would
    # size its result from the data (a host sync on CUDA). Without the first entry, each run of n + 1 entries is n
    # off-diagonal ones followed by the next diagonal one.
    off_diagonal = d2.flatten()[1:].view(n - 1, n + 1)[:, :n].flatten()
    return torch.logsumexp(-off_diagonal, dim=0) - _log_pairs(n)


class AlignUniform(Method):
    name = "align_uniform"
    order = 3
    normalize = True

    def __init__(self):
        self.weight = 0.5

    def configure(self, cfg):
        self.weight = cfg.uniformity_weight

    def views(self, x_id, x_oe, augment, gen):
        return Views(augment(x_id, gen), augment(x_id, gen), None)

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        if self.normalize:
            z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        uniform = (uniform_loss(z1) + uniform_loss(z2)) / 2
        return 2 * ((1 - self.weight) * align_loss(z1, z2) + self.weight * uniform)


class AlignUniformRaw(AlignUniform):
    name = "align_uniform_raw"
    order = 4
    normalize = False
