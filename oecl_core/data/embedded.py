"""The embedded benchmark: scikit-learn's bundled digits as in-distribution data and crops of its bundled
sample photographs as outlier exposure. Nothing is downloaded, so it runs anywhere."""
from __future__ import annotations

import numpy as np
import torch

from .core import ImageSet, resize_uint8

DIGITS_TRAIN_FRACTION = 2 / 3


def load_digits(size: int = 16, split_seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """1,797 8x8 digits upscaled to size x size RGB, split per class into 2/3 train and 1/3 test.

    The split is a fixed function of split_seed, so every run of every method sees the same test set.
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    gray = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8)  # values 0..16 -> 0..255
    rgb = resize_uint8(gray[:, None].expand(-1, 3, -1, -1).contiguous(), size)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    rng = np.random.default_rng(split_seed)
    train_idx, test_idx = [], []
    for c in range(10):
        members = rng.permutation(np.flatnonzero(bunch.target == c))
        cut = int(round(len(members) * DIGITS_TRAIN_FRACTION))
        train_idx += members[:cut].tolist()
        test_idx += members[cut:].tolist()
    names = [str(c) for c in range(10)]
    train_idx, test_idx = sorted(train_idx), sorted(test_idx)
    return (ImageSet(rgb[train_idx], labels[train_idx], names), ImageSet(rgb[test_idx], labels[test_idx], names))


def load_sample_photo_crops(size: int = 16, count: int = 2000, seed: int = 0, digit_like: bool = False) -> torch.Tensor:
    """Random square crops (side 1/16 to 1/2 of the shorter side) of scikit-learn's two sample photographs,
    resized to size x size: a far outlier-exposure set for the digits.

    digit_like renders each crop the way the digits were recorded (8x8 pixels, grayscale, 17 levels, then
    upscaled), so OE shares the digits' low-level statistics and differs only in content: a nearer OE set.
    """
    from sklearn.datasets import load_sample_images

    photos = [torch.from_numpy(np.array(p)).permute(2, 0, 1).contiguous() for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[1:]
        side = int(rng.integers(min(h, w) // 16, min(h, w) // 2 + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = photo[None, :, top:top + side, left:left + side]
        if digit_like:
            gray = (crop.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            small = resize_uint8(gray.round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous(), 8).float()
            # stretch to the full range like the digits' ink, then quantise to their 17 levels
            lo, hi = small.amin(), small.amax()
            small = ((small - lo) / (hi - lo).clamp(min=1) * 16).round() * (255 / 16)
            crop = small.round().to(torch.uint8)
        crops.append(resize_uint8(crop, size)[0])
    return torch.stack(crops)
