"""`lth reproduce`: the paper's study in one call, on the store, skipping whatever is already there.

For each seed: IMP with the preset's rewind step and the baselines at every level (also off the
chains of the plan's `baseline_rewinds`, e.g. k = 0 beside k > 0), and the stability of the
level-`stability_level` ticket at each rewind point (its own IMP chain per point, plus a copy
trained with another data order). `StudyPlan.stages` is the one definition of the study.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from .kinds import BASELINES, IMP, KINDS
from .config import ExperimentConfig
from .errors import ConfigError
from .experiment import canonical, canonical_steps
from .imp import DEFAULT_LEVELS
from .jobs import STABILITY, run_inline, stage_jobs, study_dense_jobs
from .levels import resolve_replicas
from .options import RunOptions
from .stability import STABILITY_LEVEL
from .steps import Step, check_steps
from .store import DEFAULT_STORE, STUDIES_DIR, Store, read_json, write_json



@dataclass(frozen=True)
class Stage:
    """One part of a study, for every seed: an IMP chain, a baseline off it, or a stability measurement."""

    what: str  # IMP, a baseline kind (branches.BASELINES) or STABILITY
    rewind: str
    level: int  # the chain's deepest level, or the level whose ticket is measured
    only: tuple[int, ...] | None = None  # a baseline at these levels only (None: every level)


@dataclass(frozen=True)
class StudyPlan:
    levels: int = DEFAULT_LEVELS
    rewind_points: tuple[str, ...] = ("0it",)
    stability_level: int = STABILITY_LEVEL
    seeds: tuple[int, ...] = (0,)
    # Rewind points whose IMP chains also get the baselines at every level (besides the config's own
    # rewind step): [SCALE]'s contrast of resetting (k = 0) with rewinding (k > 0), side by side.
    baseline_rewinds: tuple[str, ...] = ()
    baseline_levels: tuple[int, ...] = ()  # the levels that get baselines (empty: all of 1..levels)

    def in_iterations(self, config: ExperimentConfig, store: Store, data_root=None, data=None) -> StudyPlan:
        """The plan with its rewind steps as `experiment.canonical` writes them for `config`."""
        def steps(points: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(canonical_steps(points, config, store, data_root, data)))

        return replace(self, rewind_points=steps(self.rewind_points), baseline_rewinds=steps(self.baseline_rewinds))

    def seeded(self, config: ExperimentConfig) -> list[ExperimentConfig]:
        """`config` for each seed of the plan (init and data-order seed = the seed)."""
        return [config.override({"seed": seed, "data_seed": None}) for seed in self.seeds]

    def stages(self, config: ExperimentConfig) -> list[Stage]:
        """The study as an ordered list of stages: the one definition that `reproduce()` runs inline and
        `jobs.study_jobs` turns into executor jobs."""
        stages = []
        for rewind in dict.fromkeys((config.rewind, *self.baseline_rewinds)):
            stages.append(Stage(IMP, rewind, self.levels))
            # reset-init at k = 0 would be the IMP run itself, trained again: leave it out
            stages += [Stage(kind, rewind, self.levels, self.baseline_levels or None) for kind in BASELINES
                       if not (KINDS[kind].is_ticket_at_reset and Step.parse(rewind).is_start)]
        stages += [Stage(STABILITY, point, self.stability_level) for point in self.rewind_points]
        return stages


# Each preset's study. mnist1d_mlp_scale (`make run`, 15 seeds: with 5 or 10, verdicts flipped between
# machines or float orders, as benchmarks/verdict_stability.py measures): [SCALE]'s contrast of resetting
# (k = 0) with rewinding (k = 50, 3% of training), each chain with its baselines at level 10 (12% of the weights, where the map judges the
# claims) and the stability of its level-10 ticket. mnist1d_mlp: the same contrast at [M1D]'s width,
# judged at level 8 (17%). mnist1d_mlp_lth: [LTH]'s reset-to-init study, with the barrier at k = 0 and 50.
# lenet300_mnist5k: [LTH] Fig. 3 on real digits -- reset to init, reinit and random pruning at every level (the
# early-stopping curves need each level), 5 seeds, to level 8 (16.8% of the weights), the barrier at k = 0.
PLANS: dict[str, StudyPlan] = {
    "mnist1d_mlp_scale": StudyPlan(levels=10, rewind_points=("0it", "50it"), stability_level=10, seeds=tuple(range(15)),
                                   baseline_rewinds=("0it",), baseline_levels=(10,)),
    "mnist1d_mlp": StudyPlan(levels=8, rewind_points=("0it", "50it"), stability_level=8, seeds=(0, 1, 2),
                             baseline_rewinds=("0it",), baseline_levels=(8,)),
    "mnist1d_mlp_lth": StudyPlan(levels=8, rewind_points=("0it", "50it"), stability_level=8, seeds=(0, 1, 2),
                                 baseline_levels=(4, 8)),
    "lenet300_mnist5k": StudyPlan(levels=8, rewind_points=("0it",), stability_level=8, seeds=tuple(range(5))),
    "mnist1d_resnet": StudyPlan(levels=5, rewind_points=("0it", "20it", "100it"), stability_level=3),
    "resnet20_cifar10": StudyPlan(levels=8, rewind_points=("0it", "100it", "500it", "2000it"), stability_level=8,
                                  baseline_rewinds=("0it",)),
    "vgg19_cifar10": StudyPlan(levels=8, rewind_points=("0it", "100it", "1000it"), stability_level=8,
                               baseline_rewinds=("0it",)),
    "vgg16_cifar10": StudyPlan(levels=8, rewind_points=("0it", "100it", "1000it"), stability_level=8,
                               baseline_rewinds=("0it",)),
    "resnet50_imagenet": StudyPlan(levels=5, rewind_points=("0ep", "6ep"), stability_level=5,
                                   baseline_rewinds=("0ep",)),
}


def default_plan(config: ExperimentConfig) -> StudyPlan:
    if config.preset in PLANS:
        return PLANS[config.preset]
    points = tuple(dict.fromkeys(("0it", config.rewind)))
    return StudyPlan(levels=DEFAULT_LEVELS, rewind_points=points)


def check_plan(plan: StudyPlan) -> None:
    if not 0 <= plan.stability_level <= plan.levels:
        raise ConfigError(f"stability level {plan.stability_level} must lie in 0..{plan.levels}")
    check_steps((*plan.rewind_points, *plan.baseline_rewinds))
    if any(not 1 <= level <= plan.levels for level in plan.baseline_levels):
        raise ConfigError(f"baseline levels must lie in 1..{plan.levels}, got {','.join(map(str, plan.baseline_levels))}")


def reproduce(config: ExperimentConfig, plan: StudyPlan, store: Store | str | Path = DEFAULT_STORE,
              log: Callable[[str], None] = print, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Run the whole study inline -- the jobs of `jobs.study_jobs`, the graph every executor runs --
    and return where each part is stored."""
    store = Store.of(store)
    check_plan(plan)
    config = canonical([config], store, options.data_root, options.data)[0]
    plan = plan.in_iterations(config, store, options.data_root, options.data)
    began = time.perf_counter()
    summary: dict[str, Any] = {"imp": [], "branches": [], "stability": []}
    seeded = plan.seeded(config)
    seeds = "seed " + ",".join(map(str, plan.seeds)) if len(plan.seeds) == 1 else "seeds " + ",".join(map(str, plan.seeds))
    replicas = resolve_replicas(config, len(plan.seeds), store, options)  # the seed groups' size
    stages = plan.stages(config)
    run_inline(study_dense_jobs(config, plan, replicas), store, options)  # (every rewind point in one training)
    log(f"[0/{len(stages)}] {seeds}: the dense network ({time.perf_counter() - began:.0f} s)")
    for number, stage in enumerate(stages, 1):
        ran = stage_jobs(stage, seeded, replicas)
        run_inline(ran, store, options)
        runs = list(dict.fromkeys(str(run.dir) for job in ran if job.what == stage.what for run in job.runs(store)))
        if stage.what == IMP:
            summary["imp"] += runs
            text = f"IMP to level {stage.level}, rewind {stage.rewind}"
        elif stage.what == STABILITY:
            rows = [read_json(path) for job in ran if job.what == STABILITY for path in job.measurements(store)]
            summary["stability"] += [Path(run).name for run in runs]  # the data-order copies, which hold the rows
            barriers = ", ".join(f"{100 * row['barrier_test']:.2f}%" for row in rows)
            text = f"stability at rewind {stage.rewind}, level {stage.level}: barrier {barriers}"
        else:
            summary["branches"] += runs
            text = f"{stage.what} off the rewind-{stage.rewind} chain"
        log(f"[{number}/{len(stages)}] {seeds}: {text} ({time.perf_counter() - began:.0f} s)")
    summary["seconds"] = round(time.perf_counter() - began, 1)
    write_json(store.root / STUDIES_DIR / f"{config.hash()}.json",
               {"preset": config.preset, "plan": {"levels": plan.levels, "rewind_points": list(plan.rewind_points),
                "stability_level": plan.stability_level, "seeds": list(plan.seeds),
                "baseline_rewinds": list(plan.baseline_rewinds), "baseline_levels": list(plan.baseline_levels)}, "config": config.to_dict(),
                **summary})
    return summary

