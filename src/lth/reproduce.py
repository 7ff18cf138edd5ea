"""`lth reproduce`: the paper's study in one call, on the store, skipping whatever is already there.

For each seed: IMP with the preset's rewind step, the three baselines at every level, and the
stability of the level-`stability_level` ticket at each rewind point (its own IMP chain per point,
plus a copy trained with another data order).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .branches import run_branch_many
from .config import ExperimentConfig
from .errors import ConfigError
from .imp import run_imp_many
from .stability import measure_stability_many
from .steps import Step
from .store import Store, write_json

BASELINES = ("reset-init", "reinit", "random-prune")


@dataclass(frozen=True)
class StudyPlan:
    levels: int = 5
    rewind_points: tuple[str, ...] = ("0it",)
    stability_level: int = 2
    seeds: tuple[int, ...] = (0,)


# Defaults sized so that `make run` (mnist1d_mlp) finishes in about 4 minutes on 2 CPU cores:
# 8 levels reach 17% of the weights; rewind points follow PAPERS.md's MNIST-1D measurements (0/50/200).
PLANS: dict[str, StudyPlan] = {
    "mnist1d_mlp": StudyPlan(levels=8, rewind_points=("0it", "50it", "200it"), stability_level=4),
    "mnist1d_resnet": StudyPlan(levels=5, rewind_points=("0it", "20it", "100it"), stability_level=3),
    "resnet20_cifar10": StudyPlan(levels=8, rewind_points=("0it", "100it", "500it", "2000it"), stability_level=8),
    "vgg19_cifar10": StudyPlan(levels=8, rewind_points=("0it", "100it", "1000it"), stability_level=8),
    "vgg16_cifar10": StudyPlan(levels=8, rewind_points=("0it", "100it", "1000it"), stability_level=8),
    "resnet50_imagenet": StudyPlan(levels=5, rewind_points=("0ep", "6ep"), stability_level=5),
}


def default_plan(config: ExperimentConfig) -> StudyPlan:
    if config.preset in PLANS:
        return PLANS[config.preset]
    points = tuple(dict.fromkeys(("0it", config.rewind)))
    return StudyPlan(levels=5, rewind_points=points, stability_level=2)


def check_plan(plan: StudyPlan) -> None:
    if not 0 <= plan.stability_level <= plan.levels:
        raise ConfigError(f"stability level {plan.stability_level} must lie in 0..{plan.levels}")
    for point in plan.rewind_points:
        Step.parse(point)


def reproduce(config: ExperimentConfig, plan: StudyPlan, store: Store | str | Path = "lth_runs",
              log: Callable[[str], None] = print, **options) -> dict[str, Any]:
    """Run the whole study; return where each part is stored."""
    store = store if isinstance(store, Store) else Store(store)
    check_plan(plan)
    began = time.perf_counter()
    stages = 1 + len(BASELINES) + len(plan.rewind_points)
    done, summary = 0, {"imp": [], "branches": [], "stability": []}

    def stage(text: str) -> None:
        nonlocal done
        done += 1
        log(f"[{done}/{stages}] {text} ({time.perf_counter() - began:.0f} s)")

    seeded = [config.override({"seed": seed, "data_seed": None}) for seed in plan.seeds]
    seeds = "seed " + ",".join(map(str, plan.seeds)) if len(plan.seeds) == 1 else "seeds " + ",".join(map(str, plan.seeds))
    summary["imp"] = [r.run_dir for r in run_imp_many(seeded, plan.levels, store, **options)]
    stage(f"{seeds}: IMP to level {plan.levels}, rewind {config.rewind}")
    for kind in BASELINES:
        summary["branches"] += [r.run_dir for r in run_branch_many(kind, seeded, plan.levels, store, **options)]
        stage(f"{seeds}: {kind}")
    for point in plan.rewind_points:
        rows = measure_stability_many([c.override({"rewind": point}) for c in seeded], plan.stability_level, store,
                                      **options)
        summary["stability"] += [row["copy_run"] for row in rows]
        barriers = ", ".join(f"{100 * row['barrier_test']:.2f}%" for row in rows)
        stage(f"{seeds}: stability at rewind {point}, level {plan.stability_level}: barrier {barriers}")
    summary["seconds"] = round(time.perf_counter() - began, 1)
    write_json(store.root / "_studies" / f"{config.hash()}.json",
               {"preset": config.preset, "plan": {"levels": plan.levels, "rewind_points": list(plan.rewind_points),
                "stability_level": plan.stability_level, "seeds": list(plan.seeds)}, "config": config.to_dict(),
                **summary})
    return summary
