"""Presets: each builds, carries the cited hyperparameters, and rewinds to a point inside training."""
import math

import pytest
from conftest import load_study

from lth.config import ExperimentConfig
from lth.masks import layer_fractions
from lth.models import build_model
from lth.presets import PRESETS, get_preset, preset_rows
from lth.steps import to_iterations

TRAIN_SIZES = {"mnist1d": 4000, "mnist5k": 4000, "mnist": 60000, "cifar10": 50000, "cifar100": 50000, "imagenet": 1_281_167}

# Key values per preset, as cited in presets.py (PAPERS.md: [LTH] Fig. 2, [SCALE], [LMC]).
EXPECTED = {
    "conv2_cifar10": dict(model="conv2", optimizer="adam", lr=2e-4, batch=60, iterations="20000it", rewind="0it"),
    "conv4_cifar10": dict(model="conv4", optimizer="adam", lr=3e-4, batch=60, iterations="25000it", rewind="0it"),
    "conv6_cifar10": dict(model="conv6", optimizer="adam", lr=3e-4, batch=60, iterations="30000it", rewind="0it"),
    "resnet20_cifar10": dict(model="resnet20", optimizer="sgd", lr=0.1, batch=128, iterations="30000it",
                             drops=("20000it", "25000it"), rewind="500it"),
    "vgg16_cifar10": dict(model="vgg16", optimizer="sgd", lr=0.1, batch=64, iterations="112000it",
                          drops=("56000it", "84000it"), rewind="1000it"),
    "vgg19_cifar10": dict(model="vgg19", optimizer="sgd", lr=0.1, batch=64, iterations="112000it",
                          drops=("56000it", "84000it"), rewind="100it"),
    "resnet50_imagenet": dict(model="resnet50", optimizer="sgd", lr=0.4, batch=1024, iterations="90ep",
                              drops=("30ep", "60ep", "80ep"), warmup="5ep", rewind="6ep"),
    "mnist1d_resnet": dict(model="mnist1d_resnet", optimizer="sgd", lr=0.1, batch=100, warmup="0it", rewind="0it"),
    "lenet300_mnist": dict(model="lenet300", optimizer="adam", lr=1.2e-3, batch=60, iterations="50000it", rewind="0it"),
    # [LTH]'s LeNet recipe at ~55 epochs of the 4,000 real training digits, as 50K it are of MNIST's 55K
    "lenet300_mnist5k": dict(model="lenet300", optimizer="adam", lr=1.2e-3, batch=60, iterations="3600it",
                             rewind="0it"),
    "mnist1d_mlp": dict(model="mnist1d_mlp", optimizer="adam", lr=2e-2, batch=100, iterations="1500it", rewind="50it"),
    "mnist1d_mlp_lth": dict(model="mnist1d_mlp", optimizer="adam", lr=1.2e-3, batch=100, iterations="1500it",
                            rewind="0it"),
    "mnist1d_mlp_scale": dict(model="mnist1d_mlp", optimizer="adam", lr=2e-2, batch=100, iterations="1500it",
                              rewind="50it"),
}


def test_every_preset_is_checked():
    assert set(EXPECTED) == set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_study_plan_is_valid(name):
    from lth.reproduce import check_plan, default_plan

    plan = default_plan(get_preset(name))
    check_plan(plan)
    assert plan.stages(get_preset(name))[0].what == "imp"
    if PRESETS[name].plan is not None:  # a preset carries its study: reproduce runs that one
        assert plan is PRESETS[name].plan


def test_make_runs_study_is_its_presets():
    plan = PRESETS["mnist1d_mlp_scale"].plan
    assert plan is not None and plan.seeds == tuple(range(15)) and plan.rewind_points == ("0it", "50it")


@pytest.mark.parametrize("name", PRESETS)
def test_preset_is_consistent(name):
    config = get_preset(name)
    assert isinstance(config, ExperimentConfig) and config.preset == name
    assert config.data.dataset in TRAIN_SIZES
    assert ExperimentConfig.from_dict(config.to_dict()) == config  # survives the store's JSON round trip
    t = config.train
    per_epoch = math.ceil(TRAIN_SIZES[config.data.dataset] / t.batch_size)
    end = to_iterations(t.iterations, per_epoch)
    assert to_iterations(config.rewind, per_epoch) < end
    assert to_iterations(t.warmup, per_epoch) < end
    drops = [to_iterations(d, per_epoch) for d in t.lr_drops]
    assert drops == sorted(drops) and all(0 < d < end for d in drops)
    assert PRESETS[name].description and "[" in PRESETS[name].description  # cites its source


@pytest.mark.parametrize("name", EXPECTED)
def test_preset_matches_its_source(name):
    config, want = get_preset(name), EXPECTED[name]
    t = config.train
    assert config.model.name == want["model"]
    assert (t.optimizer, t.lr, t.batch_size) == (want["optimizer"], want["lr"], want["batch"])
    assert config.rewind == want["rewind"]
    for key, field in (("iterations", "iterations"), ("drops", "lr_drops"), ("warmup", "warmup")):
        if key in want:
            assert getattr(t, field) == want[key]
    if t.optimizer == "sgd":  # the deep networks: momentum 0.9, weight decay 1e-4
        assert (t.momentum, t.weight_decay, t.nesterov) == (0.9, 1e-4, False)


@pytest.mark.parametrize("preset, regime", [("mnist1d_mlp_lth", "adam-1.2e-3"),
                                            ("mnist1d_mlp_scale", "w125-adam-2e-2")])
def test_regime_presets_are_the_cells_the_map_measured(preset, regime):
    # Chosen from studies/regime_map.py: each preset must train exactly that regime's networks.
    measured = get_preset("mnist1d_mlp").override(load_study("regime_map").REGIMES[regime])
    config = get_preset(preset)
    assert (config.data, config.model, config.train, config.prune) == (measured.data, measured.model, measured.train,
                                                                       measured.prune)


def test_resnet50_lr_follows_the_linear_scaling_rule():
    t = get_preset("resnet50_imagenet").train
    assert t.lr == pytest.approx(0.1 * t.batch_size / 256)


@pytest.mark.parametrize("name, conv, fc, output", [
    ("conv2_cifar10", 0.1, 0.2, 0.1), ("conv4_cifar10", 0.1, 0.2, 0.1), ("conv6_cifar10", 0.15, 0.2, 0.1)])
def test_conv_presets_prune_layerwise(name, conv, fc, output):
    config = get_preset(name)
    fractions = layer_fractions(build_model(config.model.name), config.prune)
    values = list(fractions.values())
    assert config.prune.strategy == "layerwise"
    assert values[:-3] == [conv] * (len(values) - 3)  # conv layers
    assert values[-3:] == [fc, fc, output]


@pytest.mark.parametrize("name", ["resnet20_cifar10", "vgg19_cifar10", "mnist1d_resnet"])
def test_deep_presets_prune_conv_weights_globally(name):
    config = get_preset(name)
    assert (config.prune.strategy, config.prune.fraction) == ("global", 0.2)
    fractions = layer_fractions(build_model(config.model.name), config.prune)
    *convs, output = fractions.values()
    assert output is None and convs == [0.2] * len(convs)  # all conv weights in, fc not pruned


def test_preset_rows():
    rows = {row["name"]: row for row in preset_rows()}
    assert list(rows) == list(PRESETS)
    assert rows["resnet20_cifar10"]["parameters"] == 272_474
    assert rows["vgg19_cifar10"]["parameters"] == 20_040_522
    assert rows["resnet50_imagenet"]["parameters"] == 25_557_032
    assert rows["mnist1d_resnet"]["parameters"] == 241_194
    assert rows["resnet50_imagenet"]["iterations"] == "90ep"
    assert (rows["conv2_cifar10"]["model"], rows["conv2_cifar10"]["dataset"]) == ("conv2", "cifar10")
    assert all(row["description"] and "[" in row["description"] for row in rows.values())  # each cites its paper
