"""Table VIII: supervised contrastive learning (SupCLR; Khosla et al., "Supervised Contrastive Learning") on
labelled CIFAR-10, and its OE extension, which the paper describes as OECL with SupCLR as the contrastive loss:
the same views, network, optimiser and scores as OECL, with the labels deciding the positives. The temperature is
the run's (0.5, OECL's); the paper states no other. Views are OECL's: without an OE pool (supclr) there are no
OE views."""
from ..losses import mean_norm, supcon
from .oecl import OECL


class SupCLR(OECL):
    name = "supclr"
    label = "SupCLR"
    order = 15
    uses_external_oe = False
    needs_train_labels = True

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        loss = supcon(z1, z2, targets, temperature)
        if z_oe is not None and z_oe.numel():
            loss = loss + alpha * mean_norm(z_oe)
        return loss


class SupCLROE(SupCLR):
    name = "supclr_oe"
    label = "OE + SupCLR"
    order = 16
    uses_external_oe = True
