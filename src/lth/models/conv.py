"""Conv-2 / Conv-4 / Conv-6 of Frankle & Carbin 2019 ([LTH] Fig. 2): VGG-like CIFAR-10 nets.

Blocks of two 3x3 'same' convolutions (64, then 128, then 256 filters) each followed by 2x2 max
pooling, then fully-connected 256, 256 and the output layer; ReLU; no batch norm; Glorot-normal
weights and zero biases ([LTH] §2).

Parameter counts on CIFAR-10 (32x32x3 inputs, 10 classes, biases included): Conv-2 4,301,642 and
Conv-4 2,425,930 match [LTH]'s 4.3M and 2.4M. Conv-6 as [LTH] describes it has 2,262,602
parameters, not the 1.7M of [LTH] Fig. 2: the layer list is what we reproduce (the later
literature, e.g. Ramanujan et al. 2020, lists Conv-6 as 2.26M).
"""
from __future__ import annotations

import torch
from torch import nn

from .lenet import glorot_init
from .registry import register


class ConvNet(nn.Module):
    def __init__(self, blocks: int, num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for block in range(blocks):
            width = 64 * 2 ** block
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        features = channels * (image_size // 2 ** blocks) ** 2  # each pool halves (floors) the side
        fcs: list[nn.Module] = []
        for width in hidden:
            fcs += [nn.Linear(features, width), nn.ReLU()]
            features = width
        fcs.append(nn.Linear(features, num_classes))
        self.classifier = nn.Sequential(*fcs)
        glorot_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


@register("conv2")
def conv2(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    return ConvNet(1, num_classes, in_channels, image_size)


@register("conv4")
def conv4(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    return ConvNet(2, num_classes, in_channels, image_size)


@register("conv6")
def conv6(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    return ConvNet(3, num_classes, in_channels, image_size)
