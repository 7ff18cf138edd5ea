import os

import pytest
import torch

from lth import connectivity
from lth.api import run_branch
from lth.experiment import prepare
from lth.masks import Mask
from lth.models import build_model
from lth.connectivity import barrier, distances, interpolation_curve
from lth.api import measure_stability
from lth.stability import StabilitySettings
from lth.store import load_tensors
from lth.train import evaluate
from lth.options import RunOptions
from conftest import DEVICES, tiny_config


def _level(run_dir, level, name):
    return load_tensors(os.path.join(run_dir, f"level_{level}", f"{name}.safetensors"))


def _mask(run_dir, level):
    return Mask.load(os.path.join(run_dir, f"level_{level}", "mask.safetensors"))


@pytest.fixture(scope="module")
def branches(tmp_path_factory, mnist1d):
    store = tmp_path_factory.mktemp("store")
    config = tiny_config()
    return config, {kind: run_branch(kind, config, 2, store, options=RunOptions(quiet=True, data=mnist1d))
                    for kind in ("reset-init", "reinit", "random-prune", "data-order")}, store


def test_baselines_keep_the_tickets_per_layer_sparsity(branches):
    config, results, store = branches
    imp_dir = str(store / config.hash())
    for level in (1, 2):
        ticket = _mask(imp_dir, level)
        assert _mask(results["reset-init"].run_dir, level) == ticket
        assert _mask(results["reinit"].run_dir, level) == ticket
        shuffled = _mask(results["random-prune"].run_dir, level)
        assert shuffled.per_layer() == ticket.per_layer() and shuffled != ticket


def test_each_baseline_starts_where_it_should(branches):
    config, results, store = branches
    imp_dir = str(store / config.hash())
    init, rewind = _level(imp_dir, 0, "start"), _level(imp_dir, 0, "step_10it")
    mask = _mask(imp_dir, 2)
    reset, reinit = _level(results["reset-init"].run_dir, 2, "start"), _level(results["reinit"].run_dir, 2, "start")
    shuffled = _mask(results["random-prune"].run_dir, 2)
    random_start = _level(results["random-prune"].run_dir, 2, "start")
    for name, value in init.items():
        keep = mask[name] if name in mask else torch.ones_like(value, dtype=torch.bool)
        assert torch.equal(reset[name], value * keep)
        assert not torch.equal(reinit[name][keep], value[keep])  # fresh weights ...
        if name in mask:
            assert (reinit[name][~keep] == 0).all() and (reinit[name][keep] != 0).all()  # ... on the same mask
            assert torch.equal(random_start[name], rewind[name] * shuffled[name])
    levels = {kind: [row["start_iteration"] for row in r.levels[1:]] for kind, r in results.items()}
    assert levels == {"reset-init": [0, 0], "reinit": [0, 0], "random-prune": [10, 10], "data-order": [10, 10]}


def test_data_order_copy_differs_only_in_data_order(branches):
    config, results, store = branches
    copy = results["data-order"]
    assert [row["level"] for row in copy.levels] == [0, 1, 2]
    assert copy.levels[1]["data_seed"] != config.order_seed
    assert torch.equal(_level(copy.run_dir, 1, "start")["fc1.weight"], _level(str(store / config.hash()), 1, "start")["fc1.weight"])


def test_distances_are_symmetric_and_zero_for_identical_weights(branches):
    config, results, store = branches
    imp_dir, copy_dir = str(store / config.hash()), results["data-order"].run_dir
    a, b, mask = _level(imp_dir, 2, "final"), _level(copy_dir, 2, "final"), _mask(imp_dir, 2)
    ab, ba = distances(a, b, mask), distances(b, a, mask)
    assert ab == pytest.approx(ba) and ab["l2"] > 0 and 0 < ab["angle"] < 90
    assert distances(a, a, mask) == {"l2": 0.0, "l2_normalized": 0.0, "angle": pytest.approx(0.0, abs=1e-4)}


def test_interpolation_endpoints_reproduce_each_copy_and_self_barrier_is_zero(branches, mnist1d):
    config, results, store = branches
    setup = prepare(config, data=mnist1d, device="cpu")
    a, b = _level(str(store / config.hash()), 2, "final"), _level(results["data-order"].run_dir, 2, "final")
    model = setup.new_model()
    curve = interpolation_curve(model, setup, a, b, points=4)
    model.load_state_dict(a)
    assert curve[-1]["test_error"] == 1 - evaluate(model, mnist1d.test_batches("cpu"))[1]
    model.load_state_dict(b)
    assert curve[0]["test_error"] == 1 - evaluate(model, mnist1d.test_batches("cpu"))[1]
    assert [p["alpha"] for p in curve] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    same = interpolation_curve(model, setup, a, a, points=5)
    assert barrier([p["test_error"] for p in same]) == 0.0
    assert barrier([0.1, 0.3, 0.1]) == pytest.approx(0.2)


def test_copies_with_the_same_data_seed_have_distance_and_barrier_zero(tmp_path, mnist1d):
    config = tiny_config()
    same = run_branch("data-order", config, 1, tmp_path, data_seed=config.order_seed,
                      options=RunOptions(quiet=True, data=mnist1d))
    imp_dir = str(tmp_path / config.hash())
    for level in (0, 1):  # level 0: the dense run restarted at k with its optimizer state
        a, b = _level(imp_dir, level, "final"), _level(same.run_dir, level, "final")
        assert distances(a, b, _mask(imp_dir, level))["l2"] == 0.0


def test_measure_stability_reports_every_quantity_and_caches(tmp_path, mnist1d):
    config = tiny_config()
    row = measure_stability(config, 1, tmp_path, settings=StabilitySettings(points=3),
                            options=RunOptions(quiet=True, data=mnist1d))
    assert row["level"] == 1 and row["rewind"] == "10it" and row["batch_norm"] == "none" and len(row["curve"]) == 3
    assert row["pruning_l2"] > 0 and row["data_order_l2"] > 0 and row["barrier_test"] >= 0
    assert measure_stability(config, 1, tmp_path, settings=StabilitySettings(points=3),
                             options=RunOptions(quiet=True, data=mnist1d)) == row


@pytest.mark.parametrize("device", DEVICES)
def test_an_all_linear_curve_evaluated_in_one_pass_matches_the_point_by_point_curve(branches, mnist1d, device):
    config, results, store = branches
    setup = prepare(config, data=mnist1d, device=device)
    a, b = _level(str(store / config.hash()), 2, "final"), _level(results["data-order"].run_dir, 2, "final")
    assert connectivity.points_per_pass(setup.new_model(), 30, "cuda") == 30
    assert connectivity.points_per_pass(setup.new_model(), 30, "cpu") == 1  # measured slower on CPU
    assert connectivity.points_per_pass(build_model("resnet20", {}, 0), 30, "cuda") == 1  # convolutions, batch norm
    stacked = interpolation_curve(setup.new_model(), setup, a, b, points=7, per_pass=7)
    one_by_one = interpolation_curve(setup.new_model(), setup, a, b, points=7, per_pass=1)
    tests, trains = len(mnist1d.y_test), min(5000, len(mnist1d.y_train))
    for s, o in zip(stacked, one_by_one):  # the batched matmul sums in another order: a tie may flip
        assert s["alpha"] == o["alpha"]
        assert abs(s["test_error"] - o["test_error"]) <= 1 / tests + 1e-12
        assert abs(s["train_error"] - o["train_error"]) <= 1 / trains + 1e-12
    assert any(0 < s["test_error"] < 1 for s in stacked)
