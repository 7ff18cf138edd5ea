"""Iterative magnitude pruning with rewinding ([SCALE] Algorithm 1).

Level 0 trains the dense network from its initialisation W0 and saves W_k, the weights (and
optimizer state) after k iterations. Level L >= 1 prunes the previous level's final weights by
magnitude, resets the survivors to W_k (k = 0: the initialisation, the original LTH) and trains
from iteration k to the end, continuing the schedule and data order. Finished levels are read
from the store; a killed level resumes from its last checkpoint.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .config import ExperimentConfig, PruneConfig
from .errors import ConfigError, StepError, TrainingDiverged
from .distributed import barrier, world_size
from .experiment import Setup, canonical, module_config, prepare
from .hardware import hardware
from .kinds import DENSE, IMP
from .masks import Mask, check_levels, empty_layer_error, layer_fractions, magnitude_prune
from .models import MODELS, build_model
from .replicas import group_size, replica_optimizer_state, replica_state, stack_masks, stack_models
from .steps import Step, to_iterations
from .store import (DEFAULT_STORE, EXECUTION_FILE, FINAL_FILE, MASK_FILE, METRICS_FILE, RESUME_FILE, START_FILE,
                    SUMMARY_FILE, Run, Store, level_dir_name, resume_group_file,
                    load_tensors, load_torch_checked, save_checked, save_tensors, step_file, step_optimizer_file,
                    write_json, write_jsonl)
from .train import ResumeCadence, compile_mode, train


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
        return load_tensors(run.level_dir(0) / START_FILE, setup.device), None
    weights = load_tensors(run.level_dir(0) / step_file(k), setup.device)
    if setup.config.rewind_optimizer == "reset":
        return weights, None
    return weights, load_optimizer_state(run.level_dir(0) / step_optimizer_file(k), setup.device)


def load_optimizer_state(path: Path, device: torch.device) -> dict:
    return load_torch_checked(path, device, "delete level_0 to recompute")


def pruned_mask(run: Run, setup: Setup, level: int, model: nn.Module) -> Mask:
    """Magnitude-prune level-1's final weights of `run` (level >= 1)."""
    previous = run.level_dir(level - 1)
    prune = setup.config.prune
    fractions = layer_fractions(model, prune)
    mask = magnitude_prune(Mask.load(previous / MASK_FILE), load_tensors(previous / FINAL_FILE),
                           fractions, prune.strategy, prune.fraction)
    empty = [name for name, (left, _) in mask.per_layer().items() if left == 0 and fractions[name] is not None]
    if empty:  # (global pruning can empty a layer; check_levels rules it out for layer-wise in advance)
        raise empty_layer_error(empty[0], level)
    return mask


@dataclass(frozen=True)
class Adopted:
    """A level that another run already computed, bit for bit: this run's level becomes that one
    (hard links to its files, Run.adopt_level) instead of being trained again."""

    source: Run
    level: int
    files: tuple[str, ...] = (MASK_FILE, START_FILE, FINAL_FILE, METRICS_FILE, EXECUTION_FILE)
    changes: dict[str, Any] = field(default_factory=dict)  # summary fields of this run (kind, rewind, ...)


# kinds.IMP: an IMP chain (the config default); kinds.DENSE: a dense run, level 0 only, shared by every IMP
# chain that starts from it


def dense_config(config: ExperimentConfig) -> ExperimentConfig:
    """The dense run an IMP chain starts from, addressed by what determines its training -- model, data,
    training config and seeds -- and not by the rewind step or the pruning settings: every chain,
    branch and stability measurement of those shares one dense training."""
    return dataclasses.replace(config, kind=DENSE, rewind="0it", rewind_optimizer="reset", prune=PruneConfig())


def dense_planner(steps: tuple[str, ...]) -> Planner:
    """Level 0 of a dense run: all weights, from the initialisation, saving the state at `steps`."""
    def plan(run: Run, setup: Setup, level: int, model: nn.Module) -> LevelPlan:
        saved = sorted({rewind_iterations(step, setup) for step in steps} - {0})
        return LevelPlan(Mask.ones(model), model.state_dict(), 0, checkpoint_steps=tuple(saved))
    return plan


def rewind_iterations(step: str, setup: Setup) -> int:
    k = to_iterations(step, setup.iterations_per_epoch)
    if k >= setup.total:
        raise StepError(f"rewind step {step} ({k} iterations) is not before the end of training "
                        f"({setup.config.train.iterations} = {setup.total} iterations)")
    return k


def imp_plan(run: Run, setup: Setup, level: int, model: nn.Module) -> LevelPlan | Adopted:
    if level == 0:  # the shared dense run (run_imp_many trained it, with this chain's rewind checkpoint)
        k = setup.rewind
        return Adopted(Run(run.dir.parent, dense_config(setup.config)), 0,
                       Adopted.files + ((step_file(k), step_optimizer_file(k)) if k > 0 else ()),
                       {"kind": setup.config.kind, "rewind": setup.config.rewind})
    state, optimizer_state = rewind_state(run, setup)
    return LevelPlan(pruned_mask(run, setup, level, model), state, setup.rewind, optimizer_state)


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


def train_level(run: Run, setup: Setup, level: int, model: nn.Module, plan: LevelPlan, quiet: bool,
                resume_every: ResumeCadence | int = 0, extra: dict[str, Any] | None = None, compile: bool = False) -> dict[str, Any]:
    """Train one level as planned and write mask, start, final, metrics and (last) summary."""
    return train_levels([Training(run, setup, level, model, plan, extra)], quiet, resume_every, compile)[0]


def train_levels(trainings: list[Training], quiet: bool, resume_every: ResumeCadence | int = 0,
                 compile: bool = False) -> list[dict[str, Any]]:
    """Train one level of each of `trainings` -- one alone, several as stacked replicas (they share
    model, training config and start; see replicas.py) -- and write each one's files."""
    first, replicas = trainings[0], len(trainings)
    how = execution(first.setup.device, first.setup.config.train.precision, replicas, compile)
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
    summaries = []
    for t, result in zip(trainings, results):
        c = t.setup.config
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
    return summaries


def train_group(trainings: list[Training], quiet: bool, resume_every: ResumeCadence | int = 0, compile: bool = False,
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

    model = first.model if replicas == 1 else stack_models([t.model for t in trainings])
    mask = plan.mask if replicas == 1 else stack_masks([t.plan.mask for t in trainings])
    seeds = config.order_seed if replicas == 1 else [t.setup.config.order_seed for t in trainings]
    left = f"{100 * plan.mask.fraction_remaining():.1f}% left" + (f", {replicas} replicas" if replicas > 1 else "")
    results = train(model, first.setup.data, config.train, mask=mask, start=plan.start_iteration, stop=stop,
                    data_seed=seeds, augment=config.data.augment, device=first.setup.device,
                    checkpoints={k: save_checkpoint for k in plan.checkpoint_steps},
                    optimizer_state=plan.optimizer_state,
                    resume_path=None if stop is not None else first.directory / resume_name(trainings),
                    resume_every=resume_every, quiet=quiet, compile=compile,
                    description=f"{config.kind} level {first.level} ({left})" if stop is None else
                    f"{config.kind}: replaying to iteration {stop}")
    if replicas == 1:
        return [results]
    for index, t in enumerate(trainings):
        t.model.load_state_dict(replica_state(model.state_dict(), index))
    return results


def execution(device: torch.device, precision: str, replicas: int, compile: bool | str) -> dict[str, Any]:
    """How a level was executed: what can change its numbers without changing its config (docs/store.md,
    "What changes the numbers"), recorded in each level's summary (compile: False or the mode)."""
    from . import __version__

    name = device.type if device.type != "cuda" else f"cuda:{torch.cuda.get_device_name(device)}"
    compile = compile_mode(device) if compile is True else compile
    return {"processes": world_size(), "device": name, "precision": precision, "replicas": replicas,
            "threads": torch.get_num_threads(), "compile": compile, "torch": torch.__version__, "lth": __version__,
            "hardware": hardware(device)}


def describe_execution(how: dict[str, Any]) -> str:
    """A compact label, e.g. "cpu 2thr fp32 torch 2.13.0 lth 0.1.0 on AMD EPYC (AVX512, mkl)"."""
    return " ".join([how["device"] + (f" x{how['processes']}" if how["processes"] > 1 else ""), f"{how['threads']}thr",
                     how["precision"], *([f"K{how['replicas']}"] if how["replicas"] > 1 else []),
                     *([f"compiled {how['compile']}" if isinstance(how["compile"], str) else "compiled"]
                       if how["compile"] else []), f"torch {how['torch']}", f"lth {how['lth']}",
                     *([f"on {how['hardware']}"] if how.get("hardware") else [])])


def warn_if_executed_differently(t: Training, how: dict[str, Any], resuming: bool) -> None:
    """One line on stderr when a level resumes, or a run is extended, with other execution settings
    than its earlier work: the result then mixes them (and differs from a run made in one go)."""
    import sys

    from .distributed import is_main

    earlier = []
    if resuming and (t.directory / EXECUTION_FILE).exists():
        earlier.append((f"level {t.level} before it was interrupted", _read_quietly(t.directory / EXECUTION_FILE)))
    done = [level for level in t.run.levels_done() if level < t.level]
    if done:
        earlier.append((f"level {done[-1]}", _read_quietly(t.run.level_dir(done[-1]) / SUMMARY_FILE).get("execution")))
    for where, before in earlier:
        if not before or not is_main():
            continue
        # (a key the earlier record lacks was not recorded then: an older lth, not a change)
        changed = [f"{key} {before[key]} -> {value}" for key, value in how.items() if key in before and before[key] != value]
        if changed:
            print(f"lth: warning: run {t.run.hash} level {t.level} runs with other settings than {where} "
                  f"({', '.join(changed)}); its numbers may differ from a run made in one go (docs/store.md: "
                  "What changes the numbers)", file=sys.stderr)


def _read_quietly(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def resume_name(trainings: list[Training]) -> str:
    """The resume file of a training, or of a stacked group: named by its members in order, so a
    rerun that forms the same group resumes it (kept in the first member's level folder)."""
    if len(trainings) == 1:
        return RESUME_FILE
    members = hashlib.sha256(" ".join(t.run.hash for t in trainings).encode()).hexdigest()[:16]
    return resume_group_file(members)


def _as_json(section: Any) -> str:
    """A config section as a dict key (its mapping fields, e.g. model.options, are not hashable)."""
    return json.dumps(dataclasses.asdict(section), sort_keys=True)


def replica_groups(trainings: list[Training], replicas: str | int = "auto") -> list[list[Training]]:
    """Split one level's trainings into groups trained together: same model, data and training
    config, same start and checkpoints, no optimizer state to restore, no half-done resume file."""
    if not trainings:
        return []
    registered = trainings[0].setup.config.model.name in MODELS
    size = group_size(replicas, trainings[0].model, registered) if world_size() == 1 else 1
    groups: dict[Any, list[Training]] = {}
    alone = []
    for t in trainings:
        c = t.setup.config
        if size == 1 or t.plan.optimizer_state is not None or (t.directory / RESUME_FILE).exists() \
                or c.train.precision == "fp16":  # one GradScaler for K copies: one's overflow would skip all steps
            alone.append([t])
            continue
        key = (_as_json(c.model), _as_json(c.data), c.train, t.plan.start_iteration, t.plan.checkpoint_steps)
        groups.setdefault(key, []).append(t)
    chunks = [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]
    return chunks + alone


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


def run_levels(config: ExperimentConfig, levels: list[int], planner: Planner, store: Store, *,
               extra: dict[str, Any] | None = None, **options) -> ImpResult:
    """Train (or read from the store) the given levels of the run of `config`, in order."""
    return run_chains([Chain(config, planner, extra)], levels, store, **options)[0]


def run_chains(chains: list[Chain], levels: list[int], store: Store, *, data_root=None, device: str = "auto",
               quiet: bool = False, data=None, checkpoint_every: str = "auto", model: nn.Module | None = None,
               wait: bool = True, compile: bool = False, replicas: str | int = "auto") -> list[ImpResult]:
    """Train (or read) the given levels of several runs, level by level; at each level the runs that
    can share a stacked model train as replicas of one computation (`replicas`: auto, off or K)."""
    if replicas not in ("auto", "off", 1, "1") and any(chain.config.train.precision == "fp16" for chain in chains):
        raise ConfigError(f"--replicas {replicas} cannot stack fp16 runs: stacked copies would share one gradient "
                          "scaler, and an overflow in one would skip the step of all; use --replicas off or auto "
                          "(fp16 trains one by one), or --precision bf16")
    runs = [store.run(chain.config) for chain in chains]
    results = [ImpResult(str(run.dir)) for run in runs]
    pending = [i for i, run in enumerate(runs) if not all(run.level_done(level) for level in levels)]
    setups: dict[int, Setup] = {}
    for i in pending:  # bad data fails here, before the store changes
        setups[i] = _setup(chains[i].config, store, setups.values(), data_root=data_root, device=device, data=data,
                           model=model)
    with contextlib.ExitStack() as locks:
        for i in sorted(pending, key=lambda i: runs[i].hash):  # one global order: no deadlock between callers
            runs[i].create()
            locks.enter_context(runs[i].training([level for level in levels if not runs[i].level_done(level)], wait))
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
            for group in replica_groups(trainings, replicas):
                resume_every = resume_cadence(checkpoint_every, group[0].setup.iterations_per_epoch)
                try:
                    train_levels(group, quiet, resume_every, compile)
                except TrainingDiverged as exc:  # keep the last good checkpoint; `lth ls` shows the failure
                    for t in group:
                        t.run.mark_failed(level, str(exc) if len(group) == 1 else f"{exc} (in one of {len(group)} "
                                          "stacked replicas; rerun with --replicas off to find which)")
                    raise
                for t in group:
                    t.run.clear_failed(level)
                    results[runs.index(t.run)].trained += 1
    for run, result in zip(runs, results):
        result.levels = [run.summary(level) for level in levels]
    return results


def run_imp(config: ExperimentConfig, levels: int, store: Store | str | Path = DEFAULT_STORE, **options) -> ImpResult:
    """Run (or read from the store) levels 0..`levels` of IMP for `config`.

    options: data_root, device ("auto"), quiet, data (a dataset object instead of loading by name),
    model (an nn.Module to prune instead of config.model; its current weights are the initialisation),
    wait (default True: if another process trains this run, wait for it and read its result),
    checkpoint_every (a step, or "auto": every 2 minutes of training; the full training state is
    saved this often so a killed run resumes), compile (torch.compile the model),
    replicas (run_imp_many: "auto", "off" or K -- copies stacked into one computation).
    """
    return run_imp_many([config], levels, store, **options)[0]


def run_imp_many(configs: list[ExperimentConfig], levels: int, store: Store | str | Path = DEFAULT_STORE,
                 **options) -> list[ImpResult]:
    """run_imp for several configs (e.g. seeds), level by level, small models stacked as replicas."""
    if options.get("model") is not None:
        configs = [module_config(c, options["model"]) for c in configs]
    if levels < 0:
        raise ConfigError(f"--levels must be 0 or more, got {levels}")
    if any(c.kind != IMP for c in configs):
        raise ConfigError("run_imp takes IMP configs, got kinds " + ", ".join(sorted({c.kind for c in configs})))
    # before any training: can the levels be reached?
    for c in {(_as_json(c.model), _as_json(c.prune)): c for c in configs}.values():
        check_levels(options["model"] if options.get("model") is not None else shape_model(c), c.prune, levels)
    store = store if isinstance(store, Store) else Store(store)
    configs = canonical(configs, store, options.get("data_root"), options.get("data"))
    pending = [c for c in configs if not store.run(c).level_done(0)]
    if pending:
        run_dense_many(pending, store, **options)
    return run_chains([Chain(c, imp_plan) for c in configs], list(range(levels + 1)), store, **options)


def run_dense_many(configs: list[ExperimentConfig], store: Store, rewinds: tuple[str, ...] = (),
                   **options) -> list[Run]:
    """Train (or read) the dense run of each IMP config (dense_config), saving its state at each
    config's rewind step and at `rewinds`. A step asked for after a dense run finished costs a replay
    of its first k iterations (replay_rewind_point), not a new dense run."""
    steps = tuple(dict.fromkeys((*(c.rewind for c in configs), *rewinds)))
    dense = list({d.hash(): d for d in map(dense_config, configs)}.values())
    run_chains([Chain(d, dense_planner(steps)) for d in dense], [0], store, **options)
    runs = [store.run(d) for d in dense]
    setups: dict[str, Setup] = {}
    for run in runs:
        for step in map(Step.parse, steps):
            if step.amount == 0 or (step.unit == "it" and (run.level_dir(0) / step_file(step.amount)).exists()):
                continue  # (an epoch step needs the data's epoch length to name its file)
            if run.hash not in setups:
                setups[run.hash] = _setup(run.config, store, setups.values(), **options)
            k = rewind_iterations(str(step), setups[run.hash])
            if not (run.level_dir(0) / step_file(k)).exists():
                replay_rewind_point(run, k, store, setups, options)
    return runs


def replay_rewind_point(run: Run, k: int, store: Store, setups: dict[str, Setup], options: dict[str, Any]) -> None:
    """Save a finished dense run's state after k iterations by training it again from its
    initialisation to k. Its batches are a function of the seed and the iteration, so this is the
    state the dense run passed through: bit for bit at the same thread count, as the replay stacks the
    runs that were stacked with it (its summary's `stack`), in the same order."""
    members = [run if h == run.hash else store.stored_run(h) for h in run.summary(0).get("stack", [run.hash])]
    trainings = []
    for member in members:
        if member.hash not in setups:
            setups[member.hash] = _setup(member.config, store, setups.values(), **options)
        setup = setups[member.hash]
        model = setup.new_model()
        plan = LevelPlan(Mask.ones(model), load_tensors(member.level_dir(0) / START_FILE, setup.device), 0,
                         checkpoint_steps=(k,))
        trainings.append(Training(member, setup, 0, model, plan))
    for t in trainings:
        t.start()
    with contextlib.ExitStack() as locks:
        for member in sorted(members, key=lambda m: m.hash):
            locks.enter_context(member.training([0]))
        if not all((m.level_dir(0) / step_file(k)).exists() for m in members):  # (or another process did it)
            train_group(trainings, options.get("quiet", False), compile=options.get("compile", False), stop=k)
    barrier()


def _setup(config: ExperimentConfig, store: Store, known: Iterable[Setup], data_root=None, device: str = "auto",
           data=None, model: nn.Module | None = None, **_) -> Setup:
    """prepare() the config, reusing the dataset of a known setup on the same data (loaded once)."""
    shared = next((s.data for s in known if s.config.data == config.data), data)
    return prepare(config, data_root, store.cache_dir, device, shared, model)


def shape_model(config: ExperimentConfig) -> nn.Module:
    """The config's model on the meta device: shapes without memory or initialisation cost."""
    try:
        with torch.device("meta"):
            return build_model(config.model.name, config.model.options, config.seed)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - a user's factory that cannot build on the meta device: build it for real
        return build_model(config.model.name, config.model.options, config.seed)
