"""The image counts the planner (oecl_core/plan.py) reads instead of images: per class of a data set (data_sizes)
and of one run's split, by its benchmark protocol's rule (split_sizes, oecl_core/data/benchmarks.py). Below the
planner's other parts (it imports no config, method or planner module), so that modules the planner reports on
(oecl_core/resources.py) may use them without an import cycle.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from .data import get_dataset


@lru_cache(maxsize=None)
def data_sizes(dataset: str, data_root: Path | None = None) -> tuple[list[int], list[int], str]:
    """(training images per class, test images per class, where the numbers come from)."""
    from .data.prepared import is_prepared, read_manifest
    from .data.registry import default_data_root

    spec = get_dataset(dataset)
    if spec.prepared:
        folder = (data_root or default_data_root()) / dataset
        if is_prepared(folder):
            manifest = read_manifest(folder)
            names = manifest["class_names"]
            per = lambda split: [int(manifest["splits"][split]["per_class"].get(n, 0)) for n in names]
            return per("train"), per("test"), f"{folder}/manifest.json"
        from .data.sets import SETS

        if SETS[dataset].split_sizes:
            train, test, source = SETS[dataset].split_sizes
            return list(train), list(test), source
        raise ValueError(f"data set {dataset!r} is not prepared and has no known sizes for planning; prepare it "
                         f"(python -m oecl_core data prepare {dataset})")
    train, test = spec.load(spec.load_size)  # embedded / folder data sets: load them
    n = len(train.class_names)
    count = lambda labels: torch.bincount(labels, minlength=n).tolist()
    return count(train.labels), count(test.labels), "loaded"


def split_sizes(cfg, data_root: Path | None = None) -> tuple[int, int, str]:
    """(training images, test images, source) of a run (cfg: its RunConfig), by its benchmark protocol's rule
    (data/benchmarks.py)."""
    from .data.benchmarks import PROTOCOLS

    train, test, source = data_sizes(cfg.dataset, data_root)
    protocol = PROTOCOLS.get(cfg.benchmark)
    if protocol is None:
        raise ValueError(f"no planning rule for benchmark {cfg.benchmark!r}")
    n_train, n_test = protocol.sizes(cfg, train, test, lambda name: data_sizes(name, data_root),
                                     lambda: get_dataset(cfg.dataset).classes())
    if cfg.train_size:
        n_train = min(n_train, cfg.train_size)
    return n_train, n_test, source
