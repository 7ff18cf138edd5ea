"""The MNIST-1D lottery-ticket MLP (Greydanus 2020): 40 -> 500, residual 500 -> 500, -> 10."""
from __future__ import annotations

import torch
from torch import nn

from .registry import register


class ResidualMLP(nn.Module):
    def __init__(self, in_features: int = 40, hidden: int = 500, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)
        # PyTorch's default (Kaiming-uniform) initialisation, as in the MNIST-1D notebooks.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x.flatten(1)))
        h = h + torch.relu(self.fc2(h))
        return self.fc3(h)


@register("mnist1d_mlp")
def mnist1d_mlp(in_features: int = 40, hidden: int = 500, num_classes: int = 10) -> nn.Module:
    return ResidualMLP(in_features, hidden, num_classes)
