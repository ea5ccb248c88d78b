"""Method registry: a new method is one module with a Method subclass, added here."""
from .align_uniform import AlignUniform, AlignUniformRaw
from .base import Method, Views
from .clip import BCECLIP, ZeroShotCLIP
from .csi import CSI
from .eoe import BCE, DSAD, DSVDD, HSC, Focal
from .gt_plus import GTPlus, GTPlusOE
from .oecl import OECL
from .self_oecl import SelfOECL
from .simclr import SimCLR
from .supclr import SupCLR, SupCLROE

METHODS: dict[str, type[Method]] = {m.name: m for m in (SimCLR, OECL, SelfOECL, AlignUniform, AlignUniformRaw,
                                                       HSC, BCE, Focal, DSAD, DSVDD, GTPlus, GTPlusOE, CSI, ZeroShotCLIP, BCECLIP,
                                                       SupCLR, SupCLROE)}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]()
    except KeyError:
        raise ValueError(f"unknown method {name!r}; valid choices: {', '.join(METHODS)}") from None


__all__ = ["Method", "Views", "METHODS", "get_method"]
