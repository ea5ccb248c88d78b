"""The embedded benchmark: scikit-learn's bundled digits as in-distribution data and crops of its bundled
sample photographs as outlier exposure. Nothing is downloaded, so it runs anywhere.

The files are read where scikit-learn installed them, without importing it (about 1 s of a smoke job's start-up);
should a later release move them, scikit-learn's own loaders are used.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from .core import ImageSet, resize_uint8

DIGITS_TRAIN_FRACTION = 2 / 3


def _sklearn_path(*parts: str) -> Path | None:
    """A file or folder scikit-learn ships, located without importing scikit-learn (None where it is not)."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root, *parts)
        if path.exists():
            return path
    return None


def _digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as float64 (N, 8, 8) values 0..16 and int labels: what sklearn.datasets.load_digits gives."""
    path = _sklearn_path("datasets", "data", "digits.csv.gz")
    if path is None:
        from sklearn.datasets import load_digits as sk_digits

        bunch = sk_digits()
        return bunch.images, bunch.target
    with gzip.open(path, mode="rt", encoding="utf-8") as fh:  # as scikit-learn reads it
        data = np.loadtxt(fh, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int, copy=False)


def _sample_photos() -> list[np.ndarray]:
    """scikit-learn's sample photographs (china.jpg, flower.jpg) as uint8 (H, W, 3): load_sample_images().images."""
    folder = _sklearn_path("datasets", "images")
    jpgs = sorted(p for p in folder.iterdir() if p.is_file() and p.match("*.jpg")) if folder else []
    if not jpgs:
        from sklearn.datasets import load_sample_images

        return load_sample_images().images
    from PIL import Image

    photos = []
    for path in jpgs:
        with open(path, "rb") as fh:
            photos.append(np.asarray(Image.open(fh)))
    return photos


def load_digits(size: int = 16, split_seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """1,797 8x8 digits upscaled to size x size RGB, split per class into 2/3 train and 1/3 test.

    The split is a fixed function of split_seed, so every run of every method sees the same test set.
    """
    images, target = _digit_arrays()
    gray = torch.from_numpy(images * (255.0 / 16.0)).round().to(torch.uint8)  # values 0..16 -> 0..255
    rgb = resize_uint8(gray[:, None].expand(-1, 3, -1, -1).contiguous(), size)
    labels = torch.from_numpy(target).to(torch.int64)
    rng = np.random.default_rng(split_seed)
    train_idx, test_idx = [], []
    for c in range(10):
        members = rng.permutation(np.flatnonzero(target == c))
        cut = int(round(len(members) * DIGITS_TRAIN_FRACTION))
        train_idx += members[:cut].tolist()
        test_idx += members[cut:].tolist()
    names = [str(c) for c in range(10)]
    train_idx, test_idx = sorted(train_idx), sorted(test_idx)
    return (ImageSet(rgb[train_idx], labels[train_idx], names), ImageSet(rgb[test_idx], labels[test_idx], names))


def _grey(photo: torch.Tensor) -> torch.Tensor:
    """uint8 (3, H, W) -> uint8 (1, H, W), the luma the digit-like crops are recorded in."""
    luma = (photo.float() * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
    return luma.round().to(torch.uint8)


def _digit_levels(small: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, 8, 8) crops stretched each to the full range like the digits' ink, then quantised to their 17
    levels."""
    small = small.float()
    lo, hi = small.amin(dim=(1, 2, 3), keepdim=True), small.amax(dim=(1, 2, 3), keepdim=True)
    small = ((small - lo) / (hi - lo).clamp(min=1) * 16).round() * (255 / 16)
    return small.round().to(torch.uint8)


def load_sample_photo_crops(size: int = 16, count: int = 2000, seed: int = 0, digit_like: bool = False) -> torch.Tensor:
    """Random square crops (side 1/16 to 1/2 of the shorter side) of scikit-learn's two sample photographs,
    resized to size x size: a far outlier-exposure set for the digits.

    digit_like renders each crop the way the digits were recorded (8x8 pixels, grayscale, 17 levels, then
    upscaled), so OE shares the digits' low-level statistics and differs only in content: a nearer OE set.
    """
    photos = [torch.from_numpy(np.array(p)).permute(2, 0, 1).contiguous() for p in _sample_photos()]
    if digit_like:  # grey once per photograph, not once per (overlapping) crop: the same values, one channel
        photos = [_grey(p) for p in photos]
    rng = np.random.default_rng(seed)
    by_side: dict[int, list[tuple[int, torch.Tensor]]] = {}
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[1:]
        side = int(rng.integers(min(h, w) // 16, min(h, w) // 2 + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        by_side.setdefault(side, []).append((i, photo[:, top:top + side, left:left + side]))
    # One resize per crop side rather than per crop (a few hundred calls for 2,000 crops): the images of a batch, and
    # the channels of an image, are resized independently, so each crop comes out as it would alone
    # (tests/test_startup.py checks it against the crop-by-crop loop).
    first = 8 if digit_like else size
    out = torch.empty(count, photos[0].shape[0], first, first, dtype=torch.uint8)
    for crops in by_side.values():
        out[[i for i, _ in crops]] = resize_uint8(torch.stack([c for _, c in crops]), first)
    if digit_like:
        out = resize_uint8(_digit_levels(out), size)
    return out.expand(-1, 3, -1, -1).contiguous()
