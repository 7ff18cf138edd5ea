"""What every experiment needs before training: the data, the iteration counts, a fresh model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .config import ExperimentConfig
from .data import load_dataset
from .errors import StepError
from .models import build_model
from .steps import to_iterations


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        from .errors import ConfigError

        raise ConfigError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(device)


@dataclass
class Setup:
    config: ExperimentConfig
    data: object
    device: torch.device
    iterations_per_epoch: int
    total: int  # iterations in the schedule
    rewind: int  # the rewind step, in iterations

    def new_model(self, seed: int | None = None) -> nn.Module:
        model = self.config.model
        return build_model(model.name, model.options, self.config.seed if seed is None else seed).to(self.device)


def prepare(config: ExperimentConfig, data_root: str | Path | None = None, cache_dir: str | Path | None = None,
            device: str | torch.device = "auto", data=None) -> Setup:
    data = data if data is not None else load_dataset(config.data.dataset, data_root, cache_dir)
    ipe = max(1, data.num_train // config.train.batch_size)
    total = to_iterations(config.train.iterations, ipe)
    rewind = to_iterations(config.rewind, ipe)
    if rewind >= total:
        raise StepError(f"rewind step {config.rewind} ({rewind} iterations) is not before the end of training "
                        f"({config.train.iterations} = {total} iterations)")
    return Setup(config, data, resolve_device(device), ipe, total, rewind)
