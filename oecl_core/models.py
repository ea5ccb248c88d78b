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
        super().__init__(nn.Linear(in_dim, in_dim), nn.BatchNorm1d(in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


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
