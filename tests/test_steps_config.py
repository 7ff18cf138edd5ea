import json

import pytest

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
