import json

import pytest

from lth.cli import main
from lth.config import ExperimentConfig
from lth.errors import ConfigError, StepError
from lth.steps import Step
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
