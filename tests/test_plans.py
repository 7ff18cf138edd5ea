"""StudyPlan.edited: how `lth reproduce`'s flags edit a preset's study plan (plans.py), in one place."""
import pytest

from lth.cli import main
from lth.errors import ConfigError
from lth.plans import StudyPlan

PLAN = StudyPlan(levels=8, rewind_points=("0it", "50it"), stability_level=6, seeds=(0, 1, 2),
                 baseline_rewinds=("0it",), baseline_levels=(4, 8))


def test_nothing_given_keeps_the_plan():
    assert PLAN.edited() == PLAN


def test_fewer_levels_bring_the_stability_level_down_and_drop_the_baseline_levels_above_them():
    assert PLAN.edited(levels=5) == StudyPlan(levels=5, rewind_points=("0it", "50it"), stability_level=5,
                                              seeds=(0, 1, 2), baseline_rewinds=("0it",), baseline_levels=(4,))
    assert PLAN.edited(levels=7).stability_level == 6  # already below: kept
    more = PLAN.edited(levels=12)
    assert (more.levels, more.stability_level, more.baseline_levels) == (12, 6, (4, 8))
    assert PLAN.edited(levels=3).baseline_levels == ()  # (none left: the baselines then run at every level)


def test_a_stability_level_or_baseline_levels_given_are_taken_as_they_are():
    edited = PLAN.edited(levels=3, stability_level=7, baseline_levels=(5, 9))
    assert (edited.levels, edited.stability_level, edited.baseline_levels) == (3, 7, (5, 9))  # (check_plan refuses it)


def test_each_other_part_is_replaced_alone():
    assert PLAN.edited(rewind_points=("0it", "10it", "20it")) == StudyPlan(
        levels=8, rewind_points=("0it", "10it", "20it"), stability_level=6, seeds=(0, 1, 2), baseline_rewinds=("0it",),
        baseline_levels=(4, 8))
    assert PLAN.edited(seeds=(5,)).seeds == (5,)
    assert PLAN.edited(baseline_rewinds=()).baseline_rewinds == ()  # empty is none, not "keep"
    assert PLAN.edited(baseline_levels=()).baseline_levels == ()
    assert PLAN.edited(seeds=(5,)).rewind_points == PLAN.rewind_points and PLAN.seeds == (0, 1, 2)  # (a copy)


def test_lth_reproduce_edits_the_presets_plan_with_it(tmp_path, monkeypatch):
    import lth.reproduce

    seen = []

    def stop(plan: StudyPlan) -> None:  # the plan as checked, before anything trains
        seen.append(plan)
        raise ConfigError("stop here")

    monkeypatch.setattr(lth.reproduce, "check_plan", stop)
    assert main(["reproduce", "--preset", "mnist1d_mlp_lth", "--store", str(tmp_path / "s"), "--levels", "5",
                 "--seeds", "3,4", "--baseline-rewinds", "", "--rewind-points", "0it,20it", "--quiet"]) == 2
    assert seen == [StudyPlan(levels=5, rewind_points=("0it", "20it"), stability_level=5, seeds=(3, 4),
                              baseline_rewinds=(), baseline_levels=(4,))]
    seen.clear()
    assert main(["reproduce", "--preset", "mnist1d_mlp_lth", "--store", str(tmp_path / "s"), "--levels", "5",
                 "--stability-level", "2", "--baseline-levels", "1,2", "--quiet"]) == 2
    assert seen == [StudyPlan(levels=5, rewind_points=("0it", "50it"), stability_level=2, seeds=(0, 1, 2),
                              baseline_levels=(1, 2))]


@pytest.mark.parametrize("flags, message", [
    (["--seeds", "1,1"], "--seeds needs distinct integers"),
    (["--baseline-levels", "1,x"], "--baseline-levels takes comma-separated integers"),
    (["--rewind-points", "5parsecs"], "5parsecs"),
])
def test_bad_plan_flags_are_refused_before_anything_runs(tmp_path, capsys, flags, message):
    assert main(["reproduce", "--preset", "mnist1d_mlp_lth", "--store", str(tmp_path / "s"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not any((tmp_path / "s").glob("*/level_0"))
