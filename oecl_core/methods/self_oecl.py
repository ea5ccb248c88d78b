"""self-OECL, eq. (8): CSI-style shifting with S = {I, R90} inside the contrastive term, and the training
images rotated by 180 and 270 degrees as the OE set under the norm penalty.

NT-Xent runs over both rotations at once: views with the same rotation of the same image are positives,
the other rotation of the same image is a negative (a shifted image is another instance). As in the
public code there is no rotation-classification head, and scores use unrotated images."""
import torch

from ..augment import cat_images, rotate90
from ..losses import oecl_loss
from .base import Method, Views


class SelfOECL(Method):
    name = "self_oecl"
    label = "self-OECL"
    order = 2
    multi_process = True  # checked in tests/test_distributed.py
    paper_method = True
    default_epochs_factor = 2
    oe_from_id_images = True  # its OE set is its rotated ID images: alpha is kept without an OE pool

    def preset_settings(self, preset, image_size):
        # 1000 epochs in the paper; the public code's self-OECL script (yaml/oecl_self) runs batch 32 on one GPU and
        # hard-codes alpha = 1 on every data set
        return {"paper": dict(epochs=1000), "official": dict(epochs=1000, batch_size=32, oe_batch_size=32, alpha=1.0),
                "smoke": dict(epochs=100)}.get(preset, {})

    def oe_probe(self, id_images, oe_images):
        # its OE set is the training images rotated by 180 and 270 degrees
        return None if id_images is None else cat_images([rotate90(id_images, 2), rotate90(id_images, 3)])

    def views(self, x_id, x_oe, augment, gen):
        v1, v2 = augment(x_id, gen), augment(x_id, gen)
        oe = torch.cat([rotate90(v, k) for v in (v1, v2) for k in (2, 3)])
        return Views(torch.cat([v1, rotate90(v1, 1)]), torch.cat([v2, rotate90(v2, 1)]), oe)

    def loss(self, z1, z2, z_oe, alpha, temperature, targets=None):
        return oecl_loss(z1, z2, z_oe, alpha, temperature)
