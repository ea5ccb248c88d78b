"""In-memory image sets and the reading of image folders."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]
    paths: list[str] = field(default_factory=list)  # where the images came from, when read from disk
    defective: torch.Tensor | None = None  # bool (N,): a data set's own anomalies (MVTec-AD's defective parts)

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W); got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self):
        return len(self.images)

    def subset(self, mask_or_index) -> "ImageSet":
        idx = torch.as_tensor(mask_or_index)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        paths = [self.paths[i] for i in idx.tolist()] if self.paths else []
        defective = None if self.defective is None else self.defective[idx]
        return ImageSet(self.images[idx], self.labels[idx], self.class_names, paths, defective)


@dataclass
class Split:
    """What one run needs: normal training images, an OE pool, and a labelled test set."""

    train: torch.Tensor  # uint8 normal training images
    test: torch.Tensor  # uint8 test images
    test_is_normal: torch.Tensor  # bool (N_test,)
    test_labels: torch.Tensor  # original class of each test image
    oe: torch.Tensor | None  # uint8 OE pool, or None
    description: str = ""
    train_labels: torch.Tensor | None = None  # class of each training image (only for supervised methods)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 batch (N, 3, H, W) to size x size with antialiased bilinear interpolation."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def square_image(im, size: int) -> np.ndarray:
    """A PIL image as uint8 (3, size, size): the shorter side resized to `size`, then the centre square
    (the paper's test-time view)."""
    from PIL import Image

    im = im.convert("RGB")
    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8).transpose(2, 0, 1)


def read_image(path, size: int) -> np.ndarray:
    """An image file (or file object) as uint8 (3, size, size), see square_image."""
    from PIL import Image

    with Image.open(path) as im:
        return square_image(im, size)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("._"))


def load_image_folder(root, size: int, allow_flat: bool = True) -> ImageSet:
    """Read an image folder into memory at size x size.

    A root with sub-folders is an ImageFolder tree (one class per sub-folder); a root with images and no
    sub-folders (allow_flat) is one class named after the folder. Unreadable images are skipped with a
    warning, never silently.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist (or is not a folder)")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and list_images(d))
    if class_dirs:
        groups = [(d.name, list_images(d)) for d in class_dirs]
    elif allow_flat and list_images(root):
        groups = [(root.name, list_images(root))]
    else:
        raise FileNotFoundError(
            f"no images found under {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}); "
            "point to a folder of images or to a folder with one sub-folder per class"
        )
    arrays, labels, paths, skipped = [], [], [], []
    for label, (_, files) in enumerate(groups):
        for f in files:
            try:
                arrays.append(read_image(f, size))
            except Exception as err:  # a corrupt file must not end a long preparation
                skipped.append(f"{f}: {err}")
                continue
            labels.append(label)
            paths.append(str(f))
    if skipped:
        import warnings

        warnings.warn(f"skipped {len(skipped)} unreadable image(s) under {root}, e.g. {skipped[0]}")
    if not arrays:
        raise ValueError(f"none of the images under {root} could be read")
    images = torch.from_numpy(np.stack(arrays))
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64), [g[0] for g in groups], paths)
