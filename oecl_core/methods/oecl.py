"""OECL, eq. (7): SimCLR on the ID views plus alpha * mean ||f|| over two augmented views of each OE image.
OE images are not negatives in the contrastive term (as in the public code)."""
import torch

from ..losses import oecl_loss
from .base import Method, Views


class OECL(Method):
    name = "oecl"
    label = "OECL"
    order = 1
    multi_process = True  # checked in tests/test_distributed.py
    paper_method = True
    uses_external_oe = True
    oe_optional = True

    def views(self, x_id, x_oe, augment, gen):
        oe = None if x_oe is None else torch.cat([augment(x_oe, gen), augment(x_oe, gen)])
        return Views(augment(x_id, gen), augment(x_id, gen), oe)

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        return oecl_loss(z1, z2, z_oe, alpha, temperature)
