"""A study as a graph of store-sized jobs: the one plan that every executor runs, inline included.

A job is one unit of the store for a group of seeds: one level of their runs (the dense network, an
IMP level, a baseline at one level, the data-order copy of a ticket) or the stability measurement
of their tickets. The seeds of a group train as stacked replicas of one computation (one rule,
replicas.stack_groups, with the K that levels.resolve_replicas decides; `--replicas off` makes one
job per seed), so every executor computes the same bits at the same thread count. Each job names the
jobs it needs (IMP level 0 needs the dense run, which every chain of its seeds shares; level L needs
level L-1; a baseline or data-order copy at level L needs the IMP chain up to L, which holds the mask
and the rewind checkpoint; a measurement needs the ticket and its copy), knows from the store alone
whether it is done, and `execute` computes it in this process: levels.train_level with the planner of
its kind (imp.py, dense.py, branches.py) or stability.measure. The library's run functions (api.py)
build these graphs and hand them to an executor (api.execute: inline, or executors.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .branches import branch_chains, branch_config, branch_levels
from .config import ExperimentConfig, section_key
from .data_identity import bind
from .dense import dense_config, dense_done, train_dense
from .imp import imp_level
from .kinds import DATA_ORDER, DENSE, IMP
from .levels import Chain, train_level
from .options import RunOptions
from .replica_choice import ReplicaChoice
from .plans import STABILITY, Stage, StudyPlan
from .replicas import stack_groups
from .stability import StabilitySettings, measure, measurement_path
from .store import Run, Store


@dataclass(frozen=True)
class Job:
    label: str  # for people: "seeds 0,1,2 rewind 50it: reinit level 3"
    configs: tuple[ExperimentConfig, ...]  # the IMP configs of the seeds it computes together
    level: int
    what: str = IMP  # DENSE, IMP, a branch kind (branches.BRANCHES) or STABILITY
    needs: tuple[str, ...] = ()  # keys of the jobs that must be done first
    dense_steps: tuple[str, ...] = ()  # DENSE: the rewind steps whose state the dense run saves
    measure: StabilitySettings | None = None  # STABILITY: how it is measured
    data_seed: int | None = None  # a data-order copy's data seed (default: seeds.copy_data_seed)
    stacking: ReplicaChoice | None = None  # the driver's K and why (None: the job chooses by --replicas)

    @property
    def run_configs(self) -> list[ExperimentConfig]:
        """The configs of the runs this job writes into (for a measurement: the data-order copies)."""
        if self.what == DENSE:
            return [dense_config(c) for c in self.configs]
        if self.what == IMP:
            return list(self.configs)
        return [branch_config(c, DATA_ORDER if self.what == STABILITY else self.what, self.data_seed)
                for c in self.configs]

    @property
    def key(self) -> str:
        first, more = self.run_configs[0].hash(), len(self.configs) - 1
        return f"{first}/level_{self.level}" + (f"+{more}" if more else "") + ("/stability" if self.what == STABILITY else "")

    def runs(self, store: Store) -> list[Run]:
        return [store.run(c) for c in self.run_configs]

    def measurements(self, store: Store) -> list[Path]:
        """STABILITY: the files its measurements are stored in (in the data-order copies' runs)."""
        return [measurement_path(run.dir, self.level, self.measure or StabilitySettings()) for run in self.runs(store)]

    def done(self, store: Store) -> bool:
        if self.what == STABILITY:
            return all(path.exists() for path in self.measurements(store))
        if self.what == DENSE:  # (chains whose level 0 is done -- in stores older than the shared dense run -- need none)
            return all(dense_done(run, self.dense_steps) for run in self.runs(store)) or \
                all(store.run(c).level_done(0) for c in self.configs)
        return all(run.level_done(self.level) for run in self.runs(store))

    def running_elsewhere(self, store: Store) -> bool:
        """Some process (a job of an earlier driver, a user's own command) trains this level now."""
        return self.what != STABILITY and any(run.level_locked(self.level) for run in self.runs(store))

    def mark_failed(self, store: Store, error: str, log: str | None = None) -> None:
        """Record on the level of each of its runs why the job failed (`lth ls` shows it; the level's
        success clears it). A measurement has no level of its own to mark."""
        if self.what != STABILITY:
            for run in self.runs(store):
                run.mark_failed(self.level, error, log)

    def execute(self, store: Store, options: RunOptions = RunOptions()) -> list[Run]:
        """Compute this job in this process (its needs done); returns the runs whose level it trained."""
        if store.data_source is None:  # (an executor's job: a Store of its own) its runs record their data too
            bind(store, options.data_root, options.data)
        configs = list(self.configs)
        if self.what == DENSE:
            return train_dense(configs, store, self.dense_steps, options, self.stacking)
        if self.what == STABILITY:
            for config in configs:
                measure(config, self.level, store, self.measure or StabilitySettings(), options)
            return []
        if self.what == IMP:
            if self.level == 0:  # the dense run and this chain's W_k, in case the dense job saved other steps
                train_dense([c for c in configs if not store.run(c).level_done(0)], store, (), options, self.stacking)
            return train_level([Chain(c, imp_level) for c in configs], self.level, store, options, self.stacking)
        return train_level(branch_chains(self.what, configs, store, self.data_seed), self.level, store, options,
                           self.stacking)


Stacking = ReplicaChoice | int  # the group size K: the driver's choice (levels.resolve_replicas), or a number


def seed_groups(configs: list[ExperimentConfig], replicas: Stacking = 1) -> list[tuple[ExperimentConfig, ...]]:
    """The seeds' configs in the groups that train as one stacked computation: replicas.stack_groups,
    the rule levels.replica_groups applies to a level's trainings, with K = `replicas` as
    levels.resolve_replicas decides it."""
    size = replicas.size if isinstance(replicas, ReplicaChoice) else int(replicas)
    return [tuple(group) for group in stack_groups(configs, size, _stack_key)]


def _stacking(replicas: Stacking) -> ReplicaChoice | None:
    return replicas if isinstance(replicas, ReplicaChoice) else None


def _stack_key(config: ExperimentConfig) -> tuple:
    return section_key(config.model), section_key(config.data), config.train


def _ids(configs: Iterable[ExperimentConfig]) -> tuple[str, ...]:
    return tuple(c.hash() for c in configs)


def _label(configs: Iterable[ExperimentConfig], rewind: bool = True) -> str:
    configs = list(configs)
    seeds = ",".join(str(c.seed) for c in configs)
    return f"seed{'s' if len(configs) > 1 else ''} {seeds}" + (f" rewind {configs[0].rewind}" if rewind else "")


def dense_job(group: tuple[ExperimentConfig, ...], rewinds: Iterable[str] = (), replicas: Stacking = 1) -> Job:
    """The dense runs that the IMP chains of `group` start from, saving their state at the group's
    rewind step and at `rewinds` (a study names all of its rewind points, so one training saves them)."""
    steps = tuple(dict.fromkeys((*(c.rewind for c in group), *rewinds)))
    return Job(f"{_label(group, rewind=False)}: dense network", group, 0, DENSE, dense_steps=steps,
               stacking=_stacking(replicas))


def imp_jobs(configs: list[ExperimentConfig], levels: int, replicas: Stacking = 1) -> list[Job]:
    """Per seed group: the dense run, then IMP levels 0..`levels`, each needing the one before (level 0
    adopts the dense run's files; a rewind step the dense run did not save is replayed then)."""
    jobs: list[Job] = []
    for group in seed_groups(configs, replicas):
        chain = [dense_job(group, (), replicas)]
        for level in range(levels + 1):
            chain.append(Job(f"{_label(group)}: IMP level {level}", group, level, needs=(chain[-1].key,),
                             stacking=_stacking(replicas)))
        jobs += chain
    return jobs


def branch_jobs(kind: str, configs: list[ExperimentConfig], levels: int, only: list[int] | None = None,
                replicas: Stacking = 1, data_seed: int | None = None) -> list[Job]:
    """The IMP chains of `configs` to `levels`, then the branch `kind` at each level (or at `only`)."""
    jobs = imp_jobs(configs, levels, replicas)
    imp_at = {(_ids(job.configs), job.level): job for job in jobs if job.what == IMP}
    for group in seed_groups(configs, replicas):
        jobs += [Job(f"{_label(group)}: {kind} level {level}", group, level, kind,
                     needs=(imp_at[_ids(group), level].key,), data_seed=data_seed, stacking=_stacking(replicas))
                 for level in branch_levels(kind, levels, only)]
    return jobs


def stability_jobs(configs: list[ExperimentConfig], level: int, settings: StabilitySettings = StabilitySettings(),
                   replicas: Stacking = 1) -> list[Job]:
    """The level-`level` tickets of `configs`, their data-order copies, and their measurement."""
    jobs = branch_jobs(DATA_ORDER, configs, level, [level], replicas)
    by_key = {(job.what, _ids(job.configs), job.level): job for job in jobs}
    for group in seed_groups(configs, replicas):
        needs = (by_key[IMP, _ids(group), level].key, by_key[DATA_ORDER, _ids(group), level].key)
        jobs.append(Job(f"{_label(group)}: stability of level {level}", group, level, STABILITY, needs, measure=settings,
                        stacking=_stacking(replicas)))
    return jobs


def stage_jobs(stage: Stage, configs: list[ExperimentConfig], replicas: Stacking = 1) -> list[Job]:
    """The jobs of one stage of a study (reproduce.Stage) for the seeds' `configs` (stability measured
    with the default settings, as every study does)."""
    staged = [c.override({"rewind": stage.rewind}) for c in configs]
    if stage.what == IMP:
        return imp_jobs(staged, stage.level, replicas)
    if stage.what == STABILITY:
        return stability_jobs(staged, stage.level, replicas=replicas)
    return branch_jobs(stage.what, staged, stage.level, list(stage.only) if stage.only else None, replicas)


def study_dense_jobs(config: ExperimentConfig, plan: StudyPlan, replicas: Stacking = 1) -> list[Job]:
    """The dense runs of a study, one per seed group, each saving every rewind point of the plan."""
    steps = [stage.rewind for stage in plan.stages(config)]
    return [dense_job(group, steps, replicas) for group in seed_groups(plan.seeded(config), replicas)]


def study_jobs(config: ExperimentConfig, plan: StudyPlan, replicas: Stacking = 1) -> list[Job]:
    """Every job of `lth reproduce`: the dense runs first (study_dense_jobs), then the stages of its
    plan (reproduce.StudyPlan.stages)."""
    jobs = study_dense_jobs(config, plan, replicas)
    for stage in plan.stages(config):
        jobs += stage_jobs(stage, plan.seeded(config), replicas)
    return unique(jobs)


def unique(jobs: list[Job]) -> list[Job]:
    """Drop repeated jobs (two parts of a study share an IMP chain), keeping the first, in order."""
    first: dict[str, Job] = {}
    for job in jobs:
        first.setdefault(job.key, job)
    return list(first.values())
