"""The one on-disk format every training job reads: uint8 .npy arrays (memory-mappable) plus a manifest.

    <root>/<name>/
        <split>_images.npy   uint8 (N, 3, H, W)    e.g. train_images.npy, test_images.npy, oe_images.npy
        <split>_labels.npy   int64 (N,)            class index into manifest["class_names"] (-1: unlabelled)
        <split>_defective.npy  bool (N,), optional  the data set's own anomalies (MVTec-AD: defective parts)
        manifest.json        name, class_names, image_size, per split: count and counts per class,
                             sources: {file: {sha256 | md5: ...}}, skipped: [unreadable files], notes
The manifest is written last (atomically), so a folder without one is an incomplete preparation.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..io import write_json
from .core import ImageSet

MANIFEST = "manifest.json"


def default_data_root() -> Path:
    """Where prepared data sets live: $OECL_DATA, else ./data."""
    return Path(os.environ.get("OECL_DATA", "data"))


def is_prepared(folder) -> bool:
    return (Path(folder) / MANIFEST).exists()


def write_prepared(folder, name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], class_names: list[str],
                   sources: dict | None = None, skipped: list[str] | None = None, notes: str = "",
                   extra: dict | None = None) -> dict:
    """Writes each split's arrays, then the manifest. Arrays: images uint8 (N, 3, H, W), labels int64 (N,), and
    optionally a third, bool (N,): which images are defective (a data set that comes with its own anomalies).
    `extra`: further manifest entries of a data set (HAM10000: the layout each split was read from).

    Preparation happens in a temporary sibling folder that replaces `folder` only when complete, so an
    interrupted preparation never leaves a folder that looks usable."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    manifest = {"name": name, "class_names": list(class_names), "splits": {}, "sources": sources or {},
                "skipped": list(skipped or []), "notes": notes, **(extra or {})}
    for split, (images, labels, *defective) in splits.items():
        images, labels = np.asarray(images), np.asarray(labels, dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{name}/{split}: images must be uint8 (N, 3, H, W), got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{name}/{split}: {len(images)} images but {len(labels)} labels")
        np.save(tmp / f"{split}_images.npy", images)
        np.save(tmp / f"{split}_labels.npy", labels)
        if defective:
            flags = np.asarray(defective[0], dtype=bool)
            if flags.shape != labels.shape:
                raise ValueError(f"{name}/{split}: {len(labels)} labels but {len(flags)} defect flags")
            np.save(tmp / f"{split}_defective.npy", flags)
        counts = {class_names[c] if 0 <= c < len(class_names) else str(c): int((labels == c).sum()) for c in np.unique(labels)}
        manifest["splits"][split] = {"count": int(len(images)), "image_size": list(images.shape[2:]), "per_class": counts}
        if defective:
            manifest["splits"][split]["defective"] = int(flags.sum())
    write_json(tmp / MANIFEST, manifest)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return manifest


def read_manifest(folder) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a prepared data set (no {MANIFEST}); prepare it first "
                                "(python -m oecl_core data prepare NAME)")
    return json.loads(path.read_text())


def load_prepared(folder, split: str) -> ImageSet:
    """One split as an ImageSet, read into memory (a training job moves it to its device whole)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if split not in manifest["splits"]:
        raise ValueError(f"{folder} has no split {split!r}; it has {', '.join(manifest['splits'])}")
    images = np.load(folder / f"{split}_images.npy")
    labels = np.load(folder / f"{split}_labels.npy")
    flags = folder / f"{split}_defective.npy"
    defective = torch.from_numpy(np.load(flags)) if flags.exists() else None
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), manifest["class_names"], defective=defective)
