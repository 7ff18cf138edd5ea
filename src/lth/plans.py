"""A study's plan -- levels, rewind points, seeds, baselines -- and its stages, the one definition of a
study that `lth reproduce` runs inline and `jobs.study_jobs` turns into executor jobs. Each preset
carries its own plan (presets.py)."""
from __future__ import annotations

from dataclasses import dataclass

from .config import ExperimentConfig
from .kinds import BASELINES, IMP, KINDS
from .steps import Step

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
