"""Batched, seeded image augmentations for SimCLR-style contrastive training.

Everything works on float tensors (B, C, H, W) in [0, 1] on whatever device the
batch lives on. Each sample gets its own random parameters, all drawn from an
explicit ``torch.Generator`` so that a run is reproducible from its seed and is
unaffected by the global RNG. No PIL and no per-image Python loops.

A batch of images of different shapes (the 224-px data sets, stored with their
aspect ratio) is a :class:`Canvas`: the crops then range over each image's own
box and never sample the canvas around it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# the Canvas and the colour ops have modules of their own; imported here so that `from .augment import X` keeps
# working for every name of __all__
from .augment_canvas import Canvas, cat_images, crop_batch
from .augment_colour import adjust_hue, hsv_to_rgb, rgb_to_hsv, to_grayscale  # noqa: F401 (re-exported)
from .device import constant

__all__ = [
    "Canvas",
    "cat_images",
    "SimCLRAugment",
    "CropFlipAugment",
    "crop_batch",
    "rotate90",
    "to_float",
    "to_grayscale",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "adjust_hue",
]


def to_float(images_uint8):
    """uint8 (B,C,H,W) -> float32 in [0,1] (a Canvas keeps its boxes)."""
    if isinstance(images_uint8, Canvas):
        return Canvas(to_float(images_uint8.images), images_uint8.boxes)
    if images_uint8.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images_uint8.dtype}")
    return images_uint8.to(torch.float32).div_(255.0)


def rotate90(images: torch.Tensor, k: int) -> torch.Tensor:
    """Rotate a batch by k*90 degrees counter-clockwise (torch.rot90 over dims (2,3)); k in {0,1,2,3}.

    Other integers are taken modulo 4 (so k=4 is the identity). A Canvas stays a Canvas (Canvas.rotate90).
    """
    if isinstance(images, Canvas):
        return images.rotate90(k)
    return torch.rot90(images, int(k) % 4, dims=(2, 3))


class SimCLRAugment:
    """RandomResizedCrop(scale=(crop_scale_min, 1), ratio=(3/4, 4/3)) to the same output size, horizontal flip p=0.5,
    colour jitter (brightness 0.4, contrast 0.4, saturation 0.4, hue 0.1) applied with p=0.8, grayscale p=0.2.

    Accepts C == 3 or C == 1. For single-channel batches brightness and contrast
    still apply, while saturation, hue and grayscale are no-ops (the random
    numbers are drawn anyway, so the generator advances identically).

    Deviations from torchvision, chosen to stay vectorised:
    * crops that would not fit are avoided by narrowing the aspect-ratio range for
      the drawn area instead of re-sampling (see _crop_flip);
    * the jitter order is fixed (brightness, contrast, saturation, hue), as in
      CSI's GPU augmentation layers, rather than permuted per call;
    * resizing uses plain bilinear sampling (no antialiasing when shrinking).

    A Canvas batch (images of different shapes) is cropped over each image's own box, in its own orientation:
    the same crop distribution as on that image alone, never reaching the canvas around it.
    """

    _N_DRAWS = 11  # random numbers per sample, see __call__

    def __init__(self, crop_scale_min: float = 0.08, flip_p: float = 0.5, jitter=(0.4, 0.4, 0.4, 0.1),
                 jitter_p: float = 0.8, grayscale_p: float = 0.2, output_size: int | None = None,
                 crop_scale_max: float = 1.0):
        if not 0.0 < crop_scale_min <= crop_scale_max <= 1.0:
            raise ValueError(f"crop scales must satisfy 0 < crop_scale_min <= crop_scale_max <= 1, got "
                             f"{crop_scale_min}, {crop_scale_max}")
        for name, p in (("flip_p", flip_p), ("jitter_p", jitter_p), ("grayscale_p", grayscale_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if len(jitter) != 4 or any(j < 0 for j in jitter) or jitter[3] > 0.5:
            raise ValueError(f"jitter must be 4 non-negative strengths (hue <= 0.5), got {jitter}")
        if output_size is not None and output_size < 1:
            raise ValueError(f"output_size must be positive, got {output_size}")
        self.crop_scale_min = float(crop_scale_min)
        self.crop_scale_max = float(crop_scale_max)  # CSI scores with a fixed crop area (min = max = 0.54)
        self.flip_p = float(flip_p)
        self.jitter = tuple(float(j) for j in jitter)
        self.jitter_p = float(jitter_p)
        self.grayscale_p = float(grayscale_p)
        self.output_size = output_size

    def __repr__(self) -> str:
        return (f"SimCLRAugment(crop_scale_min={self.crop_scale_min}, flip_p={self.flip_p}, jitter={self.jitter}, "
                f"jitter_p={self.jitter_p}, grayscale_p={self.grayscale_p}, output_size={self.output_size})")

    @torch.no_grad()
    def __call__(self, images, generator: torch.Generator) -> torch.Tensor:
        u = self._draw(images, generator, self._N_DRAWS)
        return self._photometric(self._crop_flip(images, u[:, 0:5]), u[:, 5:11])

    @torch.no_grad()
    def crop(self, images, generator: torch.Generator) -> torch.Tensor:
        """The geometric half alone (resized crop and flip), for a method that transforms the crops before
        their colours change (CSI at 224 px rotates them)."""
        return self._crop_flip(images, self._draw(images, generator, 5))

    @torch.no_grad()
    def colour(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The photometric half alone (colour jitter and grayscale), with parameters of its own per sample."""
        return self._photometric(x, self._draw(x, generator, self._N_DRAWS - 5))

    def _draw(self, images, generator: torch.Generator, n: int) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, C, H, W) with C in {{1, 3}}, got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"expected float images in [0, 1], got {images.dtype}; use to_float() first")
        if generator.device.type != images.device.type:
            raise ValueError(f"generator is on {generator.device} but images are on {images.device}")
        # One draw of a fixed size per call: the generator always advances by the
        # same amount, whatever the probabilities are, so seeded runs stay aligned.
        u = torch.rand(images.shape[0], n, generator=generator, device=images.device, dtype=torch.float32)
        return u.to(images.dtype)

    def _photometric(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        x = self._color_jitter(x, u[:, 0:5])
        gray = (u[:, 5] < self.grayscale_p).view(-1, 1, 1, 1)
        x = torch.where(gray, to_grayscale(x).expand_as(x), x)
        return x.clamp(0.0, 1.0)

    def _crop_flip(self, images, u: torch.Tensor) -> torch.Tensor:
        """Random resized crop + horizontal flip as one affine resampling per sample."""
        if isinstance(images, Canvas):
            if not self.output_size:
                raise ValueError("images of different shapes (a Canvas) need an output_size for their crops")
            h, w = (side.to(u.dtype) for side in images.sides())  # each image's own sides
            fw, fh, cx, cy, sign = self._crop_box(u, h, w, images.dtype)
            return _sample_canvas(images, _affine(fw * sign, fh, cx, cy), self.output_size)
        b, c, h, w = images.shape
        out_h, out_w = (self.output_size, self.output_size) if self.output_size else (h, w)
        fw, fh, cx, cy, sign = self._crop_box(u, h, w, images.dtype)
        grid = F.affine_grid(_affine(fw * sign, fh, cx, cy), [b, c, out_h, out_w], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _crop_box(self, u: torch.Tensor, h, w, dtype):
        """The crop of each sample as fractions (fw, fh) of its image's width and height, its centre (cx, cy) in
        the image's normalised [-1, 1] coordinates, and the x scale's sign (-1: mirrored). h, w: the image's
        sides, one pair for the batch or one per sample."""
        area = self.crop_scale_min + (self.crop_scale_max - self.crop_scale_min) * u[:, 0]
        # torchvision re-samples (area, ratio) until the crop fits, then falls back
        # to a centre crop. Vectorised approximation: keep the area and draw the
        # log aspect ratio uniformly from the part of [log 3/4, log 4/3] where a
        # crop of that area fits (exact given the area; the area marginal is not
        # re-weighted). With area 1 this gives the full image, as torchvision does.
        log_lo = torch.log(area * w / h).clamp(min=math.log(3 / 4))
        log_hi = torch.log(w / (area * h)).clamp(max=math.log(4 / 3))
        ratio = torch.exp(log_lo + (log_hi - log_lo).clamp(min=0.0) * u[:, 1])  # crop width / height in pixels
        # Crop sides as fractions of the image sides (the clamp only matters for very non-square inputs).
        fw = torch.sqrt(area * ratio * h / w).clamp(max=1.0)
        fh = torch.sqrt(area / ratio * w / h).clamp(max=1.0)
        # Crop centre in normalised [-1, 1] coords, uniform over positions inside the image.
        cx = (1.0 - fw) * (2.0 * u[:, 2] - 1.0)
        cy = (1.0 - fh) * (2.0 * u[:, 3] - 1.0)
        sign = torch.where(u[:, 4] < self.flip_p, -1.0, 1.0).to(dtype)  # negative x scale = mirror
        return fw, fh, cx, cy, sign

    def _color_jitter(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Brightness, contrast, saturation, hue (fixed order), then keep only for Bernoulli(jitter_p) samples."""
        if self.jitter_p == 0.0 or not any(self.jitter):
            return x  # nothing can change; the random numbers were already drawn
        bri, con, sat, hue = self.jitter
        view = (-1, 1, 1, 1)
        f_bri = (1.0 + bri * (2.0 * u[:, 1] - 1.0)).view(view)
        f_con = (1.0 + con * (2.0 * u[:, 2] - 1.0)).view(view)
        f_sat = (1.0 + sat * (2.0 * u[:, 3] - 1.0)).view(view)
        shift = hue * (2.0 * u[:, 4] - 1.0)

        y = (x * f_bri).clamp(0.0, 1.0)
        mean = to_grayscale(y).mean(dim=(1, 2, 3), keepdim=True)
        y = (f_con * y + (1.0 - f_con) * mean).clamp(0.0, 1.0)
        if y.shape[1] == 3:  # saturation/hue are meaningless for one channel
            y = (f_sat * y + (1.0 - f_sat) * to_grayscale(y)).clamp(0.0, 1.0)
            if hue > 0:
                y = adjust_hue(y, shift)
        apply = (u[:, 0] < self.jitter_p).view(view)
        return torch.where(apply, y, x)


class CropFlipAugment:
    """The supervised-style augmentation of the eoe and GT baselines, batched and seeded like SimCLRAugment:
    a random crop of output_size (from a larger stored image as it is, or from the image zero-padded by `pad`
    pixels, torchvision's RandomCrop(size, padding)), horizontal flip p=0.5, optionally colour jitter of strength
    `jitter` (brightness, contrast, saturation, hue; always applied) and Gaussian noise of std `noise`.
    At 32 px eoe uses pad 4, jitter 0.01 and noise 0.001 (liznerski/eoe @11054e4, src/eoe/main/train_cifar.py).

    On a Canvas the crop ranges over each image's own box. `stretch` > 0 first resizes each image of a Canvas to
    stretch x stretch, aspect ratio lost (eoe's CLIP: Resize((256, 256)), then RandomCrop(224)), as one bilinear
    resampling with the crop; a plain batch is taken as already that size."""

    def __init__(self, output_size: int, pad: int = 0, jitter: float = 0.0, noise: float = 0.0, flip_p: float = 0.5,
                 stretch: int = 0):
        if stretch and (pad or stretch < output_size):
            raise ValueError(f"stretch ({stretch}) must be at least output_size ({output_size}) "
                             f"and excludes pad ({pad})")
        self.output_size, self.pad, self.noise, self.flip_p, self.stretch = output_size, pad, noise, flip_p, stretch
        self.jitter = SimCLRAugment(jitter=(jitter,) * 4, jitter_p=1.0) if jitter > 0 else None

    def __repr__(self) -> str:
        return (f"CropFlipAugment(output_size={self.output_size}, pad={self.pad}, "
                f"jitter={0 if self.jitter is None else self.jitter.jitter[0]}, noise={self.noise}"
                + (f", stretch={self.stretch})" if self.stretch else ")"))

    @torch.no_grad()
    def __call__(self, images, generator: torch.Generator) -> torch.Tensor:
        b = images.shape[0]
        u = torch.rand(b, 8, generator=generator, device=images.device)
        size = self.output_size
        if isinstance(images, Canvas):
            x = self._crop_canvas(images, u)
        else:
            x = F.pad(images, [self.pad] * 4) if self.pad else images
            top = (u[:, 0] * (x.shape[2] - size + 1)).long().clamp(max=x.shape[2] - size)
            left = (u[:, 1] * (x.shape[3] - size + 1)).long().clamp(max=x.shape[3] - size)
            x = crop_batch(x, top, left, size, size)
        x = torch.where((u[:, 2] < self.flip_p).view(-1, 1, 1, 1), x.flip(3), x)
        if self.jitter is not None:
            x = self.jitter._color_jitter(x, u[:, 3:8])
        if self.noise:
            x = x + self.noise * torch.randn(x.shape, generator=generator, device=x.device)
        return x

    def _crop_canvas(self, images: "Canvas", u: torch.Tensor) -> torch.Tensor:
        size = self.output_size
        if self.stretch:
            # the crop's top-left corner on the stretch x stretch image, in whole pixels, as RandomCrop draws it
            corner = (u[:, 0:2] * (self.stretch - size + 1)).floor().clamp(max=self.stretch - size)
            centre = (2 * corner + size) / self.stretch - 1  # (cy, cx) in the image's normalised coordinates
            scale = torch.full_like(centre[:, 0], size / self.stretch)
            return _sample_canvas(images, _affine(scale, scale, centre[:, 1], centre[:, 0]), size)
        # the crop's corner in the image's own coordinates (zero-padded by `pad`), then on the stored canvas
        h, w = images.sides()
        top = (u[:, 0] * (h + 2 * self.pad - size + 1)).long().clamp(max=h + 2 * self.pad - size)
        left = (u[:, 1] * (w + 2 * self.pad - size + 1)).long().clamp(max=w + 2 * self.pad - size)
        return images.crop(top, left, size, self.pad)


def _affine(sx: torch.Tensor, sy: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Per-sample affine maps [[sx, 0, tx], [0, sy, ty]], (B, 2, 3)."""
    zero = torch.zeros_like(sx)
    return torch.stack([torch.stack([sx, zero, tx], dim=1), torch.stack([zero, sy, ty], dim=1)], dim=1)


def _sample_canvas(images: "Canvas", theta: torch.Tensor, size: int) -> torch.Tensor:
    """size x size bilinear samples of each image of a Canvas through `theta`, an affine map from output
    coordinates to the image's own normalised coordinates (x along its width, y along its height, [-1, 1] edge to
    edge, as affine_grid with align_corners=False). The map is carried to the canvas (undoing the transposition of
    images stored transposed) and the sample points are clamped to the centres of the image's edge pixels, which is
    what the clipping of grid_sample does at the edges of a whole tensor: no sample reaches the canvas around."""
    b, c, height, width = images.shape
    rows, cols, transposed = images.boxes.to(theta.dtype).unbind(dim=1)
    # stored transposed: the image's x runs down the canvas and its y across
    theta = torch.where(transposed.bool().view(-1, 1, 1), theta.flip(1), theta)
    # an image's [-1, 1] spans the first `cols` of `width` canvas columns (and `rows` of `height` rows)
    scale = torch.stack([cols / width, rows / height], dim=1)
    theta = theta * scale.unsqueeze(2) + F.pad((scale - 1).unsqueeze(2), (2, 0))
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    low = constant((1 / width - 1, 1 / height - 1), grid.device, grid.dtype)
    high = torch.stack([(2 * cols - 1) / width - 1, (2 * rows - 1) / height - 1], dim=1).view(b, 1, 1, 2)
    grid = torch.minimum(torch.maximum(grid, low), high)
    return F.grid_sample(images.images, grid, mode="bilinear", padding_mode="border", align_corners=False)
