"""LeNet-300-100 (LeCun et al. 1998) as in Frankle & Carbin 2019: fc 300, 100, 10, Glorot-normal init."""
from __future__ import annotations

import torch
from torch import nn

from .registry import register


def glorot_init(model: nn.Module) -> nn.Module:
    """Glorot (Xavier) normal weights and zero biases for every linear and conv layer ([LTH] §2)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


class LeNet300100(nn.Module):
    def __init__(self, in_features: int = 784, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)
        glorot_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x.flatten(1)))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


@register("lenet300")
def lenet300(in_features: int = 784, num_classes: int = 10) -> nn.Module:
    return LeNet300100(in_features, num_classes)
