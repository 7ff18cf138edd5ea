"""A study as a graph of store-sized jobs, for fanning it out with an executor (see executors.py).

A job is one unit of the store: one level of one run (the dense network, an IMP level, a baseline at
one level, the data-order copy of a ticket) or the stability measurement of one ticket. Each job names
the jobs it needs (IMP level 0 needs the dense run, which every chain of its seeds shares; level L
needs level L-1; a baseline or data-order copy at level L needs the IMP chain up
to L, which holds the mask and the rewind checkpoint; a measurement needs the ticket and its copy)
and knows from the store alone whether it is done. Running a job calls the same library function
as `inline` does, so the stored results are the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .branches import branch_config, run_branch
from .config import ExperimentConfig
from .imp import dense_config, run_dense_many, run_imp
from .store import Store


@dataclass(frozen=True)
class Job:
    label: str  # for people: "seed 0 reinit level 3"
    config: ExperimentConfig  # the IMP config
    level: int
    branch: str | None = None  # train this branch of the IMP run (branches.BRANCHES) instead of the run itself
    needs: tuple[str, ...] = ()  # keys of the jobs that must be done first
    measure: dict[str, Any] | None = field(default=None, hash=False)  # stability options: measure, not train
    dense_steps: tuple[str, ...] | None = None  # the dense run of `config`, saving its state at these steps

    @property
    def run_config(self) -> ExperimentConfig:
        """The config of the run this job writes into."""
        if self.dense_steps is not None:
            return dense_config(self.config)
        return branch_config(self.config, self.branch) if self.branch else self.config

    @property
    def key(self) -> str:
        return f"{self.run_config.hash()}/level_{self.level}{'/stability' if self.measure is not None else ''}"

    def done(self, store: Store) -> bool:
        if self.measure is None:
            return store.run(self.run_config).level_done(self.level)
        from .stability import measurement_path

        copy = store.run(branch_config(self.config, "data-order"))
        return measurement_path(copy.dir, self.level, **self.measure).exists()

    def running_elsewhere(self, store: Store) -> bool:
        """Some process (a job of an earlier driver, a user's own command) trains this level now."""
        return self.measure is None and store.run(self.run_config).level_locked(self.level)

    def execute(self, store: Store, **options) -> None:
        if self.measure is not None:
            from .stability import measure_stability

            measure_stability(self.config, self.level, store, **self.measure, **options)
        elif self.dense_steps is not None:
            run_dense_many([self.config], store, rewinds=self.dense_steps, **options)
        elif self.branch is None:
            run_imp(self.config, self.level, store, **options)
        else:
            run_branch(self.branch, self.config, self.level, store, only=[self.level], **options)


def _seed_label(config: ExperimentConfig) -> str:
    return f"seed {config.seed} rewind {config.rewind}"


def dense_job(config: ExperimentConfig, rewinds: tuple[str, ...] = ()) -> Job:
    """The dense run that IMP chains of `config`'s seeds start from, saving its state at `config`'s
    rewind step and at `rewinds` (a study names all of its rewind points, so one training saves them)."""
    steps = tuple(dict.fromkeys((config.rewind, *rewinds)))
    return Job(f"seed {config.seed}: dense network", config, 0, dense_steps=steps)


def imp_jobs(config: ExperimentConfig, levels: int) -> list[Job]:
    """The dense run, then levels 0..`levels` of the IMP chain of `config`, each needing the one before
    (level 0 adopts the dense run's files; a rewind step the dense run did not save is replayed then)."""
    from .imp import shape_model
    from .masks import check_levels

    check_levels(shape_model(config), config.prune, levels)  # in the driver, before any job is submitted
    chain: list[Job] = [dense_job(config)]
    for level in range(levels + 1):
        chain.append(Job(f"{_seed_label(config)}: IMP level {level}", config, level, needs=(chain[-1].key,)))
    return chain


def branch_jobs(kind: str, config: ExperimentConfig, levels: int, only: list[int] | None = None) -> list[Job]:
    """The IMP chain of `config` to `levels`, then the branch `kind` at each level (or at `only`)."""
    chain = imp_jobs(config, levels)
    imp_level = chain[1:]  # (after the dense run)
    first = 0 if kind == "data-order" else 1
    wanted = range(first, levels + 1) if only is None else only
    return chain + [Job(f"{_seed_label(config)}: {kind} level {level}", config, level, kind,
                        needs=(imp_level[level].key,)) for level in wanted]


def stability_jobs(config: ExperimentConfig, level: int, points: int = 30, batch_norm: str = "recompute",
                   train_examples: int = 5000) -> list[Job]:
    """The level-`level` ticket of `config`, its data-order copy, and their measurement."""
    trainings = branch_jobs("data-order", config, level, only=[level])
    measure = {"points": points, "batch_norm": batch_norm, "train_examples": train_examples}
    return trainings + [Job(f"{_seed_label(config)}: stability of level {level}", config, level,
                            needs=(trainings[level + 1].key, trainings[-1].key), measure=measure)]


def study_jobs(config: ExperimentConfig, plan, **measure) -> list[Job]:
    """Every job of `lth reproduce`: the stages of its plan (reproduce.StudyPlan.stages) for each seed."""
    jobs: list[Job] = []
    stages = plan.stages(config)
    for seed in plan.seeds:  # each seed's dense run first, saving every rewind point of the plan
        seeded = config.override({"seed": seed, "data_seed": None})
        jobs.append(dense_job(seeded, tuple(stage.rewind for stage in stages)))
    for seed in plan.seeds:
        for stage in stages:
            staged = config.override({"seed": seed, "data_seed": None, "rewind": stage.rewind})
            if stage.what == "imp":
                jobs += imp_jobs(staged, stage.level)
            elif stage.what == "stability":
                jobs += stability_jobs(staged, stage.level, **measure)
            else:
                jobs += branch_jobs(stage.what, staged, stage.level, list(stage.only) if stage.only else None)
    return unique(jobs)


def unique(jobs: list[Job]) -> list[Job]:
    """Drop repeated jobs (two parts of a study share an IMP chain), keeping the first, in order."""
    first: dict[str, Job] = {}
    for job in jobs:
        first.setdefault(job.key, job)
    return list(first.values())
