"""ResNet-18 and ResNet-50 for ImageNet: torchvision's architecture, rebuilt here (no torchvision).

He et al. 2015 with torchvision's choices: 7x7/2 stem conv + 3x3/2 max pool, four stages of
basic (ResNet-18) or bottleneck (ResNet-50) blocks, the bottleneck's stride on its 3x3 conv
(torchvision's "ResNet v1.5"), 1x1 conv + BN projection shortcuts where the shape changes, global average pooling, fc. Parameter counts with 1000 classes: 11,689,512 and
25,557,032, torchvision's documented figures for resnet18 / resnet50 ([SCALE]: ResNet-50 25.5M).
Initialisation is torchvision's: Kaiming-normal (fan-out, ReLU) convs, BN weight 1 bias 0, and
PyTorch's default for the fc layer.
"""
from __future__ import annotations

import torch
from torch import nn

from .registry import register


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(out_channels)]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, width, 3, stride)
        self.conv2, self.bn2 = _conv_bn(width, width, 3)
        self.downsample = _shortcut(in_channels, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = _conv_bn(width, width * self.expansion, 1)
        self.downsample = _shortcut(in_channels, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_channels == out_channels:
        return None
    conv, bn = _conv_bn(in_channels, out_channels, 1, stride)
    return nn.Sequential(conv, bn)


class ImageNetResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, int, int, int], num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        # Attribute names follow torchvision, so its state dicts load into these models.
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for stage, count in enumerate(layers):
            width = 64 * 2 ** stage
            blocks = []
            for index in range(count):
                blocks.append(block(channels, width, 2 if stage > 0 and index == 0 else 1))
                channels = width * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for stage in range(1, 5):  # (layer1..layer4: torchvision's names)
            x = getattr(self, f"layer{stage}")(x)
        return self.fc(x.mean(dim=(2, 3)))


@register("resnet18")
def resnet18(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    return ImageNetResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels)


@register("resnet50")
def resnet50(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    return ImageNetResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels)
