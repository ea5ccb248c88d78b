"""Images of different shapes in one tensor (:class:`Canvas`: the 224-px data sets, stored with their aspect ratio),
and the per-sample pixel crops it and the augmentations take (oecl_core.augment re-exports both)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_batch(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-sample crops of one size: out[b] = images[b, :, top[b]:top[b]+height, left[b]:left[b]+width]."""
    b = images.shape[0]
    rows = (top.view(-1, 1) + torch.arange(height, device=images.device)).view(b, height, 1)
    cols = (left.view(-1, 1) + torch.arange(width, device=images.device)).view(b, 1, width)
    out = images[torch.arange(b, device=images.device).view(b, 1, 1), :, rows, cols]  # (B, H, W, C)
    # contiguous NCHW: the permuted view has channels-last strides, and PyTorch's CPU convolution backward
    # corrupted memory on such an input at 224 px (torch 2.14.1, "double free or corruption")
    return out.permute(0, 3, 1, 2).contiguous()


class Canvas:
    """A batch of images of different shapes in one tensor: image i is images[i, :, :rows_i, :cols_i], stored
    transposed where transposed_i (so that one landscape canvas holds portrait images too); boxes holds
    (rows_i, cols_i, transposed_i), int32 (N, 3). The canvas around each image is zero and no crop samples it.
    Indexing, len, .to and the shape of the canvas work as on a tensor, so the data pipeline moves a Canvas as it
    moves images; the augmentations, the centre view (scores.center_crop) and rotate90 read its boxes.
    oecl_core/data/core.py stores the 224-px data sets this way (docs/fidelity.md, "224-px images")."""

    def __init__(self, images: torch.Tensor, boxes: torch.Tensor):
        if images.dim() != 4 or boxes.shape != (len(images), 3):
            raise ValueError(f"a Canvas needs images (N, C, H, W) and boxes (N, 3); got {tuple(images.shape)} and "
                             f"{tuple(boxes.shape)}")
        self.images, self.boxes = images, boxes

    @classmethod
    def whole(cls, images: torch.Tensor) -> "Canvas":
        """Images that each fill the whole tensor, as a Canvas."""
        box = torch.tensor([images.shape[2], images.shape[3], 0], dtype=torch.int32, device=images.device)
        return cls(images, box.expand(len(images), 3).contiguous())

    def check(self) -> "Canvas":
        """Raises ValueError unless every box lies inside the canvas (a host sync: for data loading, not steps)."""
        rows, cols, transposed = self.boxes.unbind(dim=1)
        h, w = self.images.shape[2:]
        if len(self) and not (bool(((rows >= 1) & (rows <= h) & (cols >= 1) & (cols <= w)).all())
                              and bool(((transposed == 0) | (transposed == 1)).all())):
            raise ValueError(f"Canvas boxes must lie inside the {h} x {w} canvas with a 0/1 transposition flag")
        return self

    shape = property(lambda self: self.images.shape)
    dtype = property(lambda self: self.images.dtype)
    device = property(lambda self: self.images.device)

    def dim(self) -> int:
        return self.images.dim()

    def is_floating_point(self) -> bool:
        return self.images.is_floating_point()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index) -> "Canvas":
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)  # one image stays a batch of one
        return Canvas(self.images[index], self.boxes[index])

    def to(self, *args, **kwargs) -> "Canvas":
        images = self.images.to(*args, **kwargs)
        return Canvas(images, self.boxes.to(images.device, non_blocking=kwargs.get("non_blocking", False)))

    def __repr__(self) -> str:
        return f"Canvas({tuple(self.images.shape)}, {self.images.dtype}, {self.images.device})"

    def sides(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(height, width) of each image itself, int64."""
        rows, cols, transposed = self.boxes.long().unbind(dim=1)
        flip = transposed.bool()
        return torch.where(flip, cols, rows), torch.where(flip, rows, cols)

    def crop(self, top: torch.Tensor, left: torch.Tensor, size: int, pad: int = 0) -> torch.Tensor:
        """size x size crops, each at (top[i], left[i]) of image i itself, zero-padded by `pad` first (the canvas
        around an image is zero, so a crop reaching `pad` past its edge reads zeros there too)."""
        flip = self.boxes[:, 2].bool()
        x = F.pad(self.images, [pad] * 4) if pad else self.images
        x = crop_batch(x, torch.where(flip, left, top), torch.where(flip, top, left), size, size)
        return torch.where(flip.view(-1, 1, 1, 1), x.transpose(2, 3), x)

    def centre(self, size: int) -> torch.Tensor:
        """The centre size x size crop of each image: torchvision's CenterCrop (offsets (side - size) / 2 rounded
        half to even, as its int(round(...)))."""
        h, w = self.sides()
        if self.device.type == "cpu" and len(self) and int(torch.minimum(h, w).min()) < size:
            raise ValueError(f"a centre crop of {size} px needs images at least that large; the smallest side here "
                             f"is {int(torch.minimum(h, w).min())} px")
        top = torch.round((h - size) / 2).long()
        left = torch.round((w - size) / 2).long()
        return self.crop(top, left, size)

    def rotate90(self, k: int) -> "Canvas":
        """Each image rotated by k * 90 degrees as torch.rot90 turns it, kept on this canvas: a quarter turn is a
        mirror within the box plus a change of the transposition flag (rot90(x) = flip(x, width)^T)."""
        k = int(k) % 4
        if k == 0:
            return self
        rows, cols, transposed = self.boxes.long().unbind(dim=1)
        flip = transposed.bool()
        if k == 2:
            mirror_rows = mirror_cols = torch.ones_like(flip)
        else:  # a quarter turn mirrors the image's width (k = 1) or height (k = 3): the stored cols or rows
            along_width = ~flip if k == 1 else flip
            mirror_rows, mirror_cols = ~along_width, along_width
        x = self.images
        for dim, extent, mirror in ((2, rows, mirror_rows), (3, cols, mirror_cols)):
            pos = torch.arange(x.shape[dim], device=x.device).view(1, -1)
            index = torch.where(mirror.view(-1, 1) & (pos < extent.view(-1, 1)), extent.view(-1, 1) - 1 - pos, pos)
            shape = [len(x), 1, 1, 1]
            shape[dim] = x.shape[dim]
            x = x.gather(dim, index.view(shape).expand_as(x))
        boxes = self.boxes.clone()
        if k != 2:
            boxes[:, 2] = 1 - boxes[:, 2]
        return Canvas(x, boxes)

    def padded(self, height: int, width: int) -> "Canvas":
        """The same images on a larger canvas (zeros added below and to the right)."""
        h, w = self.images.shape[2:]
        return Canvas(F.pad(self.images, [0, width - w, 0, height - h]), self.boxes)


def cat_images(batches):
    """torch.cat of image batches; if any is a Canvas, a Canvas large enough for all (tensors become whole-canvas
    images, smaller canvases are padded)."""
    if not any(isinstance(b, Canvas) for b in batches):
        return torch.cat(batches)
    canvases = [b if isinstance(b, Canvas) else Canvas.whole(b) for b in batches]
    height, width = (max(c.shape[d] for c in canvases) for d in (2, 3))
    canvases = [c.padded(height, width) for c in canvases]
    return Canvas(torch.cat([c.images for c in canvases]), torch.cat([c.boxes for c in canvases]))
