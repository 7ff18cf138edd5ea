import json

import pytest

from lth.cli import main
from lth.config import ExperimentConfig
from lth.errors import ConfigError, StepError
from lth.steps import Step
from lth.options import RunOptions
from conftest import tiny_config


@pytest.mark.parametrize("text,per_epoch,expected", [("500it", 40, 500), ("0it", 7, 0), ("2ep", 40, 80), (" 3 ep ", 10, 30)])
def test_step_resolves_to_iterations(text, per_epoch, expected):
    assert Step.parse(text).iterations(per_epoch) == expected


@pytest.mark.parametrize("bad", ["", "500", "ep", "-1it", "1.5ep", "5x", "it500"])
def test_bad_step_strings_raise_a_step_error(bad):
    with pytest.raises(StepError, match="bad step"):
        Step.parse(bad)


def test_hash_is_stable_and_ignores_the_preset_label():
    a = tiny_config()
    assert a.hash() == ExperimentConfig.from_dict(json.loads(json.dumps(a.to_dict()))).hash()
    assert a.hash() == a.override({"preset": "renamed"}).hash()
    assert a.hash() != a.override({"train.lr": "0.1"}).hash()
    assert a.hash() != a.override({"seed": 1}).hash()


def test_a_field_added_later_keeps_old_stores_addresses_until_it_is_set():
    a = tiny_config()
    written_before = a.to_dict()
    del written_before["train"]["precision"]  # a config.json from before train.precision existed
    assert ExperimentConfig.from_dict(written_before).hash() == a.hash()
    assert "precision" not in a.canonical_json()
    assert a.override({"train.precision": "bf16"}).hash() != a.hash()


def test_overrides_coerce_strings_to_the_field_type():
    c = tiny_config().override({"train.lr": "0.25", "train.batch_size": "7", "data.augment": "true",
                                "train.lr_drops": "100it,200it", "data_seed": "4"})
    assert (c.train.lr, c.train.batch_size, c.data.augment, c.train.lr_drops, c.data_seed) == \
        (0.25, 7, True, ("100it", "200it"), 4)


@pytest.mark.parametrize("change,message", [
    ({"train.nope": "1"}, "unknown config key"),
    ({"prune.fraction": "1.0"}, r"in \(0, 1\)"),
    ({"train.optimizer": "rmsprop"}, "unknown optimizer"),
    ({"train.precision": "fp8"}, "unknown precision"),
    ({"rewind": "12"}, "bad step"),
    ({"train.batch_size": "x"}, "bad value"),
])
def test_bad_overrides_raise_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config().override(change)


def test_unknown_keys_in_a_config_file_are_rejected():
    raw = tiny_config().to_dict()
    raw["train"]["learning_rate"] = 0.1
    with pytest.raises(ConfigError, match="train.learning_rate"):
        ExperimentConfig.from_dict(raw)


@pytest.mark.parametrize("assignment,message", [
    ("data_seed=abc", "config value data_seed must be an integer or null, got 'abc'"),
    ("seed=1.5", "bad value '1.5' for 'seed' (expected int)"),
    ("train.lr=fast", "bad value 'fast' for 'train.lr' (expected float)"),
    ("data.augment=maybe", "bad value 'maybe' for 'data.augment' (expected bool)"),
    ("model.options=[1]", "config value model.options must be a mapping, got [1]"),
    ("train.warmup=5", "bad step"),
])
def test_every_config_value_is_type_checked_before_work_starts(tmp_path, capsys, assignment, message):
    assert main(["imp", "--levels", "0", "--set", assignment, "--store", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_config_file_with_values_of_the_wrong_type_is_refused(tmp_path):
    for section, key, value, message in [
            ("train", "iterations", 60, "config value train.iterations must be a string, got 60"),
            ("train", "batch_size", 50.0, "config value train.batch_size must be an integer, got 50.0"),
            ("prune", "ignore", "output", "config value prune.ignore must be a list, got 'output'"),
            ("prune", "layer_fractions", {"output": "0.1"}, "prune.layer_fractions must be a mapping of strings to numbers"),
            ("train", "nesterov", 1, "config value train.nesterov must be true or false, got 1"),
            (None, "seed", None, "config value seed must be an integer, got None")]:
        raw = tiny_config().to_dict()
        (raw[section] if section else raw)[key] = value
        with pytest.raises(ConfigError) as error:
            ExperimentConfig.from_dict(raw)
        assert message in str(error.value)


# ---------------------------------------------------------------- steps canonicalised: one address per run

def _run_dirs(store):
    return sorted(p.parent.name for p in store.glob("*/config.json"))


def test_a_run_written_in_epochs_and_in_iterations_is_one_run(tmp_path, mnist1d):
    from lth.experiment import canonical
    from lth.api import run_imp
    from lth.store import Store

    in_epochs = tiny_config(**{"train.iterations": "1ep", "train.eval_every": "20it"})  # 4000 / 50 = 80 it per epoch
    in_iterations = tiny_config(**{"train.iterations": "80it", "train.eval_every": "20it"})
    assert in_epochs.hash() != in_iterations.hash()
    assert canonical([in_epochs], Store(tmp_path), data=mnist1d) == [in_iterations]
    first = run_imp(in_epochs, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    runs = _run_dirs(tmp_path)
    second = run_imp(in_iterations, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert second.run_dir == first.run_dir == str(tmp_path / in_iterations.hash())
    assert _run_dirs(tmp_path) == runs  # nothing trained twice
    assert [r["test_accuracy"] for r in second.levels] == [r["test_accuracy"] for r in first.levels]


def test_the_cli_resolves_epochs_before_addressing_and_study_points_collapse(tmp_path, capsys):
    from lth.experiment import canonical_steps
    from lth.reproduce import StudyPlan, plan_in_iterations
    from lth.store import Store

    common = ["imp", "--preset", "mnist1d_mlp", "--levels", "0", "--store", str(tmp_path), "--json", "--quiet",
              "--rewind", "0it", "--set", "train.eval_every=20it"]
    assert main(common + ["--iterations", "1ep"]) == 0  # mnist1d_mlp: batch 100, 40 iterations per epoch
    first = json.loads(capsys.readouterr().out)
    assert main(common + ["--iterations", "40it"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["run_dir"] == second["run_dir"] and len(_run_dirs(tmp_path)) == 2  # the IMP run and its dense run
    config = tiny_config()
    assert canonical_steps(("0ep", "0it", "1ep", "10it"), config, Store(tmp_path)) == ("0it", "0it", "80it", "10it")
    plan = plan_in_iterations(StudyPlan(rewind_points=("0ep", "0it", "1ep"), baseline_rewinds=("0ep",)), config,
                              Store(tmp_path))
    assert plan.rewind_points == ("0it", "80it") and plan.baseline_rewinds == ("0it",)


def test_a_run_stored_under_its_epochs_before_canonicalisation_keeps_its_address(tmp_path, mnist1d):
    """Stores written before steps were canonicalised hold epoch-written runs under their own hash."""
    import shutil

    from lth.dense import dense_config

    from lth.api import run_imp
    from lth.store import CONFIG_FILE, write_json

    in_epochs = tiny_config(**{"train.iterations": "1ep", "train.eval_every": "20it"})
    in_iterations = tiny_config(**{"train.iterations": "80it", "train.eval_every": "20it"})
    run_imp(in_iterations, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    for new, old in ((in_iterations, in_epochs), (dense_config(in_iterations), dense_config(in_epochs))):
        shutil.move(tmp_path / new.hash(), tmp_path / old.hash())  # as an old lth stored them
        write_json(tmp_path / old.hash() / CONFIG_FILE, old.to_dict())
    runs = _run_dirs(tmp_path)
    again = run_imp(in_epochs, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert again.run_dir == str(tmp_path / in_epochs.hash()) and _run_dirs(tmp_path) == runs


def test_a_schedule_past_the_end_of_training_is_named_not_refused():
    from lth.experiment import schedule_warnings

    config = tiny_config(**{"train.lr_drops": ["30it", "60it", "2ep"], "train.warmup": "1ep"})  # 60 iterations
    assert schedule_warnings(config, 80) == [
        "learning-rate drops at 60it, 2ep never happen: training ends at 60it (60 iterations)",
        "the 1ep warm-up never reaches the full learning rate: training ends at 60it (60 iterations)"]
    assert schedule_warnings(config, 40) == [  # (the warm-up ends at 40 of 60 iterations)
        "learning-rate drops at 60it, 2ep never happen: training ends at 60it (60 iterations)"]
    assert schedule_warnings(tiny_config(**{"train.lr_drops": ["59it"]}), 40) == []


def test_a_run_with_a_drop_past_its_end_warns_once_and_trains(tmp_path, mnist1d, capsys):
    from lth.api import run_imp

    config = tiny_config(**{"train.lr_drops": ["100it"]})
    result = run_imp(config, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lth: warning: learning-rate drop at 100it never happens: training ends at 60it (60 iterations)"]
    assert [level["level"] for level in result.levels] == [0, 1] and result.trained == 1
