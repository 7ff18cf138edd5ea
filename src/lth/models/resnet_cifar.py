"""ResNet-20/56/110 for CIFAR-10 (He et al. 2016, §4.2) in open_lth's `cifar_resnet_N[_W]` form.

A 3x3 conv of `width` filters, three stages of (depth - 2) / 6 basic blocks with width, 2 x width
and 4 x width filters (the first block of stages 2 and 3 halves the resolution), global average
pooling and one linear layer. Shortcuts that change shape are 1x1 stride-2 convolutions with batch
norm (He et al.'s option B, as in open_lth) rather than option A's zero padding, so every
layer's weights are ordinary prunable conv weights.

Parameter counts (width 16, 10 classes): ResNet-20 272,474, ResNet-110 1,730,714 -- the figures
open_lth's tests assert (models/test/test_cifar_resnet.py); ResNet-56 855,770. PAPERS.md's
"274K (0.27M)" for [LTH]'s "Resnet-18" and He et al.'s 0.27M both round to the same 0.27M.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .registry import register
from .vgg import kaiming_init


class Block(nn.Module):
    """Basic residual block: two convs with batch norm, a 1x1 conv + BN shortcut when the shape
    changes. `dims` 2 for images, 1 for sequences (the MNIST-1D ResNet)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3, dims: int = 2):
        super().__init__()
        conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
        pad = kernel_size // 2
        self.conv1 = conv(in_channels, out_channels, kernel_size, stride=stride, padding=pad, bias=False)
        self.bn1 = norm(out_channels)
        self.conv2 = conv(out_channels, out_channels, kernel_size, padding=pad, bias=False)
        self.bn2 = norm(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(conv(in_channels, out_channels, 1, stride=stride, bias=False), norm(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, width: int = 16, in_channels: int = 3):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
        blocks_per_stage = (depth - 2) // 6
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks, channels = [], width
        for stage in range(3):
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(Block(channels, width * 2 ** stage, stride))
                channels = width * 2 ** stage
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(out.mean(dim=(2, 3)))


@register("resnet20")
def resnet20(num_classes: int = 10, width: int = 16, in_channels: int = 3) -> nn.Module:
    return CifarResNet(20, num_classes, width, in_channels)


@register("resnet56")
def resnet56(num_classes: int = 10, width: int = 16, in_channels: int = 3) -> nn.Module:
    return CifarResNet(56, num_classes, width, in_channels)


@register("resnet110")
def resnet110(num_classes: int = 10, width: int = 16, in_channels: int = 3) -> nn.Module:
    return CifarResNet(110, num_classes, width, in_channels)
