"""A study's plan -- levels, rewind points, seeds, baselines -- and its stages, the one definition of a
study that `lth reproduce` runs inline and `jobs.study_jobs` turns into executor jobs. Each preset
carries its own plan (presets.py)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from .config import ExperimentConfig
from .kinds import BASELINES, IMP, KINDS

STABILITY = "stability"  # a stage (and a job) that measures stability rather than training a kind
DEFAULT_LEVELS = 5  # pruning levels after the dense level 0, where neither a flag nor a study plan says
STABILITY_LEVEL = 2  # the level whose ticket is measured, where neither a flag nor a study plan says


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

    def edited(self, levels: int | None = None, rewind_points: tuple[str, ...] | None = None,
               stability_level: int | None = None, baseline_levels: tuple[int, ...] | None = None,
               baseline_rewinds: tuple[str, ...] | None = None, seeds: tuple[int, ...] | None = None) -> StudyPlan:
        """This plan with the parts given replaced (None: kept), as `lth reproduce`'s flags edit a preset's
        plan. Fewer `levels` also bring the plan's own stability level down to them and drop its baseline
        levels above them; a `stability_level` or `baseline_levels` given is taken as it is."""
        plan = self
        if levels is not None:
            plan = replace(plan, levels=levels, stability_level=min(plan.stability_level, levels),
                           baseline_levels=tuple(level for level in plan.baseline_levels if level <= levels))
        if rewind_points is not None:
            plan = replace(plan, rewind_points=rewind_points)
        if stability_level is not None:
            plan = replace(plan, stability_level=stability_level)
        if baseline_levels is not None:
            plan = replace(plan, baseline_levels=baseline_levels)
        if baseline_rewinds is not None:
            plan = replace(plan, baseline_rewinds=baseline_rewinds)
        if seeds is not None:
            plan = replace(plan, seeds=seeds)
        return plan

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
                       if not KINDS[kind].is_the_ticket_at(rewind)]
        stages += [Stage(STABILITY, point, self.stability_level) for point in self.rewind_points]
        return stages
