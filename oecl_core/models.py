"""ResNet-18 encoders (CIFAR and ImageNet stems, width multiplier) and the SimCLR projection head.

The model normalises its own input, so every augmentation and score works on images in [0, 1].
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# CIFAR statistics used by the public OECL code for 32-px data (also used for Tiny Images OE).
CIFAR_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
# The public code's 224-px ResNet maps [0, 1] to [-1, 1].
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)

STEMS = ("cifar", "imagenet")


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 returning the pooled feature (dimension 512 * width).

    stem="cifar": 3x3 conv, stride 1, no max-pool (for images of 32 px and smaller).
    stem="imagenet": 7x7 conv, stride 2, 3x3 max-pool (for 224-px images).
    """

    def __init__(self, stem: str = "cifar", width: float = 1.0, mean=CIFAR_MEAN, std=CIFAR_STD):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; valid choices: {', '.join(STEMS)}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        planes = [max(1, int(round(p * width))) for p in (64, 128, 256, 512)]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        if stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(3, planes[0], 3, 1, 1, bias=False), nn.BatchNorm2d(planes[0]), nn.ReLU(inplace=True)
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(3, planes[0], 7, 2, 3, bias=False), nn.BatchNorm2d(planes[0]), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        layers, in_planes = [], planes[0]
        for i, p in enumerate(planes):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(in_planes, p, stride), BasicBlock(p, p, 1)))
            in_planes = p
        self.layers = nn.Sequential(*layers)
        self.out_dim = planes[-1]
        if stem == "imagenet":
            # The public 224-px ResNet (torchvision's) initialises its convolutions with
            # kaiming_normal_(mode="fan_out", nonlinearity="relu"); the CIFAR one keeps PyTorch's default.
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.layers(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class ProjectionHead(nn.Sequential):
    """Linear(d, d) - BatchNorm1d - ReLU - Linear(d, 128): the SimCLR head of the paper (d = 512 at full width)."""

    def __init__(self, in_dim: int, out_dim: int = 128):
        super().__init__(nn.Linear(in_dim, in_dim), nn.BatchNorm1d(in_dim), nn.ReLU(inplace=True),
                         nn.Linear(in_dim, out_dim))


class ContrastiveNet(nn.Module):
    """Encoder + projection head. forward() returns f(x), the projection *before* l2-normalisation."""

    def __init__(self, stem: str = "cifar", width: float = 1.0, proj_dim: int = 128):
        super().__init__()
        mean, std = (CIFAR_MEAN, CIFAR_STD) if stem == "cifar" else (HALF_MEAN, HALF_STD)
        self.encoder = ResNet18(stem, width, mean, std)
        self.head = ProjectionHead(self.encoder.out_dim, proj_dim)

    def forward(self, x):
        return self.head(self.encoder(x))


def build_model(stem: str, width: float, proj_dim: int = 128) -> ContrastiveNet:
    return ContrastiveNet(stem=stem, width=width, proj_dim=proj_dim)


# --- The eoe baselines' networks (liznerski/eoe @11054e4, src/eoe/models/) -------------------------------------
# Both normalise with the normal class's own per-channel mean and std (eoe's `normalize`), kept in buffers that
# `fit_normalisation` sets from the training images before the first step, so a checkpoint carries them.


class ClassStatsNormalise(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("std", torch.ones(1, 3, 1, 1))

    @torch.no_grad()
    def fit(self, images01: torch.Tensor) -> None:
        """images01: (N, C, H, W) float in [0, 1]; C = 1 or 3."""
        x = images01.float().transpose(0, 1).reshape(images01.shape[1], -1)
        self.mean.copy_(x.mean(dim=1).view(1, -1, 1, 1).expand_as(self.mean))
        self.std.copy_(x.std(dim=1).clamp_min(1e-6).view(1, -1, 1, 1).expand_as(self.std))

    def forward(self, x):
        return (x - self.mean) / self.std


class EoeCNN32(nn.Module):
    """eoe's CNN32 (models/cnn.py, built with bias=True by train_cifar.py): three blocks of conv 5x5 (pad 2) ->
    BatchNorm (eps 1e-4, affine) -> leaky ReLU -> max-pool 2, with 32 / 64 / 128 channels, then FC -> 512 ->
    BatchNorm1d (eps 1e-4) -> leaky ReLU -> FC 256. `width` scales the channels (1 = eoe's); other image sizes
    change only the first FC layer's input (128 * (size / 8)^2, 2048 at 32 px)."""

    def __init__(self, image_size: int = 32, width: float = 1.0):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"eoe's CNN needs an image size divisible by 8 (three 2x2 poolings), got {image_size}")
        chans = [max(1, int(round(c * width))) for c in (32, 64, 128)]
        blocks, c_in = [], 3
        for c in chans:
            blocks += [nn.Conv2d(c_in, c, 5, padding=2), nn.BatchNorm2d(c, eps=1e-4), nn.LeakyReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*blocks)
        flat = chans[-1] * (image_size // 8) ** 2
        self.fc = nn.Sequential(nn.Linear(flat, 512), nn.BatchNorm1d(512, eps=1e-4), nn.LeakyReLU(),
                                nn.Linear(512, 256))
        self.out_dim = 256

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class CBAM(nn.Module):
    """Convolutional block attention (eoe's models/cbam.py): a channel gate (shared MLP, reduction 16, over the
    average- and max-pooled features, summed, sigmoid), then a spatial gate (channel-wise max and mean -> 7x7 conv
    -> BatchNorm (momentum 0.01) -> sigmoid)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        self.spatial = nn.Sequential(nn.Conv2d(2, 1, 7, padding=3, bias=False), nn.BatchNorm2d(1, momentum=0.01))

    def forward(self, x):
        gate = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        x = x * torch.sigmoid(gate)[:, :, None, None]
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAMBlock(BasicBlock):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__(in_planes, planes, stride)
        self.cbam = CBAM(planes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.cbam(self.bn2(self.conv2(out)))
        return F.relu(out + self.shortcut(x))


class EoeResNet18(nn.Module):
    """eoe's 224-px network (models/resnet.py, class `WideResNet`, not pretrained): ResNet-18 with CBAM in every
    block, ImageNet stem, global average pooling, FC 512 -> 256 (PyTorch's default initialisation). The same
    CBAM ResNet-18 is ss-ood's one-class network (ResidualNet('ImageNet', 18, 10, 'CBAM')), with FC 512 -> 10."""

    def __init__(self, width: float = 1.0, out_dim: int = 256):
        super().__init__()
        planes = [max(1, int(round(p * width))) for p in (64, 128, 256, 512)]
        self.stem = nn.Sequential(nn.Conv2d(3, planes[0], 7, 2, 3, bias=False), nn.BatchNorm2d(planes[0]),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers, c_in = [], planes[0]
        for i, p in enumerate(planes):
            layers.append(nn.Sequential(CBAMBlock(c_in, p, 1 if i == 0 else 2), CBAMBlock(p, p, 1)))
            c_in = p
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(planes[-1], out_dim)
        self.out_dim = out_dim

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class EoeNet(nn.Module):
    """Normalisation by the normal class's statistics, eoe's body for the resolution (CNN32 for images of at most
    64 px, the CBAM ResNet-18 otherwise) and, for the classifier objectives (BCE, focal), a Linear(256, 1) logit."""

    def __init__(self, image_size: int, width: float = 1.0, logit: bool = False):
        super().__init__()
        self.normalise = ClassStatsNormalise()
        self.body = EoeCNN32(image_size, width) if image_size <= 64 else EoeResNet18(width)
        self.logit = nn.Linear(self.body.out_dim, 1) if logit else None

    def forward(self, x):
        z = self.body(self.normalise(x))
        return z if self.logit is None else self.logit(z)


class HeadsNet(nn.Module):
    """An encoder (images in [0, 1] mapped to [-1, 1], as ss-ood and CSI do) and linear heads whose outputs are
    concatenated: GT's transformation classifiers, CSI's projection and shift classifier."""

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module]):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)

    def forward(self, x):
        h = self.encoder((x - 0.5) / 0.5)
        return torch.cat([head(h) for head in self.heads.values()], dim=1)
