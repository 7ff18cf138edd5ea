"""Levels of runs in the store, trained by the one loop: how a level starts (LevelPlan, or Adopted
from a run that already computed it) and `train_level`, which trains one level of several runs --
locked, resumed, the runs that can share a stacked model as replicas of one computation -- and
writes each run's files. Every level of every run is trained there: a job (jobs.py) calls it with
the planner of its kind (imp.py, dense.py, branches.py)."""
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

from .config import ExperimentConfig, section_key
from .distributed import barrier, world_size
from .errors import ConfigError, ReplicasDiverged, TrainingDiverged
from .execution import execution, warn_if_executed_differently
from .experiment import Setup, prepare
from .masks import Mask
from .models import build_model
from .options import RunOptions
from .replica_choice import ReplicaChoice, choose_replicas, without_network
from .replicas import (check_replicas, replica_optimizer_state, replica_state, stack_groups, stack_masks,
                       stack_models, stacks_precision)
from .steps import to_iterations
from .store import (EXECUTION_FILE, FINAL_FILE, MASK_FILE, METRICS_FILE, RESUME_FILE, START_FILE, SUMMARY_FILE, Run,
                    Store, level_dir_name, load_tensors, load_torch_checked, resume_group_file, save_checked,
                    save_tensors, step_file, step_optimizer_file, write_json, write_jsonl)
from .train import ResumeCadence, TrainResult, train_replicas


@dataclass
class RunResult:
    """What a run function returns per run: its folder and the summaries of the levels asked for."""

    run_dir: str
    levels: list[dict[str, Any]] = field(default_factory=list)
    trained: int = 0  # levels trained by this call (0 when everything came from the store)


ImpResult = RunResult  # (its name before branches and dense runs returned it too)


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
    k = setup.rewind_iteration
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


Planner = Callable[[Run, "Setup", int, nn.Module], "LevelPlan | Adopted"]


@dataclass
class Chain:
    """A run whose levels train in order: its config, how each level starts, extra summary fields."""

    config: ExperimentConfig
    planner: Planner
    extra: dict[str, Any] | None = None


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


def train_level(chains: list[Chain], level: int, store: Store, options: RunOptions = RunOptions(),
                choice: ReplicaChoice | None = None) -> list[Run]:
    """Train (or read) level `level` of each chain's run: adopted where its plan says another run
    computed it, else trained -- the runs that can share a stacked model as replicas of one computation,
    K of them by `choice` (the driver's, resolve_replicas) or else by `options.replicas` (auto, off or
    K) -- each run locked while it trains. Returns the runs it trained."""
    for chain in chains:
        check_replicas(options.replicas, chain.config.train.precision)
    runs = [store.run(chain.config) for chain in chains]
    pending = [i for i, run in enumerate(runs) if not run.level_done(level)]
    setups: dict[int, Setup] = {}
    for i in pending:  # bad data fails here, before the store changes
        setups[i] = setup_for(chains[i].config, store, setups.values(), options)
    trained: list[Run] = []
    with contextlib.ExitStack() as locks:
        for i in sorted(pending, key=lambda i: runs[i].hash):  # one global order: no deadlock between callers
            runs[i].create()
            locks.enter_context(runs[i].training([level], options.wait))
        trainings = [t for i in pending if (t := _planned(chains[i], runs[i], setups[i], level)) is not None]
        if choice is None and trainings:
            choice = choose_replicas(options.replicas, trainings[0].setup, len(trainings), store)
        for group in replica_groups(trainings, choice.size if choice else 1):
            first, how = group[0], _begin(group, options.compile, choice)
            model, mask = stacked(group)
            began = time.perf_counter()
            try:
                results = train_replicas(
                    model, first.setup.data, first.setup.config.train, [t.setup.config.order_seed for t in group],
                    mask=mask, start=first.plan.start_iteration, augment=first.setup.config.data.augment,
                    device=first.setup.device, checkpoints={k: checkpoint_saver(group) for k in first.plan.checkpoint_steps},
                    optimizer_state=first.plan.optimizer_state, resume_path=first.directory / resume_name(group),
                    resume_every=resume_cadence(options.checkpoint_every, first.setup.iterations_per_epoch),
                    quiet=options.quiet, compile=options.compile, description=_description(group))
            except TrainingDiverged as exc:  # keep the last good checkpoint; `lth ls` shows the failure
                for t in group:
                    t.run.mark_failed(level, str(exc))
                raise
            _finish(group, model, results, how, (time.perf_counter() - began) / len(group))
            trained += [t.run for t in group]
    return trained


def _planned(chain: Chain, run: Run, setup: Setup, level: int) -> Training | None:
    """The level's training as its chain plans it, or None: adopted (done) or done meanwhile."""
    if run.level_done(level):  # (another process finished it while we waited for its lock)
        return None
    model = setup.new_model()
    plan = chain.planner(run, setup, level, model)
    if isinstance(plan, Adopted):
        adopt(run, level, plan, chain.extra)
        return None
    return Training(run, setup, level, model, plan, chain.extra)


def _begin(group: list[Training], compile: bool | str, choice: ReplicaChoice | None) -> dict[str, Any]:
    """Set each model to its start and write the level's start files; returns the execution record
    (`choice`: why the group was formed so)."""
    first = group[0]
    how = execution(first.setup.device, first.setup.config.train.precision, len(group), compile,
                    choice.why if choice else None)
    resuming = (first.directory / resume_name(group)).exists()
    for t in group:
        warn_if_executed_differently(t.run, t.level, how, resuming)
        t.start()
        t.plan.mask.save(t.directory / MASK_FILE)
        save_tensors(t.directory / START_FILE, t.model.state_dict())
        write_json(t.directory / EXECUTION_FILE, how)
    return how


def stacked(group: list[Training]) -> tuple[nn.Module, Mask]:
    """The model and mask that train `group`: its one training's, or its trainings' stacked as replicas."""
    if len(group) == 1:
        return group[0].model, group[0].plan.mask
    return stack_models([t.model for t in group], group[0].setup.registered), stack_masks([t.plan.mask for t in group])


def checkpoint_saver(group: list[Training]) -> Callable[[int, nn.Module, torch.optim.Optimizer], None]:
    """Saves weights and optimizer state at an iteration into each training's level folder (a stacked
    model's replica i into training i's)."""
    replicas = len(group)

    def save(iteration: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        state, optimizer_state = model.state_dict(), optimizer.state_dict()
        for index, t in enumerate(group):
            save_tensors(t.directory / step_file(iteration), state if replicas == 1 else replica_state(state, index))
            buffer = io.BytesIO()
            torch.save(optimizer_state if replicas == 1 else replica_optimizer_state(optimizer_state, index, replicas),
                       buffer)
            save_checked(t.directory / step_optimizer_file(iteration), buffer.getvalue())
    return save


def _description(group: list[Training]) -> str:
    first = group[0]
    left = f"{100 * first.plan.mask.fraction_remaining():.1f}% left" + (f", {len(group)} replicas" if len(group) > 1 else "")
    return f"{first.setup.config.kind} level {first.level} ({left})"


def _finish(group: list[Training], model: nn.Module, results: list[TrainResult], how: dict[str, Any],
            seconds: float) -> None:
    """Write each training's final weights, metrics and summary; a replica that diverged is marked
    failed alone (ReplicasDiverged once the others are written)."""
    replicas = len(group)
    for t in group:  # the level is done: a stacked group's state left by another grouping is stale
        for stale in t.directory.glob(resume_group_file("*")):
            stale.unlink(missing_ok=True)
    if replicas > 1:  # each training's model gets its replica's weights
        for index, t in enumerate(group):
            t.model.load_state_dict(replica_state(model.state_dict(), index))
    failed = []
    for index, (t, result) in enumerate(zip(group, results)):
        if result.failure:  # one stacked replica diverged: it fails alone, the others are kept
            failed.append(f"run {t.run.hash} level {t.level}: {result.failure}")
            t.run.mark_failed(t.level, f"{result.failure} (replica {index + 1} of {replicas} stacked; the others "
                                       "finished)")
            continue
        save_tensors(t.directory / FINAL_FILE, t.model.state_dict())
        write_jsonl(t.directory / METRICS_FILE, result.metrics)
        write_json(t.directory / SUMMARY_FILE, _summary(t, result, how, seconds, group))
        t.run.clear_failed(t.level)
    barrier()  # under torchrun: every rank reads what rank 0 wrote only after this
    if failed:
        raise ReplicasDiverged(f"{failed[0]}" + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "") +
                               f"; the other {replicas - len(failed)} stacked replica(s) finished")


def _summary(t: Training, result: TrainResult, how: dict[str, Any], seconds: float, group: list[Training]
             ) -> dict[str, Any]:
    c = t.setup.config
    return {"level": t.level, "kind": c.kind, "weights_remaining": t.plan.mask.fraction_remaining(),
            "weights_remaining_count": t.plan.mask.remaining(), "test_accuracy": result.final["test_accuracy"],
            "test_loss": result.final["test_loss"], "train_loss": result.final["train_loss"],
            "start_iteration": t.plan.start_iteration, "iterations": t.setup.total - t.plan.start_iteration,
            "seconds": round(seconds, 3), "replicas": len(group), "rewind": c.rewind,
            "rewind_optimizer": c.rewind_optimizer if t.plan.start_iteration > 0 else "fresh",
            "seed": c.seed, "data_seed": c.order_seed, "processes": world_size(), "execution": how,
            # the runs trained with it as one stacked computation, in order (dense.replay_rewind_point)
            **({"stack": [u.run.hash for u in group]} if len(group) > 1 else {}),
            **(t.extra or {})}


def train_to(group: list[Training], stop: int, options: RunOptions) -> None:
    """Train `group` (one training, or several stacked as replicas) from its start to iteration `stop`,
    saving its plan's checkpoints and nothing else (dense.replay_rewind_point)."""
    first = group[0]
    for t in group:
        t.start()
    model, mask = stacked(group)
    train_replicas(model, first.setup.data, first.setup.config.train, [t.setup.config.order_seed for t in group],
                   mask=mask, start=first.plan.start_iteration, stop=stop, augment=first.setup.config.data.augment,
                   device=first.setup.device, checkpoints={k: checkpoint_saver(group) for k in first.plan.checkpoint_steps},
                   quiet=options.quiet, compile=options.compile,
                   description=f"{first.setup.config.kind}: replaying to iteration {stop}")


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


def adopt(run: Run, level: int, adopted: Adopted, extra: dict[str, Any] | None = None) -> None:
    summary = {**adopted.source.summary(adopted.level), **adopted.changes, **(extra or {}),
               "level": level, "adopted_from": f"{adopted.source.hash}/{level_dir_name(adopted.level)}"}
    run.adopt_level(level, adopted.source, adopted.level, adopted.files, summary)
    barrier()


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


def resolve_replicas(config: ExperimentConfig, trainings: int, store: Store, options: RunOptions) -> ReplicaChoice:
    """--replicas as the number K that `trainings` runs of `config` stack by, and why (choose_replicas):
    the group size of a study's jobs, decided once in the driver, so every executor stacks alike."""
    return without_network(options.replicas, trainings) or choose_replicas(options.replicas, setup_for(config, store, (), options), trainings, store)


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
