"""The MNIST-1D lottery-ticket MLP (Greydanus 2020): 40 -> 500, residual 500 -> 500, -> 10.

`blocks` > 1 stacks more residual 500 -> 500 layers (`deeper.0`, `deeper.1`, ...; no normalisation),
the depth axis of studies/regime_map.py; the default keeps the original network and its names."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .registry import register


class ResidualMLP(nn.Module):
    def __init__(self, in_features: int = 40, hidden: int = 500, num_classes: int = 10, blocks: int = 1):
        super().__init__()
        if blocks < 1:
            raise ConfigError(f"mnist1d_mlp needs blocks >= 1, got {blocks}")
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.deeper = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks - 1))  # before fc3: the output stays last
        self.fc3 = nn.Linear(hidden, num_classes)
        # PyTorch's default (Kaiming-uniform) initialisation, as in the MNIST-1D notebooks.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x.flatten(1)))
        for layer in (self.fc2, *self.deeper):
            h = h + torch.relu(layer(h))
        return self.fc3(h)


@register("mnist1d_mlp")
def mnist1d_mlp(in_features: int = 40, hidden: int = 500, num_classes: int = 10, blocks: int = 1) -> nn.Module:
    return ResidualMLP(in_features, hidden, num_classes, blocks)
