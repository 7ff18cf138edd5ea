"""What every experiment needs before training: the data, the iteration counts, a fresh model."""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from . import data_identity
from .config import ExperimentConfig, section_key
from .data.loader import Dataset
from .errors import StepError
from .model_check import check_fits
from .models import MODELS, build_model
from .steps import to_iterations

if TYPE_CHECKING:
    from .store import Store


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
    data: Dataset
    device: torch.device
    iterations_per_epoch: int
    module: nn.Module | None = None  # a user's model object instead of a registry name

    @property
    def registered(self) -> bool:
        """Whether the network is one of the registry's (its forward code is known), not a user's."""
        return self.module is None and self.config.model.name in MODELS

    @property
    def total(self) -> int:
        """Iterations in the schedule."""
        return to_iterations(self.config.train.iterations, self.iterations_per_epoch)

    @property
    def rewind_iteration(self) -> int:
        """The config's rewind step (a string, "500it"), in iterations."""
        return self.rewind_iterations(self.config.rewind)

    def rewind_iterations(self, step: str) -> int:
        """A rewind step in iterations, checked to lie before the end of training."""
        return rewind_iterations(self.config, step, self.iterations_per_epoch)

    def new_model(self, seed: int | None = None) -> nn.Module:
        seed = self.config.seed if seed is None else seed
        if self.module is None:
            return build_model(self.config.model.name, self.config.model.options, seed).to(self.device)
        model = copy.deepcopy(self.module)
        if seed != self.config.seed:  # another initialisation of the same architecture (reinit)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                for m in model.modules():
                    reset = getattr(m, "reset_parameters", None)
                    if callable(reset):
                        reset()
        return model.to(self.device)


def module_config(config: ExperimentConfig, module: nn.Module) -> ExperimentConfig:
    """Name a user's model object by its class and a fingerprint of its initial weights, so runs on
    it are content-addressed like runs on registry models."""
    digest = hashlib.sha256(repr(module).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return config.override({"model.name": f"instance:{type(module).__qualname__}",
                            "model.options": {"fingerprint": digest.hexdigest()[:16]}})


_TRAINING_SET_SIZES: dict[tuple[str, str, str], int] = {}  # (dataset, options, root): examples, per process


def rewind_iterations(config: ExperimentConfig, step: str, iterations_per_epoch: int) -> int:
    """A rewind step of `config` in iterations, checked to lie before the end of its training."""
    k, total = to_iterations(step, iterations_per_epoch), to_iterations(config.train.iterations, iterations_per_epoch)
    if k >= total:
        raise StepError(f"rewind step {step} ({k} iterations) is not before the end of training "
                        f"({config.train.iterations} = {total} iterations); pass an earlier --rewind "
                        "(e.g. --rewind 0it) or a longer --iterations")
    return k


def schedule_warnings(config: ExperimentConfig, iterations_per_epoch: int) -> list[str]:
    """What of the learning-rate schedule lies at or past the end of training: accepted (a preset's
    schedule with a shorter --iterations is a common quick run), but said, as it changes the recipe."""
    total = to_iterations(config.train.iterations, iterations_per_epoch)
    late = [step for step in config.train.lr_drops if to_iterations(step, iterations_per_epoch) >= total]
    notes = [f"learning-rate drop{'s' if len(late) > 1 else ''} at {', '.join(late)} never happen{'' if len(late) > 1 else 's'}"
             ] if late else []
    if to_iterations(config.train.warmup, iterations_per_epoch) >= total > 0:
        notes.append(f"the {config.train.warmup} warm-up never reaches the full learning rate")
    return [f"{note}: training ends at {config.train.iterations} ({total} iterations)" for note in notes]


def epoch_length(config: ExperimentConfig, data_root: str | Path | None = None,
                 cache_dir: str | Path | None = None, data: Dataset | None = None) -> int:
    """Iterations per epoch of `config` on its data: training examples // batch (the loader drops the
    last incomplete batch). Without `data`, the training-set size is read once per process."""
    if data is None:
        key = (config.data.dataset, json.dumps(dict(config.data.options), sort_keys=True), str(data_root))
        if key not in _TRAINING_SET_SIZES:  # (an ImageNet folder is scanned once, not per config)
            _TRAINING_SET_SIZES[key] = data_identity.load(config, data_root, cache_dir).num_train
        size = _TRAINING_SET_SIZES[key]
    else:
        size = data.num_train
    return max(1, size // config.train.batch_size)


def canonical(configs: list[ExperimentConfig], store: Store, data_root: str | Path | None = None,
              data: Dataset | None = None) -> list[ExperimentConfig]:
    """Each config with its steps in iterations, the form runs are addressed by: `--iterations 2ep`
    and the same number of iterations name one run. Configs written in iterations (every preset but
    ImageNet's) come back as they are; a run stored before steps were canonicalised (under its epochs)
    keeps its address. `store` checks the runs it reads against this data from now on
    (lth.data_identity.bind): a run stored with other data is refused before any work."""
    resolved = []
    for config in configs:
        if not config.uses_epochs():
            resolved.append(config)
            continue
        in_iterations = config.in_iterations(epoch_length(config, data_root, store.cache_dir, data))
        legacy = store.run(config).dir.exists() and not store.run(in_iterations).dir.exists()
        resolved.append(config if legacy else in_iterations)
    data_identity.bind(store, data_root, data)
    return resolved


def canonical_steps(steps: tuple[str, ...] | list[str], config: ExperimentConfig, store: Store,
                    data_root: str | Path | None = None, data: Dataset | None = None) -> tuple[str, ...]:
    """Rewind steps (--rewind-points) in the form `canonical` gives them for `config`."""
    return tuple(canonical([config.override({"rewind": step})], store, data_root, data)[0].rewind for step in steps)


def prepare(config: ExperimentConfig, data_root: str | Path | None = None, cache_dir: str | Path | None = None,
            device: str | torch.device = "auto", data: Dataset | None = None, model: nn.Module | None = None) -> Setup:
    data = data if data is not None else data_identity.load(config, data_root, cache_dir)
    setup = Setup(config, data, resolve_device(device), epoch_length(config, data=data), model)
    setup.rewind_iterations(config.rewind)  # a rewind at or past the end is refused before any work
    check_fits(setup.new_model, data, config.model.name, section_key(config.model))
    return setup
