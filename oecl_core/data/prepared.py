"""The one on-disk format every training job reads: uint8 .npy arrays (memory-mappable) plus a manifest.

    <root>/<name>/
        <split>_images.npy   uint8 (N, 3, H, W)    e.g. train_images.npy, test_images.npy, oe_images.npy
        <split>_boxes.npy    int32 (N, 3), optional  where the images do not all fill (H, W): per image its rows,
                                                     cols and transposition on the canvas (augment.Canvas)
        <split>_labels.npy   int64 (N,)            class index into manifest["class_names"] (-1: unlabelled)
        <split>_defective.npy  bool (N,), optional  the data set's own anomalies (MVTec-AD: defective parts)
        manifest.json        format, name, class_names, per split: count, counts per class, image_size and, for
                             images that keep their aspect ratio, storage (canvas, images transposed / capped),
                             sources: {file: {sha256 | md5: ...}}, skipped: [unreadable files], notes
The manifest is written last (atomically), so a folder without one is an incomplete preparation. FORMAT says how
the images are laid out; a folder of an older format whose layout has changed is refused with what to run.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..augment import Canvas
from ..io import write_json
from .core import SQUARE_MAX, CanvasStore, ImageSet

MANIFEST = "manifest.json"
# 2: images stored above SQUARE_MAX px keep their aspect ratio on a canvas (core.CanvasStore). 1 (a manifest
# without "format"): every image a centre square, which is still the layout up to SQUARE_MAX px.
FORMAT = 2


class OutdatedPreparation(RuntimeError):
    """A prepared folder whose images were laid out by an older version of this code."""


def default_data_root() -> Path:
    """Where prepared data sets live: $OECL_DATA, else ./data."""
    return Path(os.environ.get("OECL_DATA", "data"))


def is_prepared(folder) -> bool:
    """Whether `folder` holds a complete preparation in the current format (an outdated one must be prepared again)."""
    path = Path(folder) / MANIFEST
    return path.exists() and outdated(json.loads(path.read_text())) is None


def outdated(manifest: dict) -> str | None:
    """Why a manifest's images cannot be read by this version (None: they can)."""
    version = manifest.get("format", 1)
    if version > FORMAT:
        return f"it was prepared by a newer version of oecl_core (format {version}; this one reads {FORMAT})"
    sides = [max(info.get("image_size", [0])) for info in manifest.get("splits", {}).values()]
    if version < 2 and any(side > SQUARE_MAX for side in sides):
        return ("it was prepared by an older version of oecl_core, which stored every image as its centre square; "
                "this one keeps the aspect ratio of images stored above "
                f"{SQUARE_MAX} px, so that training crops cover the whole image (docs/fidelity.md, \"224-px images\")")
    return None


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
    manifest = {"format": FORMAT, "name": name, "class_names": list(class_names), "splits": {},
                "sources": sources or {}, "skipped": list(skipped or []), "notes": notes, **(extra or {})}
    for split, (images, labels, *defective) in splits.items():
        boxes, storage = None, None  # no storage entry: squares
        if isinstance(images, CanvasStore):
            images, boxes, storage = images.finish()
        images, labels = np.asarray(images), np.asarray(labels, dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{name}/{split}: images must be uint8 (N, 3, H, W), got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{name}/{split}: {len(images)} images but {len(labels)} labels")
        np.save(tmp / f"{split}_images.npy", images)
        if boxes is not None:
            np.save(tmp / f"{split}_boxes.npy", boxes)
        np.save(tmp / f"{split}_labels.npy", labels)
        if defective:
            flags = np.asarray(defective[0], dtype=bool)
            if flags.shape != labels.shape:
                raise ValueError(f"{name}/{split}: {len(labels)} labels but {len(flags)} defect flags")
            np.save(tmp / f"{split}_defective.npy", flags)
        counts = {class_names[c] if 0 <= c < len(class_names) else str(c): int((labels == c).sum())
                  for c in np.unique(labels)}
        manifest["splits"][split] = {"count": int(len(images)), "image_size": list(images.shape[2:]),
                                     "per_class": counts}
        if storage is not None:
            manifest["splits"][split]["storage"] = storage
        if defective:
            manifest["splits"][split]["defective"] = int(flags.sum())
    write_json(tmp / MANIFEST, manifest)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return manifest


def read_manifest(folder) -> dict:
    """The manifest of a prepared folder; OutdatedPreparation if its images are laid out as this code no longer
    reads them, with the command that prepares it again."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a prepared data set (no {MANIFEST}); prepare it first "
                                "(python -m oecl_core data prepare NAME)")
    manifest = json.loads(path.read_text())
    why = outdated(manifest)
    if why:
        name = manifest.get("name", Path(folder).name)
        raise OutdatedPreparation(f"{folder} cannot be read: {why}. Prepare it again: python -m oecl_core data prepare "
                                  f"{name} (the raw files under raw/ are reused)")
    return manifest


def require_prepared(folder, what: str) -> None:
    """Raises, saying what to run, unless `folder` is prepared in the current format (`what`: e.g. "data set 'x'")."""
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        name = folder.name
        raise FileNotFoundError(f"{what} is not prepared under {folder}; run `python -m oecl_core data prepare {name}` "
                                "(see `python -m oecl_core data status`)")
    read_manifest(folder)


def load_prepared(folder, split: str) -> ImageSet:
    """One split as an ImageSet, read into memory (a training job moves it to its device whole); images that do not
    all fill their tensor come as a Canvas."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if split not in manifest["splits"]:
        raise ValueError(f"{folder} has no split {split!r}; it has {', '.join(manifest['splits'])}")
    images = torch.from_numpy(np.load(folder / f"{split}_images.npy"))
    boxes = folder / f"{split}_boxes.npy"
    if boxes.exists():
        images = Canvas(images, torch.from_numpy(np.load(boxes))).check()
    labels = np.load(folder / f"{split}_labels.npy")
    flags = folder / f"{split}_defective.npy"
    defective = torch.from_numpy(np.load(flags)) if flags.exists() else None
    return ImageSet(images, torch.from_numpy(labels), manifest["class_names"], defective=defective)
