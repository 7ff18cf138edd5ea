"""data.options: mnist1d's generation arguments as part of the config (more samples, more noise)."""
import json

import pytest

from lth.cli import main
from lth.data import load_dataset
from lth.errors import ConfigError
from lth.presets import get_preset
from lth.options import RunOptions


def test_generation_arguments_change_the_data_and_the_address_and_are_cached(tmp_path):
    default = load_dataset("mnist1d", cache_dir=tmp_path)
    small = load_dataset("mnist1d", cache_dir=tmp_path, options={"num_samples": 2000})
    noisy = load_dataset("mnist1d", cache_dir=tmp_path, options={"iid_noise_scale": 0.1})
    assert (len(default.y_train), len(default.y_test)) == (4000, 1000)
    assert (len(small.y_train), len(small.y_test)) == (1600, 400)
    assert noisy.x_train.shape == default.x_train.shape and (noisy.y_train == default.y_train).all()
    assert not (noisy.x_train == default.x_train).all()
    assert len(list(tmp_path.glob("mnist1d-*.npz"))) == 3  # one cache file per set of arguments
    again = load_dataset("mnist1d", cache_dir=tmp_path, options={"num_samples": 2000})
    assert (again.x_train == small.x_train).all()
    config = get_preset("mnist1d_mlp")
    assert config.override({"data.options": {"num_samples": 2000}}).hash() != config.hash()
    assert "options" not in json.loads(config.canonical_json())["data"]  # not hashed at {}: old addresses kept


@pytest.mark.parametrize("dataset, options, message", [
    ("mnist1d", {"bogus": 1}, "unknown mnist1d data.options bogus; known: "),
    ("mnist1d", {"num_samples": -5}, "mnist1d cannot generate data with data.options"),
    ("mnist", {"num_samples": 5}, "dataset 'mnist' takes no data.options"),
])
def test_bad_generation_arguments_are_one_line_errors(tmp_path, capsys, dataset, options, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset(dataset, None if dataset == "mnist1d" else tmp_path, tmp_path, options=options)
    preset = "mnist1d_mlp" if dataset == "mnist1d" else "lenet300_mnist"
    root = [] if dataset == "mnist1d" else ["--data-root", str(tmp_path)]  # (mnist1d reads no files)
    code = main(["train", "--preset", preset, "--store", str(tmp_path / "s"), *root,
                 "--set", f"data.options={json.dumps(options)}", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


def test_seeds_of_a_config_with_data_options_train_stacked_on_the_generated_data(tmp_path):
    from conftest import tiny_config
    from lth.api import run_imp_many

    configs = [tiny_config(**{"seed": s, "data.options": {"num_samples": 1000}}) for s in (0, 1)]
    results = run_imp_many(configs, 1, tmp_path, options=RunOptions(quiet=True, replicas=2))
    summary = json.loads((tmp_path / configs[0].hash() / "level_1" / "summary.json").read_text())
    assert summary["execution"]["replicas"] == 2  # stacked: the two seeds share model, data and training
    assert [len(r.levels) for r in results] == [2, 2]
