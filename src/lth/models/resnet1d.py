"""A small 1-D convolutional ResNet for MNIST-1D: the deep-network counterpart of the MNIST-1D MLP.

Inputs (N, 40) are read as one-channel sequences (N, 1, 40). A kernel-3 conv stem, then stages of
basic residual blocks (two kernel-3 convs with batch norm) of `widths` channels, the first block of
every later stage halving the length with a 1x1 conv + BN projection shortcut (the CIFAR ResNets'
layout in 1-D), global average pooling and one linear layer. Kaiming-normal init as for the CIFAR
ResNets. With the defaults (widths 32/64/128, 2 blocks per stage) it has 241,194 parameters: the
"241K" 1-D ResNet of PAPERS.md's independent MNIST-1D runs.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .registry import register
from .resnet_cifar import Block
from .vgg import kaiming_init


class ResNet1d(nn.Module):
    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 128), blocks_per_stage: int = 2,
                 kernel_size: int = 3, in_channels: int = 1):
        super().__init__()
        if not widths or blocks_per_stage < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError("mnist1d_resnet needs at least one stage, blocks_per_stage >= 1 and an odd kernel_size")
        self.conv = nn.Conv1d(in_channels, widths[0], kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm1d(widths[0])
        blocks, channels = [], widths[0]
        for stage, width in enumerate(widths):
            for index in range(blocks_per_stage):
                blocks.append(Block(channels, width, 2 if stage > 0 and index == 0 else 1, kernel_size, dims=1))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # (N, length) -> (N, 1, length)
            x = x.unsqueeze(1)
        out = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(out.mean(dim=2))


@register("mnist1d_resnet")
def mnist1d_resnet(num_classes: int = 10, widths: tuple[int, ...] | list[int] = (32, 64, 128),
                   blocks_per_stage: int = 2, kernel_size: int = 3, in_channels: int = 1) -> nn.Module:
    return ResNet1d(num_classes, tuple(widths), blocks_per_stage, kernel_size, in_channels)
