"""A study as a graph of store-sized jobs: the one plan that every executor runs, inline included.

A job is one unit of the store for a group of seeds: one level of their runs (the dense network, an
IMP level, a baseline at one level, the data-order copy of a ticket) or the stability measurement
of their tickets. The seeds of a group train as stacked replicas of one computation, exactly as the
library's `run_*_many` calls stack them (one rule, replicas.stack_groups, with the K that
levels.resolve_replicas decides; `--replicas off` makes one job per seed), so an inline run and an
executor's jobs compute the same bits at the same thread count. Each job names the jobs it needs (IMP level 0 needs the dense run, which every
chain of its seeds shares; level L needs level L-1; a baseline or data-order copy at level L needs
the IMP chain up to L, which holds the mask and the rewind checkpoint; a measurement needs the
ticket and its copy) and knows from the store alone whether it is done. Running a job calls the
library function that trains or measures it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .branches import branch_config, branch_levels, run_branch_many
from .config import ExperimentConfig, section_key
from .dense import dense_config, run_dense_many
from .imp import run_imp_many
from .kinds import DATA_ORDER, DENSE, IMP
from .options import RunOptions
from .plans import STABILITY
from .replicas import stack_groups
from .stability import StabilitySettings
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

    @property
    def run_configs(self) -> list[ExperimentConfig]:
        """The configs of the runs this job writes into (for a measurement: the data-order copies)."""
        if self.what == DENSE:
            return [dense_config(c) for c in self.configs]
        if self.what == IMP:
            return list(self.configs)
        return [branch_config(c, DATA_ORDER if self.what == STABILITY else self.what) for c in self.configs]

    @property
    def key(self) -> str:
        first, more = self.run_configs[0].hash(), len(self.configs) - 1
        return f"{first}/level_{self.level}" + (f"+{more}" if more else "") + ("/stability" if self.what == STABILITY else "")

    def runs(self, store: Store) -> list[Run]:
        return [store.run(c) for c in self.run_configs]

    def measurements(self, store: Store) -> list[Path]:
        """STABILITY: the files its measurements are stored in (in the data-order copies' runs)."""
        from .stability import measurement_path

        return [measurement_path(run.dir, self.level, self.measure or StabilitySettings()) for run in self.runs(store)]

    def done(self, store: Store) -> bool:
        if self.what != STABILITY:
            return all(run.level_done(self.level) for run in self.runs(store))
        return all(path.exists() for path in self.measurements(store))

    def running_elsewhere(self, store: Store) -> bool:
        """Some process (a job of an earlier driver, a user's own command) trains this level now."""
        return self.what != STABILITY and any(run.level_locked(self.level) for run in self.runs(store))

    def execute(self, store: Store, options: RunOptions = RunOptions()) -> None:
        configs = list(self.configs)
        if self.what == DENSE:
            run_dense_many(configs, store, rewinds=self.dense_steps, options=options)
        elif self.what == IMP:
            run_imp_many(configs, self.level, store, options=options)
        elif self.what == STABILITY:
            from .stability import measure_stability_many

            measure_stability_many(configs, self.level, store, settings=self.measure or StabilitySettings(),
                                   options=options)
        else:
            run_branch_many(self.what, configs, self.level, store, only=[self.level], options=options)


def seed_groups(configs: list[ExperimentConfig], replicas: int = 1) -> list[tuple[ExperimentConfig, ...]]:
    """The seeds' configs in the groups that train as one stacked computation: replicas.stack_groups,
    the rule levels.replica_groups applies to a level's trainings, with K = `replicas` as
    levels.resolve_replicas decides it."""
    size = 1 if replicas == "off" else int(replicas)
    return [tuple(group) for group in stack_groups(configs, size, _stack_key)]


def _stack_key(config: ExperimentConfig) -> tuple:
    return section_key(config.model), section_key(config.data), config.train


def _ids(configs: Iterable[ExperimentConfig]) -> tuple[str, ...]:
    return tuple(c.hash() for c in configs)


def _label(configs: Iterable[ExperimentConfig], rewind: bool = True) -> str:
    configs = list(configs)
    seeds = ",".join(str(c.seed) for c in configs)
    return f"seed{'s' if len(configs) > 1 else ''} {seeds}" + (f" rewind {configs[0].rewind}" if rewind else "")


def dense_job(group: tuple[ExperimentConfig, ...], rewinds: Iterable[str] = ()) -> Job:
    """The dense runs that the IMP chains of `group` start from, saving their state at the group's
    rewind step and at `rewinds` (a study names all of its rewind points, so one training saves them)."""
    steps = tuple(dict.fromkeys((group[0].rewind, *rewinds)))
    return Job(f"{_label(group, rewind=False)}: dense network", group, 0, DENSE, dense_steps=steps)


def imp_jobs(configs: list[ExperimentConfig], levels: int, replicas: int = 1) -> list[Job]:
    """Per seed group: the dense run, then IMP levels 0..`levels`, each needing the one before (level 0
    adopts the dense run's files; a rewind step the dense run did not save is replayed then)."""
    from .levels import shape_model
    from .masks import check_levels

    check_levels(shape_model(configs[0]), configs[0].prune, levels)  # in the driver, before any job is submitted
    jobs: list[Job] = []
    for group in seed_groups(configs, replicas):
        chain = [dense_job(group)]
        for level in range(levels + 1):
            chain.append(Job(f"{_label(group)}: IMP level {level}", group, level, needs=(chain[-1].key,)))
        jobs += chain
    return jobs


def branch_jobs(kind: str, configs: list[ExperimentConfig], levels: int, only: list[int] | None = None,
                replicas: int = 1) -> list[Job]:
    """The IMP chains of `configs` to `levels`, then the branch `kind` at each level (or at `only`)."""
    jobs = imp_jobs(configs, levels, replicas)
    imp_level = {(_ids(job.configs), job.level): job for job in jobs if job.what == IMP}
    for group in seed_groups(configs, replicas):
        jobs += [Job(f"{_label(group)}: {kind} level {level}", group, level, kind,
                     needs=(imp_level[_ids(group), level].key,)) for level in branch_levels(kind, levels, only)]
    return jobs


def stability_jobs(configs: list[ExperimentConfig], level: int, settings: StabilitySettings = StabilitySettings(),
                   replicas: int = 1) -> list[Job]:
    """The level-`level` tickets of `configs`, their data-order copies, and their measurement."""
    jobs = branch_jobs(DATA_ORDER, configs, level, [level], replicas)
    by_key = {(job.what, _ids(job.configs), job.level): job for job in jobs}
    for group in seed_groups(configs, replicas):
        needs = (by_key[IMP, _ids(group), level].key, by_key[DATA_ORDER, _ids(group), level].key)
        jobs.append(Job(f"{_label(group)}: stability of level {level}", group, level, STABILITY, needs, measure=settings))
    return jobs


def stage_jobs(stage, configs: list[ExperimentConfig], replicas: int = 1) -> list[Job]:
    """The jobs of one stage of a study (reproduce.Stage) for the seeds' `configs` (stability measured
    with the default settings, as every study does)."""
    staged = [c.override({"rewind": stage.rewind}) for c in configs]
    if stage.what == IMP:
        return imp_jobs(staged, stage.level, replicas)
    if stage.what == STABILITY:
        return stability_jobs(staged, stage.level, replicas=replicas)
    return branch_jobs(stage.what, staged, stage.level, list(stage.only) if stage.only else None, replicas)


def study_dense_jobs(config: ExperimentConfig, plan, replicas: int = 1) -> list[Job]:
    """The dense runs of a study, one per seed group, each saving every rewind point of the plan."""
    steps = [stage.rewind for stage in plan.stages(config)]
    return [dense_job(group, steps) for group in seed_groups(plan.seeded(config), replicas)]


def study_jobs(config: ExperimentConfig, plan, replicas: int = 1) -> list[Job]:
    """Every job of `lth reproduce`: the dense runs first (study_dense_jobs), then the stages of its
    plan (reproduce.StudyPlan.stages)."""
    jobs = study_dense_jobs(config, plan, replicas)
    for stage in plan.stages(config):
        jobs += stage_jobs(stage, plan.seeded(config), replicas)
    return unique(jobs)


def run_inline(jobs: list[Job], store: Store, options: RunOptions = RunOptions()) -> int:
    """The inline executor: run the jobs not yet done, in order (needs come first), in this process.
    Returns how many ran."""
    ran = 0
    for job in unique(jobs):
        if not job.done(store):
            job.execute(store, options)
            ran += 1
    return ran


def unique(jobs: list[Job]) -> list[Job]:
    """Drop repeated jobs (two parts of a study share an IMP chain), keeping the first, in order."""
    first: dict[str, Job] = {}
    for job in jobs:
        first.setdefault(job.key, job)
    return list(first.values())
