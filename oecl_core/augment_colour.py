"""Colour operations of the augmentations on float (B, C, H, W) batches in [0, 1]: luma, RGB <-> HSV and hue
rotation, vectorised over the batch (oecl_core.augment re-exports them)."""

from __future__ import annotations

import torch

from .device import constant

# ITU-R 601 luma weights, as used by PIL / torchvision.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) -> (B,1,H,W) luma; a single-channel batch is already grayscale."""
    if images.shape[1] == 1:
        return images
    w = constant(_GRAY_WEIGHTS, images.device, images.dtype).view(1, 3, 1, 1)  # cached: no host copy per call
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
    n = constant((5.0, 3.0, 1.0), hsv.device, hsv.dtype).view(1, 3, 1, 1)  # R, G, B
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
