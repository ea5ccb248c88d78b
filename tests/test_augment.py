import math

import pytest
import torch

from oecl_core.augment import (
    SimCLRAugment,
    adjust_hue,
    hsv_to_rgb,
    rgb_to_hsv,
    rotate90,
    to_float,
    to_grayscale,
)

OFF = dict(crop_scale_min=1.0, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)


def gen(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def images(b=8, c=3, s=32, seed=0) -> torch.Tensor:
    return torch.rand(b, c, s, s, generator=gen(seed))


def smooth_images(b=8, s=32, seed=0) -> torch.Tensor:
    """Low-frequency images, so bilinear resampling is close to exact."""
    return torch.nn.functional.interpolate(images(b, 3, 4, seed), size=(s, s), mode="bilinear", align_corners=False)


# ---------------------------------------------------------------- SimCLRAugment

def test_shape_dtype_range():
    x = images()
    y = SimCLRAugment()(x, gen(1))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert not y.requires_grad


def test_output_size():
    y = SimCLRAugment(output_size=16)(images(s=32), gen(1))
    assert y.shape == (8, 3, 16, 16)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_reproducible_and_seed_dependent():
    x, aug = images(), SimCLRAugment()
    assert torch.equal(aug(x, gen(5)), aug(x, gen(5)))
    assert not torch.allclose(aug(x, gen(5)), aug(x, gen(6)))
    g = gen(5)  # the generator advances between calls
    assert not torch.allclose(aug(x, g), aug(x, g))


def test_only_uses_given_generator():
    x, aug = images(), SimCLRAugment()
    torch.manual_seed(0)
    a = aug(x, gen(3))
    torch.manual_seed(12345)
    b = aug(x, gen(3))
    assert torch.equal(a, b)


def test_per_sample_randomness():
    x = images(b=1).expand(16, -1, -1, -1).contiguous()
    y = SimCLRAugment()(x, gen(2)).flatten(1)
    dist = torch.cdist(y, y)
    off_diag = dist[~torch.eye(16, dtype=torch.bool)]
    assert (off_diag > 1e-3).all()


def test_everything_off_is_identity():
    x = images()
    y = SimCLRAugment(**OFF)(x, gen(0))
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_grayscale_always():
    y = SimCLRAugment(**{**OFF, "grayscale_p": 1.0})(images(), gen(0))
    assert y.shape[1] == 3
    torch.testing.assert_close(y[:, 0], y[:, 1])
    torch.testing.assert_close(y[:, 0], y[:, 2])
    torch.testing.assert_close(y[:, :1], to_grayscale(images()), atol=1e-5, rtol=0)


def test_flip_always():
    x = images()
    y = SimCLRAugment(**{**OFF, "flip_p": 1.0})(x, gen(0))
    torch.testing.assert_close(y, torch.flip(x, dims=(3,)), atol=1e-5, rtol=0)


def test_crop_geometry_and_flip_rate():
    # Channel 0 is an x ramp, channel 1 a y ramp: the slope of each ramp in the
    # output is the crop side fraction (negative in x when flipped).
    s, b, smin = 32, 512, 0.2
    ramp = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    x = torch.stack((ramp.view(1, s).expand(s, s), ramp.view(s, 1).expand(s, s), torch.full((s, s), 0.5)))
    x = x.unsqueeze(0).expand(b, -1, -1, -1).contiguous()
    y = SimCLRAugment(crop_scale_min=smin, flip_p=0.5, jitter_p=0.0, grayscale_p=0.0)(x, gen(7))
    fw = (y[:, 0, :, 1:] - y[:, 0, :, :-1]).median(dim=-1).values.median(dim=-1).values * s
    fh = (y[:, 1, 1:, :] - y[:, 1, :-1, :]).median(dim=-2).values.median(dim=-1).values * s
    flipped = fw < 0
    fw = fw.abs()
    assert 0.35 < flipped.float().mean() < 0.65
    assert (fh > 0).all() and (fw <= 1 + 1e-4).all() and (fh <= 1 + 1e-4).all()
    area, ratio = fw * fh, fw / fh
    assert (area >= smin - 1e-3).all() and (area <= 1 + 1e-3).all()
    assert (ratio >= 3 / 4 - 1e-3).all() and (ratio <= 4 / 3 + 1e-3).all()
    assert area.min() < 0.3 and area.max() > 0.9  # the whole scale range is used
    torch.testing.assert_close(y[:, 2], torch.full_like(y[:, 2], 0.5))


def test_jitter_changes_colours_not_geometry():
    x = smooth_images()
    aug = SimCLRAugment(crop_scale_min=1.0, flip_p=0.0, jitter_p=1.0, grayscale_p=0.0)
    y = aug(x, gen(4))
    assert (y - x).abs().flatten(1).amax(dim=1).min() > 1e-3  # every sample jittered
    # A pure brightness jitter is a per-sample scaling.
    yb = SimCLRAugment(crop_scale_min=1.0, flip_p=0.0, jitter=(0.4, 0, 0, 0), jitter_p=1.0, grayscale_p=0.0)(
        x * 0.5, gen(4))
    f = yb / (x * 0.5)
    per_sample = f.flatten(1)
    assert (per_sample.std(dim=1) < 1e-4).all()
    assert ((per_sample[:, 0] >= 0.6 - 1e-5) & (per_sample[:, 0] <= 1.4 + 1e-5)).all()


def test_jitter_probability_mask():
    x = images(b=256, s=8)
    aug = SimCLRAugment(crop_scale_min=1.0, flip_p=0.0, jitter_p=0.5, grayscale_p=0.0)
    y = aug(x, gen(9))
    changed = (y - x).abs().flatten(1).amax(dim=1) > 1e-4
    assert 0.35 < changed.float().mean() < 0.65


def test_single_channel_and_errors():
    x = images(c=1)
    y = SimCLRAugment(jitter_p=1.0, grayscale_p=1.0)(x, gen(0))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError):
        SimCLRAugment()(images(c=2), gen(0))
    with pytest.raises(TypeError):
        SimCLRAugment()(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), gen(0))
    with pytest.raises(ValueError):
        SimCLRAugment(crop_scale_min=0.0)


def test_no_grad_input_requiring_grad():
    x = images().requires_grad_(True)
    y = SimCLRAugment()(x, gen(0))
    assert not y.requires_grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_device():
    x = images().cuda()
    y = SimCLRAugment()(x, gen(0, "cuda"))
    assert y.device == x.device and y.min() >= 0 and y.max() <= 1
    assert torch.equal(y, SimCLRAugment()(x, gen(0, "cuda")))


# ---------------------------------------------------------------- colour helpers

def test_hsv_round_trip():
    x = images()
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    # Grey pixels (zero saturation) and black pixels too.
    g = torch.rand(2, 1, 5, 5, generator=gen(1)).expand(-1, 3, -1, -1)
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(g)), g, atol=1e-6, rtol=0)
    z = torch.zeros(1, 3, 2, 2)
    assert torch.equal(hsv_to_rgb(rgb_to_hsv(z)), z)


def test_hue_shift():
    x = images()
    torch.testing.assert_close(adjust_hue(x, 0.0), x, atol=1e-5, rtol=0)
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    green = torch.zeros_like(red)
    green[:, 1] = 1.0
    torch.testing.assert_close(adjust_hue(red, 1 / 3), green, atol=1e-5, rtol=0)
    torch.testing.assert_close(adjust_hue(adjust_hue(x, 0.3), -0.3), x, atol=1e-4, rtol=0)
    # Per-sample shifts.
    both = adjust_hue(torch.cat((red, red)), torch.tensor([0.0, 1 / 3]))
    torch.testing.assert_close(both, torch.cat((red, green)), atol=1e-5, rtol=0)


def test_matches_torchvision_colour_ops():
    tvf = pytest.importorskip("torchvision.transforms.functional")
    x = images()
    for shift in (-0.1, 0.05, 0.37):
        torch.testing.assert_close(adjust_hue(x, shift), tvf.adjust_hue(x, shift), atol=1e-4, rtol=0)
    # torchvision uses 0.2989 for red instead of 0.299.
    torch.testing.assert_close(to_grayscale(x), tvf.rgb_to_grayscale(x), atol=2e-4, rtol=0)


# ---------------------------------------------------------------- misc

def test_rotate90():
    x = images(s=6)
    assert torch.equal(rotate90(x, 0), x)
    assert torch.equal(rotate90(x, 4), x)
    assert torch.equal(rotate90(x, 1), torch.rot90(x, 1, (2, 3)))
    assert torch.equal(rotate90(rotate90(x, 2), 2), x)
    assert torch.equal(rotate90(rotate90(x, 1), 3), x)
    assert not torch.equal(rotate90(x, 1), x)


def test_to_float():
    u = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    f = to_float(u)
    assert f.dtype == torch.float32
    torch.testing.assert_close(f.flatten(), torch.tensor([0.0, 128 / 255, 1.0]))
    with pytest.raises(TypeError):
        to_float(f)
    assert math.isclose(to_float(torch.full((1, 1, 1, 1), 255, dtype=torch.uint8)).item(), 1.0)
