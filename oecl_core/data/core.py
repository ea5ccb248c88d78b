"""In-memory image sets, how an image is stored, and the reading of image folders.

How an image is stored depends on the size it is read at (one rule for every reader: the preparers, image folders,
`predict`). Up to SQUARE_MAX pixels (the 32-px pipeline, trained and tested at the stored size) it is resized on its
shorter side and its centre square kept. Larger (the 224-px pipeline: the authors' Resize(256), then random crops of
the whole image to 224 for training and the centre 224 crop for testing) it keeps its aspect ratio: resized on its
shorter side as torchvision's Resize does, its longer side cut to at most MAX_ASPECT times the shorter one (centre
crop), and a set of such images is one landscape canvas (a CanvasStore on disk, an augment.Canvas in memory) with
portrait images stored transposed. docs/fidelity.md ("224-px images") gives the reasons and the memory it costs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..augment import Canvas

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
SQUARE_MAX = 64  # the largest size images are stored square at (the boundary the methods draw between 32 and 224 px)
MAX_ASPECT = 2.0  # the longest side a stored image keeps, in multiples of its shorter side


@dataclass
class ImageSet:
    images: torch.Tensor | Canvas  # uint8 (N, 3, H, W); images of different shapes: a Canvas
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

    train: torch.Tensor  # uint8 normal training images (images of different shapes: a Canvas, as test and oe)
    test: torch.Tensor  # uint8 test images
    test_is_normal: torch.Tensor  # bool (N_test,)
    test_labels: torch.Tensor  # original class of each test image
    oe: torch.Tensor | None  # uint8 OE pool, or None
    description: str = ""
    train_labels: torch.Tensor | None = None  # class of each training image (only for supervised methods)


def resize_uint8(images, size: int):
    """Resize a uint8 batch (N, 3, H, W) to size x size with antialiased bilinear interpolation; a Canvas image by
    image, to `size` on its shorter side with its aspect ratio kept."""
    if isinstance(images, Canvas):
        return _resize_canvas(images, size)
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return _resize(images, size, size)


def _resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    out = F.interpolate(images.float(), size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def _long_side(short: int, long: int, size: int) -> int:
    return max(size, int(size * long / short))  # torchvision's Resize: int() of the scaled longer side


def _resize_canvas(canvas: Canvas, size: int) -> Canvas:
    boxes = canvas.boxes.tolist()
    if all(min(r, c) == size for r, c, _ in boxes):
        return canvas
    new = {(r, c): (size, _long_side(r, c, size)) if r <= c else (_long_side(c, r, size), size) for r, c, _ in boxes}
    height, width = (max(rc[d] for rc in new.values()) for d in (0, 1))
    out = torch.zeros(len(canvas), canvas.shape[1], height, width, dtype=torch.uint8, device=canvas.device)
    rows_cols = canvas.boxes[:, :2]
    for (r, c), (r2, c2) in new.items():  # one interpolation per image shape: no image reads another's padding
        index = (rows_cols == rows_cols.new_tensor([r, c])).all(dim=1).nonzero().flatten()
        out[index, :, :r2, :c2] = _resize(canvas.images[index, :, :r, :c], r2, c2)
    boxes = torch.tensor([[*new[(r, c)], t] for r, c, t in boxes], dtype=torch.int32).view(-1, 3)
    return Canvas(out, boxes.to(canvas.device))


def keeps_aspect(size: int) -> bool:
    """Whether images stored at `size` keep their aspect ratio (see the module's docstring)."""
    return size > SQUARE_MAX


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


def aspect_image(im, size: int) -> np.ndarray:
    """A PIL image as uint8 (3, h, w), its shorter side resized to `size` and its aspect ratio kept: exactly
    torchvision's Resize(size) of a PIL image (bilinear, the longer side int(size * long / short))."""
    from PIL import Image

    im = im.convert("RGB")
    w, h = im.size
    new = (size, _long_side(w, h, size)) if w <= h else (_long_side(h, w, size), size)
    return np.asarray(im.resize(new, Image.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)


def stored_image(im, size: int) -> np.ndarray:
    """A PIL image as it is stored at `size`: a centre square up to SQUARE_MAX pixels, else its aspect ratio kept."""
    return aspect_image(im, size) if keeps_aspect(size) else square_image(im, size)


def storage_note(size: int) -> str:
    """How images read at `size` are stored, for a preparer's notes."""
    if not keeps_aspect(size):
        return f"images {size}x{size} (shorter side resized, centre square)"
    return (f"images {size} px on their shorter side, aspect ratio kept (longer side at most {MAX_ASPECT:g}x, "
            "centre-cropped beyond; portrait images stored transposed; the manifest's `storage` per split)")


def read_image(path, size: int) -> np.ndarray:
    """An image file (or file object) as stored at `size`, uint8 (3, H, W) (see stored_image)."""
    from PIL import Image

    with Image.open(path) as im:
        return stored_image(im, size)


class CanvasStore:
    """Images of one shorter side, written one by one onto a landscape canvas (`array`, uint8 (N, 3, S, W), zero
    when given and each row written once: a memory map for data larger than memory): image i goes to the top
    left of row i, transposed when it is portrait, its longer side centre-cropped to W when longer (`capped`).
    finish() gives what write_prepared stores; tensor() what a run reads."""

    def __init__(self, array: np.ndarray, boxes: np.ndarray | None = None, capped: np.ndarray | None = None):
        self.array = array
        self.boxes = np.zeros((len(array), 3), dtype=np.int32) if boxes is None else boxes  # rows, cols, transposed
        self.capped = np.zeros(len(array), dtype=bool) if capped is None else capped

    @classmethod
    def new(cls, n: int, size: int) -> "CanvasStore":
        return cls(np.zeros((n, 3, size, canvas_width(size)), dtype=np.uint8))

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, rows: slice) -> "CanvasStore":
        if not isinstance(rows, slice):
            raise TypeError("a CanvasStore is sliced by rows (store[a:b]); read images from its tensor()")
        return CanvasStore(self.array[rows], self.boxes[rows], self.capped[rows])

    def __setitem__(self, i: int, image: np.ndarray) -> None:
        side, width = self.array.shape[2:]
        transposed = image.shape[1] > image.shape[2]
        if transposed:
            image = image.transpose(0, 2, 1)
        if image.shape[1] != side:
            raise ValueError(f"an image stored on a canvas {side} px high must be {side} px on its shorter side, "
                             f"got {image.shape[1]} x {image.shape[2]}")
        if image.shape[2] > width:  # more elongated than MAX_ASPECT: its centre part, as CenterCrop cuts it
            left = int(round((image.shape[2] - width) / 2.0))
            image = image[:, :, left:left + width]
            self.capped[i] = True
        self.array[i, :, :, :image.shape[2]] = image
        self.boxes[i] = (side, image.shape[2], int(transposed))

    def finish(self) -> tuple[np.ndarray, np.ndarray | None, dict]:
        """(images on the canvas trimmed to its widest image, boxes or None when every image fills it unturned,
        a description for the manifest)."""
        width = int(self.boxes[:, 1].max()) if len(self) else self.array.shape[3]
        images = self.array[:, :, :, :width]
        whole = bool((self.boxes[:, 1] == width).all() and not self.boxes[:, 2].any())
        info = {"aspect_ratio": "kept", "max_aspect": MAX_ASPECT, "canvas": [int(self.array.shape[2]), width],
                "transposed": int(self.boxes[:, 2].sum()), "capped": int(self.capped.sum()),
                "boxes": not whole}
        return images, None if whole else self.boxes, info

    def tensor(self) -> torch.Tensor | Canvas:
        images, boxes, _ = self.finish()
        images = torch.from_numpy(np.ascontiguousarray(images))
        return images if boxes is None else Canvas(images, torch.from_numpy(boxes.copy())).check()


def canvas_width(size: int) -> int:
    return int(size * MAX_ASPECT)


def stack_images(arrays: list[np.ndarray], size: int) -> np.ndarray | CanvasStore:
    """Images read at `size` (read_image) as one array: squares stacked, others on a CanvasStore."""
    if not keeps_aspect(size):
        return np.stack(arrays)
    store = CanvasStore.new(len(arrays), size)
    for i, a in enumerate(arrays):
        store[i] = a
    return store


def as_tensor(images: np.ndarray | CanvasStore) -> torch.Tensor | Canvas:
    return images.tensor() if isinstance(images, CanvasStore) else torch.from_numpy(images)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("._"))


def load_image_folder(root, size: int, allow_flat: bool = True) -> ImageSet:
    """Read an image folder into memory, stored at `size` (see the module's docstring).

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

        warnings.warn(f"skipped {len(skipped)} unreadable image(s) under {root}, e.g. {skipped[0]}", stacklevel=2)
    if not arrays:
        raise ValueError(f"none of the images under {root} could be read")
    images = as_tensor(stack_images(arrays, size))
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64), [g[0] for g in groups], paths)
