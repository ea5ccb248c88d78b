"""One file per data set: each module here lists its DataSet records in ENTRIES (see ..prep.DataSet).

Adding a data set is adding one module: its records (run facts, download sources, manual instructions) and
its preparer. The modules are found by name, so nothing else needs to change."""
from __future__ import annotations

import importlib
import pkgutil

from ..prep import DataSet


def _collect() -> dict[str, DataSet]:
    found: dict[str, DataSet] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        for entry in importlib.import_module(f"{__name__}.{module}").ENTRIES:
            if entry.name in found:
                raise ValueError(f"data set {entry.name!r} is defined twice (second time in sets/{module}.py)")
            found[entry.name] = entry
    return found


SETS: dict[str, DataSet] = _collect()
