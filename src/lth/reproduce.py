"""`lth reproduce`: the paper's study in one call, on the store, skipping whatever is already there.

For each seed: IMP with the preset's rewind step and the baselines at every level (also off the
chains of the plan's `baseline_rewinds`, e.g. k = 0 beside k > 0), and the stability of the
level-`stability_level` ticket at each rewind point (its own IMP chain per point, plus a copy
trained with another data order). `StudyPlan.stages` is the one definition of the study.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from .config import ExperimentConfig
from .data.loader import Dataset
from .errors import ConfigError
from .experiment import canonical_steps
from .api import execute, prepared
from .jobs import stage_jobs, study_dense_jobs, study_jobs
from .levels import resolve_replicas
from .options import ExecutorOptions, RunOptions
from .kinds import IMP
from .plans import DEFAULT_LEVELS, STABILITY, Stage, StudyPlan  # noqa: F401 (Stage: part of reproduce's API)
from .presets import PRESETS
from .steps import check_steps
from .store import DEFAULT_STORE, STUDIES_DIR, Store, read_json, write_json



def default_plan(config: ExperimentConfig) -> StudyPlan:
    """The study plan of the config's preset (presets.py), or reset vs its rewind step at the defaults."""
    plan = PRESETS[config.preset].plan if config.preset in PRESETS else None
    if plan is not None:
        return plan
    points = tuple(dict.fromkeys(("0it", config.rewind)))
    return StudyPlan(levels=DEFAULT_LEVELS, rewind_points=points)


def plan_in_iterations(plan: StudyPlan, config: ExperimentConfig, store: Store, data_root: str | Path | None = None,
                       data: Dataset | None = None) -> StudyPlan:
    """The plan with its rewind steps as `experiment.canonical` writes them for `config`."""
    def steps(points: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(canonical_steps(points, config, store, data_root, data)))

    return replace(plan, rewind_points=steps(plan.rewind_points), baseline_rewinds=steps(plan.baseline_rewinds))


def check_plan(plan: StudyPlan) -> None:
    if not 0 <= plan.stability_level <= plan.levels:
        raise ConfigError(f"stability level {plan.stability_level} must lie in 0..{plan.levels}")
    check_steps((*plan.rewind_points, *plan.baseline_rewinds))
    if any(not 1 <= level <= plan.levels for level in plan.baseline_levels):
        raise ConfigError(f"baseline levels must lie in 1..{plan.levels}, got {','.join(map(str, plan.baseline_levels))}")


def reproduce(config: ExperimentConfig, plan: StudyPlan, store: Store | str | Path = DEFAULT_STORE,
              log: Callable[[str], None] = print, options: RunOptions = RunOptions(),
              executor: ExecutorOptions | None = None) -> dict[str, Any]:
    """Run the whole study -- the jobs of `jobs.study_jobs` -- stage by stage, logging each, and return
    where each part is stored. With a local or SLURM `executor` the whole graph runs there first (its
    jobs are independent beyond their needs); the stages then read the store."""
    check_plan(plan)
    store, (config,) = prepared([config], store, options, plan.levels)
    plan = plan_in_iterations(plan, config, store, options.data_root, options.data)
    began = time.perf_counter()
    summary: dict[str, Any] = {"imp": [], "branches": [], "stability": []}
    seeded = plan.seeded(config)
    seeds = "seed " + ",".join(map(str, plan.seeds)) if len(plan.seeds) == 1 else "seeds " + ",".join(map(str, plan.seeds))
    replicas = resolve_replicas(config, len(plan.seeds), store, options)  # the seed groups' size
    stages = plan.stages(config)
    if executor is not None:
        execute(study_jobs(config, plan, replicas), store, options, executor)
    execute(study_dense_jobs(config, plan, replicas), store, options)  # (every rewind point in one training)
    log(f"[0/{len(stages)}] {seeds}: the dense network ({time.perf_counter() - began:.0f} s)")
    for number, stage in enumerate(stages, 1):
        ran = stage_jobs(stage, seeded, replicas)
        execute(ran, store, options)
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

