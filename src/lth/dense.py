"""The dense network, trained once: every IMP chain, branch and stability measurement of the same
model, data, training config and seeds starts from one dense run (level 0 only), adopted by hard
links. It saves its state at every rewind step asked for; a step asked for after it finished is a
replay of its first k iterations, bit for bit."""
from __future__ import annotations

import contextlib
import dataclasses

from torch import nn

from .config import ExperimentConfig, PruneConfig
from .distributed import barrier
from .experiment import Setup
from .kinds import DENSE
from .levels import Chain, LevelPlan, Planner, Training, setup_for, train_level, train_to
from .masks import Mask
from .options import RunOptions
from .replica_choice import ReplicaChoice
from .steps import Step
from .store import START_FILE, Run, Store, load_tensors, step_file


def dense_config(config: ExperimentConfig) -> ExperimentConfig:
    """The dense run an IMP chain starts from, addressed by what determines its training -- model, data,
    training config and seeds -- and not by the rewind step or the pruning settings: every chain,
    branch and stability measurement of those shares one dense training."""
    return dataclasses.replace(config, kind=DENSE, rewind="0it", rewind_optimizer="reset", prune=PruneConfig())


def dense_planner(steps: tuple[str, ...]) -> Planner:
    """Level 0 of a dense run: all weights, from the initialisation, saving the state at `steps`."""
    def plan(run: Run, setup: Setup, level: int, model: nn.Module) -> LevelPlan:
        saved = sorted({setup.rewind_iterations(step) for step in steps} - {0})
        return LevelPlan(Mask.ones(model), model.state_dict(), 0, checkpoint_steps=tuple(saved))
    return plan


def dense_done(run: Run, steps: tuple[str, ...]) -> bool:
    """Whether a dense run is trained and holds its state at each of `steps` (in iterations; a step
    in epochs, from a store made before steps were canonical, counts as held)."""
    return run.level_done(0) and all(_saved(run, step) or step.unit != "it" for step in map(Step.parse, steps))


def _saved(run: Run, step: Step) -> bool:
    """Whether a dense run holds its state at `step` by the step's own name (the start, or iterations)."""
    return step.is_start or (step.unit == "it" and (run.level_dir(0) / step_file(step.amount)).exists())


def train_dense(configs: list[ExperimentConfig], store: Store, steps: tuple[str, ...] = (),
                options: RunOptions = RunOptions(), choice: ReplicaChoice | None = None) -> list[Run]:
    """Train (or read) the dense run of each IMP config (dense_config), saving its state at each
    config's rewind step and at `steps`. A step asked for after a dense run finished costs a replay
    of its first k iterations (replay_rewind_point), not a new dense run. Returns the runs it trained."""
    steps = tuple(dict.fromkeys((*(c.rewind for c in configs), *steps)))
    dense = list({d.hash(): d for d in map(dense_config, configs)}.values())
    trained = train_level([Chain(d, dense_planner(steps)) for d in dense], 0, store, options, choice)
    setups: dict[str, Setup] = {}
    for run in map(store.run, dense):
        for step in map(Step.parse, steps):
            if _saved(run, step):
                continue  # (an epoch step needs the data's epoch length to name its file)
            if run.hash not in setups:
                setups[run.hash] = setup_for(run.config, store, setups.values(), options)
            k = setups[run.hash].rewind_iterations(str(step))
            if not (run.level_dir(0) / step_file(k)).exists():
                replay_rewind_point(run, k, store, setups, options)
    return trained


def replay_rewind_point(run: Run, k: int, store: Store, setups: dict[str, Setup], options: RunOptions) -> None:
    """Save a finished dense run's state after k iterations by training it again from its
    initialisation to k. Its batches are a function of the seed and the iteration, so this is the
    state the dense run passed through: bit for bit at the same thread count, as the replay stacks the
    runs that were stacked with it (its summary's `stack`), in the same order."""
    members = [run if h == run.hash else store.stored_run(h) for h in run.summary(0).get("stack", [run.hash])]
    group = []
    for member in members:
        if member.hash not in setups:
            setups[member.hash] = setup_for(member.config, store, setups.values(), options)
        setup = setups[member.hash]
        model = setup.new_model()
        plan = LevelPlan(Mask.ones(model), load_tensors(member.level_dir(0) / START_FILE, setup.device), 0,
                         checkpoint_steps=(k,))
        group.append(Training(member, setup, 0, model, plan))
    with contextlib.ExitStack() as locks:
        for member in sorted(members, key=lambda m: m.hash):
            locks.enter_context(member.training([0]))
        if not all((m.level_dir(0) / step_file(k)).exists() for m in members):  # (or another process did it)
            train_to(group, k, options)
    barrier()
