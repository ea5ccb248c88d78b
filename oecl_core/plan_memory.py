"""The host and GPU memory of the images that keep their aspect ratio, as `plan` prints it (oecl_core/plan.py)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .methods import get_method
from .plan_sizes import data_sizes


@dataclass(frozen=True)
class Footprint:
    """The stored images of a data set or OE pool that keeps their aspect ratio (oecl_core/data/core.py), against
    the centre squares of the former layout: count and canvas per split (train, test; an OE pool: its one split)."""
    name: str
    counts: tuple[int, ...]
    side: int  # the stored shorter side
    widths: tuple[int, ...]  # the canvas width per split
    measured: bool  # the widths are the prepared manifest's (else the widest possible canvas, an upper bound)

    @property
    def square_bytes(self) -> int:
        return 3 * self.side * self.side

    def bytes(self, split: int = 0) -> int:
        return 3 * self.side * self.widths[split]

    def total(self, square: bool = False) -> int:
        return sum(n * (self.square_bytes if square else self.bytes(i)) for i, n in enumerate(self.counts))


def footprint(name: str, side: int, data_root: Path | None = None) -> Footprint | None:
    """The footprint of a prepared data set or OE pool read at `side`, None if stored square there."""
    from .data.registry import default_data_root

    return _footprint(name, side, Path(data_root or default_data_root()))


@lru_cache(maxsize=None)
def _footprint(name: str, side: int, data_root: Path) -> Footprint | None:
    import inspect

    from .data.core import canvas_width, keeps_aspect
    from .data.prepared import is_prepared, read_manifest
    from .data.registry import is_prepared_set
    from .data.sets import SETS

    if not is_prepared_set(name) or not keeps_aspect(side):
        return None
    folder = data_root / name
    splits = ("train",) if SETS[name].oe_only else ("train", "test")
    if is_prepared(folder):
        info = read_manifest(folder)["splits"]
        return Footprint(name, tuple(info[s]["count"] for s in splits), side,
                         tuple(info[s]["image_size"][1] for s in splits), True)
    if SETS[name].oe_only:  # an OE pool holds the `count` images its preparer samples by default
        counts = (inspect.signature(SETS[name].prepare).parameters["count"].default,)
    else:
        counts = tuple(sum(n) for n in data_sizes(name, data_root)[:2])
    return Footprint(name, counts, side, (canvas_width(side),) * len(splits), False)


def memory_lines(costs: list, data_root: Path | None = None) -> list[str]:
    """The host and GPU memory the aspect-true images of a target's runs (costs: plan.RunCost) take, against the
    former centre squares."""
    gib = lambda n: f"{n / 2 ** 30:,.2f} GiB"  # noqa: E731
    found, largest = {}, None
    for c in costs:
        side = c.cfg.stored_size or c.cfg.image_size
        data = footprint(c.cfg.dataset, side, data_root)
        oe = footprint(c.cfg.oe, side, data_root) if c.cfg.alpha > 0 and get_method(c.cfg.method).uses_external_oe \
            else None
        for f in (data, oe, footprint(c.cfg.anomaly, side, data_root) if c.cfg.anomaly else None):
            if f is not None:
                found[f.name] = f
        if data is None and oe is None:
            continue
        # on the GPU for the whole run: its normal training images and its OE pool
        on_gpu = [(c.n_train, data) if data else None, (oe.counts[0], oe) if oe else None]
        sizes = [sum(n * (f.square_bytes if square else f.bytes()) for n, f in filter(None, on_gpu))
                 for square in (True, False)]
        if largest is None or sizes[1] > largest[1][1]:
            largest = (c, sizes, all(f.measured for _, f in filter(None, on_gpu)))
    if not found:
        return []
    lines = ["\nimages that keep their aspect ratio (uint8; the run's data set in host memory, its normal training "
             "images and OE pool on the GPU):",
             f"{'data set':<22} {'images':>16} {'bytes per image (square -> kept)':>34} {'all images':>26}"]
    for f in sorted(found.values(), key=lambda f: f.name):
        at_most = "" if f.measured else "<= "
        per = " / ".join(dict.fromkeys(f"{f.bytes(i):,}" for i in range(len(f.counts))))
        lines.append(f"{f.name:<22} {' + '.join(f'{n:,}' for n in f.counts):>16} "
                     f"{f'{f.square_bytes:,} -> {at_most}{per}':>34} "
                     f"{f'{gib(f.total(True))} -> {at_most}{gib(f.total())}':>26}")
    if largest is not None:
        c, (before, after), measured = largest
        lines.append(f"largest on the GPU: {c.run.dataset} {c.run.benchmark} class {c.run.cls} ({c.cfg.method}, "
                     f"{c.n_train:,} training images + OE {c.cfg.oe}): {gib(before)} -> {'' if measured else '<= '}"
                     f"{gib(after)}")
    if any(not f.measured for f in found.values()):
        lines.append("<= : not prepared here, so the widest canvas (shorter side x MAX_ASPECT, "
                     "oecl_core/data/core.py); a prepared set's manifest gives its own")
    return lines
