"""Iterative magnitude pruning with rewinding ([SCALE] Algorithm 1).

Level 0 trains the dense network from its initialisation W0 and saves W_k, the weights (and
optimizer state) after k iterations. Level L >= 1 prunes the previous level's final weights by
magnitude, resets the survivors to W_k (k = 0: the initialisation, the original LTH) and trains
from iteration k to the end, continuing the schedule and data order. Finished levels are read
from the store; a killed level resumes from its last checkpoint.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .config import ExperimentConfig
from .errors import ConfigError, StoreError, TrainingDiverged
from .distributed import barrier, world_size
from .experiment import Setup, module_config, prepare
from .masks import Mask, layer_fractions, magnitude_prune
from .steps import to_iterations
from .store import Run, Store, load_checked, load_tensors, save_checked, save_tensors, write_json, write_jsonl
from .train import train


@dataclass
class ImpResult:
    run_dir: str
    levels: list[dict[str, Any]] = field(default_factory=list)
    trained: int = 0  # levels trained by this call (0 when everything came from the store)

    def to_json(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "levels": self.levels}


@dataclass
class LevelPlan:
    """Where one level's training starts: which weights survive, their values, the iteration."""

    mask: Mask
    state: dict[str, torch.Tensor]
    start_iteration: int
    optimizer_state: dict | None = None
    checkpoint_steps: tuple[int, ...] = ()  # save weights + optimizer state at these iterations


def rewind_state(run: Run, setup: Setup) -> tuple[dict[str, torch.Tensor], dict | None]:
    """W_k and, if the config rewinds the optimizer, its state at k (from level 0 of `run`)."""
    k = setup.rewind
    if k == 0:
        return load_tensors(run.level_dir(0) / "start.safetensors", setup.device), None
    weights = load_tensors(run.level_dir(0) / f"step_{k}it.safetensors", setup.device)
    if setup.config.rewind_optimizer == "reset":
        return weights, None
    return weights, load_optimizer_state(run.level_dir(0) / f"step_{k}it_optimizer.pt", setup.device)


def load_optimizer_state(path: Path, device: torch.device) -> dict:
    payload = load_checked(path)
    try:
        return torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise StoreError(f"cannot read optimizer checkpoint {path} ({type(exc).__name__}); delete level_0 to recompute") from None


def pruned_mask(run: Run, setup: Setup, level: int, model: nn.Module) -> Mask:
    """Magnitude-prune level-1's final weights of `run` (level >= 1)."""
    previous = run.level_dir(level - 1)
    prune = setup.config.prune
    return magnitude_prune(Mask.load(previous / "mask.safetensors"), load_tensors(previous / "final.safetensors"),
                           layer_fractions(model, prune), prune.strategy, prune.fraction)


def imp_plan(run: Run, setup: Setup, level: int, model: nn.Module) -> LevelPlan:
    if level == 0:
        return LevelPlan(Mask.ones(model), model.state_dict(), 0,
                         checkpoint_steps=(setup.rewind,) if setup.rewind > 0 else ())
    state, optimizer_state = rewind_state(run, setup)
    return LevelPlan(pruned_mask(run, setup, level, model), state, setup.rewind, optimizer_state)


def train_level(run: Run, setup: Setup, level: int, model: nn.Module, plan: LevelPlan, quiet: bool,
                resume_every: int = 0, extra: dict[str, Any] | None = None, compile: bool = False) -> dict[str, Any]:
    """Train one level as planned and write mask, start, final, metrics and (last) summary."""
    config, directory = setup.config, run.level_dir(level)
    model.load_state_dict(plan.state)
    plan.mask.apply_(model)
    plan.mask.save(directory / "mask.safetensors")
    save_tensors(directory / "start.safetensors", model.state_dict())

    def save_checkpoint(iteration: int, m: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        save_tensors(directory / f"step_{iteration}it.safetensors", m.state_dict())
        buffer = io.BytesIO()
        torch.save(optimizer.state_dict(), buffer)
        save_checked(directory / f"step_{iteration}it_optimizer.pt", buffer.getvalue())

    began = time.perf_counter()
    result = train(model, setup.data, config.train, mask=plan.mask, start=plan.start_iteration,
                   data_seed=config.order_seed, augment=config.data.augment, device=setup.device,
                   checkpoints={k: save_checkpoint for k in plan.checkpoint_steps},
                   optimizer_state=plan.optimizer_state, resume_path=directory / "resume.pt",
                   resume_every=resume_every, quiet=quiet, compile=compile,
                   description=f"{config.kind} level {level} ({100 * plan.mask.fraction_remaining():.1f}% left)")
    save_tensors(directory / "final.safetensors", model.state_dict())
    write_jsonl(directory / "metrics.jsonl", result.metrics)
    summary = {"level": level, "kind": config.kind, "weights_remaining": plan.mask.fraction_remaining(),
               "weights_remaining_count": plan.mask.remaining(), "test_accuracy": result.final["test_accuracy"],
               "test_loss": result.final["test_loss"], "train_loss": result.final["train_loss"],
               "start_iteration": plan.start_iteration, "iterations": setup.total - plan.start_iteration,
               "seconds": round(time.perf_counter() - began, 3), "rewind": config.rewind,
               "rewind_optimizer": config.rewind_optimizer if plan.start_iteration > 0 else "fresh",
               "seed": config.seed, "data_seed": config.order_seed, "processes": world_size(), **(extra or {})}
    write_json(directory / "summary.json", summary)
    barrier()  # under torchrun: every rank reads what rank 0 wrote only after this
    return summary


MIN_AUTO_CHECKPOINT_ITERATIONS = 500  # on tiny epochs (MNIST-1D: 40 it) a checkpoint per epoch costs ~10%


def resume_interval(checkpoint_every: str, iterations_per_epoch: int) -> int:
    if checkpoint_every == "auto":
        epochs = -(-MIN_AUTO_CHECKPOINT_ITERATIONS // iterations_per_epoch)
        return epochs * iterations_per_epoch
    return to_iterations(checkpoint_every, iterations_per_epoch)


Planner = Callable[[Run, Setup, int, nn.Module], LevelPlan]


def run_levels(config: ExperimentConfig, levels: list[int], planner: Planner, store: Store, *, data_root=None,
               device: str = "auto", quiet: bool = False, data=None, checkpoint_every: str = "auto",
               model: nn.Module | None = None, wait: bool = True, extra: dict[str, Any] | None = None,
               compile: bool = False) -> ImpResult:
    """Train (or read from the store) the given levels of the run of `config`, in order."""
    run = store.run(config)
    result = ImpResult(str(run.dir))
    if all(run.level_done(level) for level in levels):
        result.levels = [run.summary(level) for level in levels]
        return result
    setup = prepare(config, data_root, store.cache_dir, device, data, model)  # bad data fails before the store changes
    run.create()
    resume_every = resume_interval(checkpoint_every, setup.iterations_per_epoch)
    with run.training([level for level in levels if not run.level_done(level)], wait):
        for level in levels:
            if not run.level_done(level):  # (another process may have finished it while we waited)
                model = setup.new_model()
                plan = planner(run, setup, level, model)
                try:
                    train_level(run, setup, level, model, plan, quiet, resume_every, extra, compile)
                except TrainingDiverged as exc:  # keep the last good checkpoint; `lth ls` shows the failure
                    run.mark_failed(level, str(exc))
                    raise
                run.clear_failed(level)
                result.trained += 1
            result.levels.append(run.summary(level))
    return result


def run_imp(config: ExperimentConfig, levels: int, store: Store | str | Path = "lth_runs", **options) -> ImpResult:
    """Run (or read from the store) levels 0..`levels` of IMP for `config`.

    options: data_root, device ("auto"), quiet, data (a dataset object instead of loading by name),
    model (an nn.Module to prune instead of config.model; its current weights are the initialisation),
    wait (default True: if another process trains this run, wait for it and read its result),
    checkpoint_every (a step, or "auto": every epoch, but at least 500 iterations apart; the full
    training state is saved this often so a killed run resumes), compile (torch.compile the model).
    """
    if options.get("model") is not None:
        config = module_config(config, options["model"])
    if levels < 0:
        raise ConfigError(f"--levels must be 0 or more, got {levels}")
    if config.kind != "imp":
        raise ConfigError(f"run_imp takes an IMP config, got kind {config.kind!r}")
    store = store if isinstance(store, Store) else Store(store)
    return run_levels(config, list(range(levels + 1)), imp_plan, store, **options)
