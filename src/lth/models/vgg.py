"""VGG-11/16/19 for CIFAR-10 as in [LTH]/[SCALE] and open_lth's `cifar_vgg_N`.

3x3 conv + batch norm + ReLU modules with 2x2 max pooling between stages, no pool after the last
stage (a 2x2 map on 32x32 inputs), average pooling to 1x1 and a single linear classifier 512 -> 10.

Parameter counts (10 classes, conv biases and BN weights/biases included): VGG-11 9,231,114,
VGG-16 14,728,266, VGG-19 20,040,522 -- the figures open_lth's tests assert
(models/test/test_cifar_vgg.py); [LTH] Fig. 2 rounds VGG-19 to 20.0M.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register

PLANS = {  # integers: conv widths; "M": 2x2 max pool
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512),
}


def kaiming_init(model: nn.Module) -> nn.Module:
    """Kaiming-normal (fan-in, ReLU gain) conv and linear weights, zero biases, BN weight 1 bias 0.

    open_lth's `kaiming_normal` initialiser for the CIFAR VGGs and ResNets of [SCALE]/[LMC]; biases
    are zeroed (rather than left at PyTorch's default) so a layer's whole init is one rule.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


class ConvBN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class VGG(nn.Module):
    def __init__(self, plan: tuple, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for spec in plan:
            if spec == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers.append(ConvBN(channels, spec))
                channels = spec
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Adaptive pooling: on 32x32 inputs this is open_lth's AvgPool2d(2) of the 2x2 map.
        x = nn.functional.adaptive_avg_pool2d(self.layers(x), 1)
        return self.fc(x.flatten(1))


@register("vgg11")
def vgg11(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return VGG(PLANS[11], num_classes, in_channels)


@register("vgg16")
def vgg16(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return VGG(PLANS[16], num_classes, in_channels)


@register("vgg19")
def vgg19(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return VGG(PLANS[19], num_classes, in_channels)
