"""Levels of runs in the store, trained by the one loop: how a level starts (LevelPlan, or Adopted
from a run that already computed it), training one level or a stacked group of them, and running
the levels of several runs in order with locks, resume and replicas. IMP (imp.py), the dense run
(dense.py) and the branches (branches.py) are planners over this."""
from __future__ import annotations

import contextlib
import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .config import ExperimentConfig
from .distributed import barrier, world_size
from .errors import ConfigError, ReplicasDiverged, TrainingDiverged
from .execution import execution, warn_if_executed_differently
from .experiment import Setup, prepare
from .masks import Mask
from .models import build_model
from .options import RunOptions
from .config import section_key
from .replica_choice import ReplicaChoice, choose_replicas
from .replicas import (check_replicas, replica_optimizer_state, replica_state, stack_groups, stack_masks,
                       stack_models, stacks_precision)
from .steps import to_iterations
from .store import (EXECUTION_FILE, FINAL_FILE, MASK_FILE, METRICS_FILE, RESUME_FILE, START_FILE, SUMMARY_FILE, Run,
                    Store, level_dir_name, load_tensors, load_torch_checked, resume_group_file, save_checked,
                    save_tensors, step_file, step_optimizer_file, write_json, write_jsonl)
from .train import ResumeCadence, train_replicas


@dataclass
class ImpResult:
    run_dir: str
    levels: list[dict[str, Any]] = field(default_factory=list)
    trained: int = 0  # levels trained by this call (0 when everything came from the store)


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
        return load_tensors(run.level_dir(0) / START_FILE, setup.device), None
    weights = load_tensors(run.level_dir(0) / step_file(k), setup.device)
    if setup.config.rewind_optimizer == "reset":
        return weights, None
    return weights, load_optimizer_state(run.level_dir(0) / step_optimizer_file(k), setup.device)


def load_optimizer_state(path: Path, device: torch.device) -> dict:
    return load_torch_checked(path, device, "delete level_0 to recompute")


@dataclass(frozen=True)
class Adopted:
    """A level that another run already computed, bit for bit: this run's level becomes that one
    (hard links to its files, Run.adopt_level) instead of being trained again."""

    source: Run
    level: int
    files: tuple[str, ...] = (MASK_FILE, START_FILE, FINAL_FILE, METRICS_FILE, EXECUTION_FILE)
    changes: dict[str, Any] = field(default_factory=dict)  # summary fields of this run (kind, rewind, ...)


@dataclass
class Training:
    """One level of one run, planned and ready to train."""

    run: Run
    setup: Setup
    level: int
    model: nn.Module
    plan: LevelPlan
    extra: dict[str, Any] | None = None

    @property
    def directory(self) -> Path:
        return self.run.level_dir(self.level)

    def start(self) -> None:
        """Set the model to the plan's start: its weights, the pruned ones zeroed."""
        self.model.load_state_dict(self.plan.state)
        self.plan.mask.apply_(self.model)


def train_levels(trainings: list[Training], quiet: bool, resume_every: ResumeCadence | int = 0,
                 compile: bool | str = False, choice: ReplicaChoice | None = None) -> list[dict[str, Any]]:
    """Train one level of each of `trainings` -- one alone, several as stacked replicas (they share
    model, training config and start; see replicas.py) -- and write each one's files (`choice`: why
    they were grouped so, for the execution record)."""
    first, replicas = trainings[0], len(trainings)
    how = execution(first.setup.device, first.setup.config.train.precision, replicas, compile,
                    choice.why if choice else None)
    resuming = (first.directory / resume_name(trainings)).exists()
    for t in trainings:
        warn_if_executed_differently(t, how, resuming)
        t.start()
        t.plan.mask.save(t.directory / MASK_FILE)
        save_tensors(t.directory / START_FILE, t.model.state_dict())
        write_json(t.directory / EXECUTION_FILE, how)
    began = time.perf_counter()
    results = train_group(trainings, quiet, resume_every, compile)
    seconds = (time.perf_counter() - began) / replicas  # each replica's share of the wall time
    for t in trainings:  # the level is done: a stacked group's state left by another grouping is stale
        for stale in t.directory.glob(resume_group_file("*")):
            stale.unlink(missing_ok=True)
    summaries, failed = [], []
    for index, (t, result) in enumerate(zip(trainings, results)):
        c = t.setup.config
        if result.failure:  # one stacked replica diverged: it fails alone, the others are kept
            failed.append(f"run {t.run.hash} level {t.level}: {result.failure}")
            t.run.mark_failed(t.level, f"{result.failure} (replica {index + 1} of {replicas} stacked; the others "
                                       "finished)")
            continue
        save_tensors(t.directory / FINAL_FILE, t.model.state_dict())
        write_jsonl(t.directory / METRICS_FILE, result.metrics)
        summary = {"level": t.level, "kind": c.kind, "weights_remaining": t.plan.mask.fraction_remaining(),
                   "weights_remaining_count": t.plan.mask.remaining(), "test_accuracy": result.final["test_accuracy"],
                   "test_loss": result.final["test_loss"], "train_loss": result.final["train_loss"],
                   "start_iteration": t.plan.start_iteration, "iterations": t.setup.total - t.plan.start_iteration,
                   "seconds": round(seconds, 3), "replicas": replicas, "rewind": c.rewind,
                   "rewind_optimizer": c.rewind_optimizer if t.plan.start_iteration > 0 else "fresh",
                   "seed": c.seed, "data_seed": c.order_seed, "processes": world_size(), "execution": how,
                   # the runs trained with it as one stacked computation, in order (replay_rewind_point)
                   **({"stack": [u.run.hash for u in trainings]} if replicas > 1 else {}),
                   **(t.extra or {})}
        write_json(t.directory / SUMMARY_FILE, summary)
        summaries.append(summary)
    barrier()  # under torchrun: every rank reads what rank 0 wrote only after this
    if failed:
        raise ReplicasDiverged(f"{failed[0]}" + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "") +
                               f"; the other {replicas - len(failed)} stacked replica(s) finished")
    return summaries


def train_group(trainings: list[Training], quiet: bool, resume_every: ResumeCadence | int = 0, compile: bool | str = False,
                stop: int | None = None) -> list:
    """Train `trainings` (one, or several stacked as replicas; their models set to their start) from
    their plan to `stop` (default: the end); save the plan's checkpoints into each one's level folder;
    leave each one's weights in its model. Returns one TrainResult per training."""
    first, replicas = trainings[0], len(trainings)
    config, plan = first.setup.config, first.plan

    def save_checkpoint(iteration: int, m: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        state, optimizer_state = m.state_dict(), optimizer.state_dict()
        for index, t in enumerate(trainings):
            save_tensors(t.directory / step_file(iteration), state if replicas == 1 else replica_state(state, index))
            buffer = io.BytesIO()
            torch.save(optimizer_state if replicas == 1 else replica_optimizer_state(optimizer_state, index, replicas),
                       buffer)
            save_checked(t.directory / step_optimizer_file(iteration), buffer.getvalue())

    model = first.model if replicas == 1 else stack_models([t.model for t in trainings], first.setup.registered)
    mask = plan.mask if replicas == 1 else stack_masks([t.plan.mask for t in trainings])
    seeds = [t.setup.config.order_seed for t in trainings]
    left = f"{100 * plan.mask.fraction_remaining():.1f}% left" + (f", {replicas} replicas" if replicas > 1 else "")
    results = train_replicas(model, first.setup.data, config.train, seeds, mask=mask, start=plan.start_iteration,
                             stop=stop, augment=config.data.augment, device=first.setup.device,
                             checkpoints={k: save_checkpoint for k in plan.checkpoint_steps},
                             optimizer_state=plan.optimizer_state,
                             resume_path=None if stop is not None else first.directory / resume_name(trainings),
                             resume_every=resume_every, quiet=quiet, compile=compile,
                             description=f"{config.kind} level {first.level} ({left})" if stop is None else
                             f"{config.kind}: replaying to iteration {stop}")
    if replicas > 1:
        for index, t in enumerate(trainings):
            t.model.load_state_dict(replica_state(model.state_dict(), index))
    return results


def resume_name(trainings: list[Training]) -> str:
    """The resume file of a training, or of a stacked group: named by its members in order, so a
    rerun that forms the same group resumes it (kept in the first member's level folder)."""
    if len(trainings) == 1:
        return RESUME_FILE
    members = hashlib.sha256(" ".join(t.run.hash for t in trainings).encode()).hexdigest()[:16]
    return resume_group_file(members)


# auto: a killed run loses at most ~2 minutes of training, and a save (milliseconds for the small
# networks, ~1 s for ResNet-50's weights and momentum) costs well under 1% of the time between saves.
# An iteration cadence cannot do both: every epoch of MNIST-1D (40 it) costs ~10%, every ImageNet
# epoch on a CPU is hours. Where the saves fall does not change the result (resumes are exact).
AUTO_CHECKPOINT_SECONDS = 120.0


def resume_cadence(checkpoint_every: str, iterations_per_epoch: int) -> ResumeCadence:
    """--checkpoint-every: "auto" (every AUTO_CHECKPOINT_SECONDS of training) or a step ("500it", "1ep")."""
    if checkpoint_every == "auto":
        return ResumeCadence(seconds=AUTO_CHECKPOINT_SECONDS)
    return ResumeCadence(iterations=to_iterations(checkpoint_every, iterations_per_epoch))


Planner = Callable[[Run, Setup, int, nn.Module], "LevelPlan | Adopted"]


def adopt(run: Run, level: int, adopted: Adopted, extra: dict[str, Any] | None = None) -> None:
    summary = {**adopted.source.summary(adopted.level), **adopted.changes, **(extra or {}),
               "level": level, "adopted_from": f"{adopted.source.hash}/{level_dir_name(adopted.level)}"}
    run.adopt_level(level, adopted.source, adopted.level, adopted.files, summary)
    barrier()


@dataclass
class Chain:
    """Levels of one run to train in order: its config, how each level starts, extra summary fields."""

    config: ExperimentConfig
    planner: Planner
    extra: dict[str, Any] | None = None


def run_chains(chains: list[Chain], levels: list[int], store: Store, options: RunOptions = RunOptions()
               ) -> list[ImpResult]:
    """Train (or read) the given levels of several runs, level by level; at each level the runs that
    can share a stacked model train as replicas of one computation (`replicas`: auto, off or K)."""
    replicas = options.replicas
    for chain in chains:
        check_replicas(replicas, chain.config.train.precision)
    runs = [store.run(chain.config) for chain in chains]
    results = [ImpResult(str(run.dir)) for run in runs]
    pending = [i for i, run in enumerate(runs) if not all(run.level_done(level) for level in levels)]
    setups: dict[int, Setup] = {}
    for i in pending:  # bad data fails here, before the store changes
        setups[i] = setup_for(chains[i].config, store, setups.values(), options)
    with contextlib.ExitStack() as locks:
        for i in sorted(pending, key=lambda i: runs[i].hash):  # one global order: no deadlock between callers
            runs[i].create()
            locks.enter_context(runs[i].training([level for level in levels if not runs[i].level_done(level)], options.wait))
        for level in levels:
            trainings = []
            for i in pending:
                if not runs[i].level_done(level):  # (another process may have finished it while we waited)
                    new_model = setups[i].new_model()
                    plan = chains[i].planner(runs[i], setups[i], level, new_model)
                    if isinstance(plan, Adopted):
                        adopt(runs[i], level, plan, chains[i].extra)
                    else:
                        trainings.append(Training(runs[i], setups[i], level, new_model, plan, chains[i].extra))
            choice = choose_replicas(replicas, trainings[0].setup, len(trainings), store) if trainings else None
            for group in replica_groups(trainings, choice.size if choice else 1):
                resume_every = resume_cadence(options.checkpoint_every, group[0].setup.iterations_per_epoch)
                try:
                    train_levels(group, options.quiet, resume_every, options.compile, choice)
                except ReplicasDiverged:  # the diverged replicas are marked, the others finished
                    raise
                except TrainingDiverged as exc:  # keep the last good checkpoint; `lth ls` shows the failure
                    for t in group:
                        t.run.mark_failed(level, str(exc))
                    raise
                for t in group:
                    t.run.clear_failed(level)
                    results[runs.index(t.run)].trained += 1
    for run, result in zip(runs, results):
        result.levels = [run.summary(level) for level in levels]
    return results


def replica_groups(trainings: list[Training], size: int) -> list[list[Training]]:
    """A level's trainings in the groups that train as one stacked computation (replicas.stack_groups,
    the rule every path uses): same model, data and training config, same start and checkpoints; a
    training that restores an optimizer state or resumes a half-done file of its own trains alone."""
    return stack_groups(trainings, size, _stack_key)


def _stack_key(t: Training) -> tuple | None:
    c = t.setup.config
    if t.plan.optimizer_state is not None or (t.directory / RESUME_FILE).exists() \
            or not stacks_precision(c.train.precision):
        return None
    return (section_key(c.model), section_key(c.data), c.train, t.plan.start_iteration, t.plan.checkpoint_steps)


def resolve_replicas(config: ExperimentConfig, trainings: int, store: Store, options: RunOptions) -> int:
    """--replicas as the number K that `trainings` runs of `config` stack by (choose_replicas): the
    group size of a study's jobs, decided once in the driver, so every executor stacks alike."""
    if options.replicas in ("off", 1, "1") or trainings <= 1:
        return 1
    return choose_replicas(options.replicas, setup_for(config, store, (), options), trainings, store).size


def setup_for(config: ExperimentConfig, store: Store, known: Iterable[Setup], options: RunOptions) -> Setup:
    """prepare() the config, reusing the dataset of a known setup on the same data (loaded once)."""
    shared = next((s.data for s in known if s.config.data == config.data), options.data)
    return prepare(config, options.data_root, store.cache_dir, options.device, shared, options.model)


def shape_model(config: ExperimentConfig) -> nn.Module:
    """The config's model on the meta device: shapes without memory or initialisation cost."""
    try:
        with torch.device("meta"):
            return build_model(config.model.name, config.model.options, config.seed)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - a user's factory that cannot build on the meta device: build it for real
        return build_model(config.model.name, config.model.options, config.seed)
