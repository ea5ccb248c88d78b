"""Batched, seeded image augmentations for SimCLR-style contrastive training.

Everything works on float tensors (B, C, H, W) in [0, 1] on whatever device the
batch lives on. Each sample gets its own random parameters, all drawn from an
explicit ``torch.Generator`` so that a run is reproducible from its seed and is
unaffected by the global RNG. No PIL and no per-image Python loops.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
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

# ITU-R 601 luma weights, as used by PIL / torchvision.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (B,C,H,W) -> float32 in [0,1]."""
    if images_uint8.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images_uint8.dtype}")
    return images_uint8.to(torch.float32).div_(255.0)


def rotate90(images: torch.Tensor, k: int) -> torch.Tensor:
    """Rotate a batch by k*90 degrees counter-clockwise (torch.rot90 over dims (2,3)); k in {0,1,2,3}.

    Other integers are taken modulo 4 (so k=4 is the identity).
    """
    return torch.rot90(images, int(k) % 4, dims=(2, 3))


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) -> (B,1,H,W) luma; a single-channel batch is already grayscale."""
    if images.shape[1] == 1:
        return images
    w = images.new_tensor(_GRAY_WEIGHTS).view(1, 3, 1, 1)
    return (images * w).sum(dim=1, keepdim=True)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) RGB in [0,1] -> HSV, all three in [0,1] (hue as a fraction of the colour wheel)."""
    r, g, b = rgb.unbind(dim=1)
    maxc, argmax = rgb.max(dim=1)
    minc = rgb.min(dim=1).values
    delta = maxc - minc
    # Safe denominators; the masked-out values are fixed up by the where() below.
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    h_r = torch.remainder((g - b) / d, 6.0)
    h_g = (b - r) / d + 2.0
    h_b = (r - g) / d + 4.0
    h = torch.where(argmax == 0, h_r, torch.where(argmax == 1, h_g, h_b))
    h = torch.where(delta > 0, h / 6.0, torch.zeros_like(h))
    return torch.stack((torch.remainder(h, 1.0), s, maxc), dim=1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv` (branch-free formula: c_n = v - v*s*clamp(min(k, 4-k), 0, 1))."""
    h, s, v = hsv.unbind(dim=1)
    n = hsv.new_tensor((5.0, 3.0, 1.0)).view(1, 3, 1, 1)  # R, G, B
    k = torch.remainder(n + h.unsqueeze(1) * 6.0, 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * ramp


def adjust_hue(images: torch.Tensor, shift: torch.Tensor | float) -> torch.Tensor:
    """Rotate the hue of RGB images by ``shift`` (fraction of the wheel; scalar or one value per sample)."""
    shift = torch.as_tensor(shift, dtype=images.dtype, device=images.device)
    if shift.dim() == 1:
        shift = shift.view(-1, 1, 1)
    hsv = rgb_to_hsv(images)
    h = torch.remainder(hsv[:, 0] + shift, 1.0)
    return hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), dim=1)).clamp(0.0, 1.0)


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
    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, C, H, W) with C in {{1, 3}}, got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(f"expected float images in [0, 1], got {images.dtype}; use to_float() first")
        if generator.device.type != images.device.type:
            raise ValueError(f"generator is on {generator.device} but images are on {images.device}")
        b = images.shape[0]
        # One draw of a fixed size per call: the generator always advances by the
        # same amount, whatever the probabilities are, so seeded runs stay aligned.
        u = torch.rand(b, self._N_DRAWS, generator=generator, device=images.device, dtype=torch.float32)
        u = u.to(images.dtype)
        x = self._crop_flip(images, u[:, 0:5])
        x = self._color_jitter(x, u[:, 5:10])
        gray = (u[:, 10] < self.grayscale_p).view(-1, 1, 1, 1)
        x = torch.where(gray, to_grayscale(x).expand_as(x), x)
        return x.clamp(0.0, 1.0)

    def _crop_flip(self, images: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Random resized crop + horizontal flip as one affine resampling per sample."""
        b, c, h, w = images.shape
        out_h, out_w = (self.output_size, self.output_size) if self.output_size else (h, w)
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
        sign = torch.where(u[:, 4] < self.flip_p, -1.0, 1.0).to(images.dtype)  # negative x scale = mirror
        theta = torch.zeros(b, 2, 3, dtype=images.dtype, device=images.device)
        theta[:, 0, 0] = fw * sign
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = fh
        theta[:, 1, 2] = cy
        grid = F.affine_grid(theta, [b, c, out_h, out_w], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

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


def crop_batch(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-sample crops of one size: out[b] = images[b, :, top[b]:top[b]+height, left[b]:left[b]+width]."""
    b = images.shape[0]
    rows = (top.view(-1, 1) + torch.arange(height, device=images.device)).view(b, height, 1)
    cols = (left.view(-1, 1) + torch.arange(width, device=images.device)).view(b, 1, width)
    out = images[torch.arange(b, device=images.device).view(b, 1, 1), :, rows, cols]  # (B, H, W, C)
    # contiguous NCHW: the permuted view has channels-last strides, and PyTorch's CPU convolution backward
    # corrupted memory on such an input at 224 px (torch 2.14.1, "double free or corruption")
    return out.permute(0, 3, 1, 2).contiguous()


class CropFlipAugment:
    """The supervised-style augmentation of the eoe and GT baselines, batched and seeded like SimCLRAugment:
    a random crop of output_size (from a larger stored image as it is, or from the image zero-padded by `pad`
    pixels, torchvision's RandomCrop(size, padding)), horizontal flip p=0.5, optionally colour jitter of strength
    `jitter` (brightness, contrast, saturation, hue; always applied) and Gaussian noise of std `noise`.
    At 32 px eoe uses pad 4, jitter 0.01 and noise 0.001 (liznerski/eoe @11054e4, src/eoe/main/train_cifar.py)."""

    def __init__(self, output_size: int, pad: int = 0, jitter: float = 0.0, noise: float = 0.0, flip_p: float = 0.5):
        self.output_size, self.pad, self.noise, self.flip_p = output_size, pad, noise, flip_p
        self.jitter = SimCLRAugment(jitter=(jitter,) * 4, jitter_p=1.0) if jitter > 0 else None

    def __repr__(self) -> str:
        return (f"CropFlipAugment(output_size={self.output_size}, pad={self.pad}, "
                f"jitter={0 if self.jitter is None else self.jitter.jitter[0]}, noise={self.noise})")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, _, h, w = images.shape
        u = torch.rand(b, 8, generator=generator, device=images.device)
        x = F.pad(images, [self.pad] * 4) if self.pad else images
        size = self.output_size
        top = (u[:, 0] * (x.shape[2] - size + 1)).long().clamp(max=x.shape[2] - size)
        left = (u[:, 1] * (x.shape[3] - size + 1)).long().clamp(max=x.shape[3] - size)
        x = crop_batch(x, top, left, size, size)
        x = torch.where((u[:, 2] < self.flip_p).view(-1, 1, 1, 1), x.flip(3), x)
        if self.jitter is not None:
            x = self.jitter._color_jitter(x, u[:, 3:8])
        if self.noise:
            x = x + self.noise * torch.randn(x.shape, generator=generator, device=x.device)
        return x
