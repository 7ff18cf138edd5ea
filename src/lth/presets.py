"""Named presets: the papers' hyperparameters. Each cites its source (see shared PAPERS.md:
[LTH] Frankle & Carbin 2019, [SCALE] Frankle et al. 2019, [LMC] Frankle et al. 2020,
[M1D] Greydanus 2020)."""
from __future__ import annotations

from dataclasses import dataclass

from .config import DataConfig, ExperimentConfig, ModelConfig, PruneConfig, TrainConfig
from .errors import ConfigError


@dataclass(frozen=True)
class Preset:
    description: str
    config: ExperimentConfig


PRESETS: dict[str, Preset] = {}


def _add(name: str, description: str, **fields) -> None:
    PRESETS[name] = Preset(description, ExperimentConfig(preset=name, **fields))


# [M1D] lottery-ticket experiment with the MNIST-1D MLP (40 -> 500, residual 500 -> 500, -> 10):
# Adam lr 2e-2, batch 100, ~1500 steps per round, layer-wise pruning, reset to initialisation.
# Per round: hidden layers 20%, output layer 10% (the [LTH] convention for fully-connected nets).
_add("mnist1d_mlp", "MNIST-1D residual MLP, Adam 2e-2, 1500 it/level, layer-wise 20% (output 10%) [M1D]",
     data=DataConfig("mnist1d"), model=ModelConfig("mnist1d_mlp"),
     train=TrainConfig(optimizer="adam", lr=2e-2, batch_size=100, iterations="1500it", eval_every="100it"),
     prune=PruneConfig(fraction=0.2, strategy="layerwise", layer_fractions={"output": 0.1}),
     rewind="0it")

# [LTH] Figure 2: LeNet-300-100 on MNIST, Adam 1.2e-3, batch 60, 50K iterations,
# layer-wise pruning fc 20%, output 10% per round; reset to initialisation.
_add("lenet300_mnist", "LeNet-300-100 on MNIST, Adam 1.2e-3, batch 60, 50K it, layer-wise 20%/10% [LTH Fig. 2]",
     data=DataConfig("mnist"), model=ModelConfig("lenet300"),
     train=TrainConfig(optimizer="adam", lr=1.2e-3, batch_size=60, iterations="50000it", eval_every="1000it"),
     prune=PruneConfig(fraction=0.2, strategy="layerwise", layer_fractions={"output": 0.1}),
     rewind="0it")


def get_preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; `lth presets` lists them: {', '.join(sorted(PRESETS))}")
    return PRESETS[name].config
