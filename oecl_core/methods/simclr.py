"""Vanilla SimCLR (the paper's alpha = 0 baseline): NT-Xent on two views, no OE."""
from ..losses import nt_xent
from .base import Method, Views


class SimCLR(Method):
    name = "simclr"
    label = "SimCLR"
    order = 0
    multi_process = True  # OECL's step without the OE term (tests/test_distributed.py checks OECL)
    paper_method = True

    def views(self, x_id, x_oe, augment, gen):
        return Views(augment(x_id, gen), augment(x_id, gen), None)

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        return nt_xent(z1, z2, temperature)
