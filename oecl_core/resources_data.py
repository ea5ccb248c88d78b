"""The data sets a target's runs read, for `python -m oecl_core plan` (part of oecl_core/resources.py, which says
what is counted): how each is obtained, its size on disk as downloaded and as prepared, and the jobs that wait for
it."""
from __future__ import annotations

import inspect
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

GB = 1e9


def fmt_bytes(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


@dataclass(frozen=True)
class Size:
    bytes: int | None  # None: not known
    source: str
    estimate: bool  # rounded or approximate figures went into it
    at_most: bool = False  # an upper bound (images at the widest canvas)

    def __str__(self) -> str:
        if self.bytes is None:
            return "?"
        return ("<=" if self.at_most else "~" if self.estimate else "") + fmt_bytes(self.bytes)


def download_size(name: str, data_root: Path) -> Size:
    """The data set's source files: measured where they are under raw/ here, else its record's download_size."""
    from .data.catalog import raw_dir
    from .data.sets import SETS

    entry = SETS[name]
    raw = raw_dir(name, data_root)
    files = [raw / r.filename for r in entry.sources]
    if files and all(f.is_file() for f in files):
        return Size(sum(f.stat().st_size for f in files), f"measured in {raw}", False)
    if entry.download_size:
        n, source = entry.download_size
        return Size(int(n), source, source.startswith(("about", "approximate")))
    return Size(None, "not in its record", True)


def _stored_side(name: str) -> int:
    from .data.sets import SETS

    entry = SETS[name]
    if entry.image_size:
        return entry.stored_size or entry.image_size
    size = inspect.signature(entry.prepare).parameters.get("size")  # an OE pool: its preparer's size
    return int(size.default) if size is not None else 32


def pool_count(name: str) -> tuple[int, str]:
    """Images of an OE pool before preparation: its record's split sizes, else its preparer's default count."""
    from .data.sets import SETS

    entry = SETS[name]
    if entry.split_sizes:
        return sum(entry.split_sizes[0]), entry.split_sizes[2]
    count = inspect.signature(entry.prepare).parameters["count"].default
    return int(count), f"its preparer's default count ({count:,})"


def image_bytes(name: str, data_root: Path) -> tuple[list[int], list[int], bool]:
    """(images per split, bytes per stored image per split, exact): from the manifest where prepared, else the
    record's split sizes at the stored side (images that keep their aspect ratio: the widest canvas, an upper bound,
    and not exact)."""
    from .data.core import canvas_width, keeps_aspect
    from .data.prepared import is_prepared, read_manifest
    from .data.sets import SETS

    folder = data_root / name
    if is_prepared(folder):
        splits = read_manifest(folder)["splits"].values()
        return [s["count"] for s in splits], [3 * s["image_size"][0] * s["image_size"][1] for s in splits], True
    side = _stored_side(name)
    per = 3 * side * (canvas_width(side) if keeps_aspect(side) else side)
    if SETS[name].oe_only:
        return [pool_count(name)[0]], [per], not keeps_aspect(side)
    from .plan_sizes import data_sizes

    train, test, _ = data_sizes(name, data_root)
    return [sum(train), sum(test)], [per, per], not keeps_aspect(side)


def prepared_size(name: str, data_root: Path) -> Size:
    from .data.core import canvas_width, keeps_aspect
    from .data.prepared import is_prepared

    folder = data_root / name
    if is_prepared(folder):
        return Size(sum(p.stat().st_size for p in folder.iterdir() if p.is_file()), f"measured in {folder}", False)
    from .data.sets import SETS

    counts, per, _ = image_bytes(name, data_root)
    side = _stored_side(name)
    extra = 8 + (12 if keeps_aspect(side) else 0)  # labels (int64), boxes (3 x int32) of canvas images
    n = sum(c * (b + extra) for c, b in zip(counts, per))
    entry = SETS[name]
    counted = pool_count(name)[1] if entry.oe_only else (entry.split_sizes[2] if entry.split_sizes else "")
    approximate = counted.startswith("approximate")
    what = f"{' + '.join(f'{c:,}' for c in counts)} images (" + (
        "the record's split sizes, approximate" if approximate else counted if entry.oe_only else
        "the record's split sizes") + ")"
    if keeps_aspect(side):
        return Size(n, f"{what} x 3 x {side} x {canvas_width(side)} bytes (the widest canvas)", True, True)
    return Size(n, f"{what} x 3 x {side} x {side} bytes", approximate)


def total(sizes) -> Size:
    """The sum of the known sizes, marked as its parts are; None when none is known."""
    known = [z for z in sizes if z.bytes is not None]
    return Size(sum(z.bytes for z in known) if known else None, "sum",
                any(z.estimate for z in known), any(z.at_most for z in known))


@dataclass
class DataSetUse:
    name: str
    roles: set
    jobs: int
    obtained: str  # "download", "manual", "embedded"
    download: Size
    prepared: Size


def data_set_uses(runs, preset: str, data_root: Path) -> list[DataSetUse]:
    """The data sets the runs read, with how each is obtained, its sizes and the jobs that wait for it."""
    from .data.sets import SETS
    from .experiments import run_inputs

    roles, jobs = defaultdict(set), Counter()
    for run in runs:
        inputs = run_inputs(preset, run)
        for role, name in (("ID", inputs.dataset), ("OE", inputs.oe), ("anomaly", inputs.anomaly)):
            if name:
                roles[name].add(role)
        for name in inputs.names:
            jobs[name] += 1
    out = []
    for name in sorted(roles, key=lambda n: (min(sorted(roles[n]), key=("ID", "anomaly", "OE").index) != "ID", n)):
        if name not in SETS:  # embedded (digits) or a registered source (sample photos): nothing to get
            out.append(DataSetUse(name, roles[name], jobs[name], "embedded", Size(0, "in the package", False),
                                  Size(0, "in the package", False)))
            continue
        obtained = "download" if SETS[name].automatic else "manual"
        out.append(DataSetUse(name, roles[name], jobs[name], obtained, download_size(name, data_root),
                              prepared_size(name, data_root)))
    return out
