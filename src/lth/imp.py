"""Iterative magnitude pruning with rewinding ([SCALE] Algorithm 1).

Level 0 trains the dense network from its initialisation W0 and saves W_k, the weights after k
iterations. Level L >= 1 prunes the previous level's final weights by magnitude, resets the
survivors to W_k (k = 0: the initialisation, the original LTH) and trains from iteration k to
the end, continuing the schedule and data order. Finished levels are read from the store.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import ExperimentConfig
from .errors import ConfigError
from .experiment import Setup, prepare
from .masks import Mask, layer_fractions, magnitude_prune
from .store import Run, Store, load_tensors, save_tensors, write_json, write_jsonl
from .steps import to_iterations
from .train import train


@dataclass
class ImpResult:
    run_dir: str
    levels: list[dict[str, Any]] = field(default_factory=list)
    trained: int = 0  # levels trained by this call (0 when everything came from the store)

    def to_json(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "levels": self.levels}


def rewind_path(run: Run, rewind_iteration: int) -> Path:
    """W_k: the initialisation for k = 0, else the checkpoint saved during level 0."""
    if rewind_iteration == 0:
        return run.level_dir(0) / "start.safetensors"
    return run.level_dir(0) / f"step_{rewind_iteration}it.safetensors"


def level_mask(run: Run, setup: Setup, level: int, model: nn.Module) -> Mask:
    """The mask of `level`: all ones for level 0, else magnitude-pruned from level-1's final weights."""
    if level == 0:
        return Mask.ones(model)
    previous = run.level_dir(level - 1)
    prune = setup.config.prune
    return magnitude_prune(Mask.load(previous / "mask.safetensors"), load_tensors(previous / "final.safetensors"),
                           layer_fractions(model, prune), prune.strategy, prune.fraction)


def train_level(run: Run, setup: Setup, level: int, model: nn.Module, mask: Mask, start_state: dict[str, torch.Tensor],
                start_iteration: int, quiet: bool, checkpoint_steps: tuple[int, ...] = (),
                resume_every: int = 0) -> dict[str, Any]:
    """Train one level from `start_state` and write mask, start, final, metrics and summary."""
    config, directory = setup.config, run.level_dir(level)
    model.load_state_dict(start_state)
    mask.apply_(model)
    mask.save(directory / "mask.safetensors")
    save_tensors(directory / "start.safetensors", model.state_dict())

    def save_checkpoint(iteration: int, m: nn.Module) -> None:
        save_tensors(directory / f"step_{iteration}it.safetensors", m.state_dict())

    began = time.perf_counter()
    result = train(model, setup.data, config.train, mask=mask, start=start_iteration, data_seed=config.order_seed,
                   augment=config.data.augment, device=setup.device,
                   checkpoints={k: save_checkpoint for k in checkpoint_steps},
                   resume_path=directory / "resume.pt", resume_every=resume_every,
                   quiet=quiet, description=f"level {level} ({100 * mask.fraction_remaining():.1f}% left)")
    save_tensors(directory / "final.safetensors", model.state_dict())
    write_jsonl(directory / "metrics.jsonl", result.metrics)
    summary = {"level": level, "weights_remaining": mask.fraction_remaining(), "weights_remaining_count": mask.remaining(),
               "test_accuracy": result.final["test_accuracy"], "test_loss": result.final["test_loss"],
               "train_loss": result.final["train_loss"], "start_iteration": start_iteration,
               "iterations": setup.total - start_iteration, "seconds": round(time.perf_counter() - began, 3),
               "rewind": config.rewind, "rewind_optimizer": "reset"}
    write_json(directory / "summary.json", summary)
    return summary


def run_imp(config: ExperimentConfig, levels: int, store: Store | str | Path = "lth_runs", *, data_root=None,
            device: str = "auto", quiet: bool = False, data=None, checkpoint_every: str = "1ep") -> ImpResult:
    """Run (or read from the store) levels 0..`levels` of IMP for `config`.

    checkpoint_every: how often the full training state is saved so a killed run resumes.
    """
    if levels < 0:
        raise ConfigError(f"--levels must be 0 or more, got {levels}")
    store = store if isinstance(store, Store) else Store(store)
    run = store.run(config).create()
    result = ImpResult(str(run.dir))
    if all(run.level_done(level) for level in range(levels + 1)):
        result.levels = [run.summary(level) for level in range(levels + 1)]
        return result
    setup = prepare(config, data_root, store.cache_dir, device, data)
    resume_every = to_iterations(checkpoint_every, setup.iterations_per_epoch)
    with run.lock():
        for level in range(levels + 1):
            if not run.level_done(level):
                model = setup.new_model()
                mask = level_mask(run, setup, level, model)
                if level == 0:
                    start_state = model.state_dict()
                    start_iteration, checkpoints = 0, (setup.rewind,) if setup.rewind > 0 else ()
                else:
                    start_state = load_tensors(rewind_path(run, setup.rewind), setup.device)
                    start_iteration, checkpoints = setup.rewind, ()
                train_level(run, setup, level, model, mask, start_state, start_iteration, quiet, checkpoints, resume_every)
                result.trained += 1
            result.levels.append(run.summary(level))
    return result
