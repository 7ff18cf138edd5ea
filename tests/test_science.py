"""The papers' claims on the embedded data, with the mnist1d_mlp preset's training recipe.

To keep the suite fast the pruning rate per level is doubled (40% of hidden weights, 20% of
the output layer, the preset's 2:1 ratio), so ~20% and ~8% of the weights remain after 3 and 5
levels instead of 7 and 11. About 3 minutes on 2 CPU cores.
"""
import pytest

from lth.api import run_branch
from lth.api import run_imp
from lth.presets import get_preset
from lth.options import RunOptions

SEEDS = (0, 1, 2)
LEVELS = 5


@pytest.fixture(scope="module")
def study(tmp_path_factory, mnist1d):
    store = tmp_path_factory.mktemp("science")
    config = get_preset("mnist1d_mlp").override({"prune.fraction": 0.4, "prune.layer_fractions": {"output": 0.2}})
    results = {}
    for seed in SEEDS:
        seeded = config.override({"seed": seed})
        results[seed] = {"imp": run_imp(seeded, LEVELS, store, options=RunOptions(quiet=True, data=mnist1d)).levels,
                         "random": run_branch("random-prune", seeded, LEVELS, store,
                                              options=RunOptions(quiet=True, data=mnist1d)).levels}
    return results


@pytest.mark.slow
def test_a_ticket_at_20_percent_weights_matches_the_dense_network(study):
    levels = study[0]["imp"]
    assert levels[3]["weights_remaining"] == pytest.approx(0.216, abs=0.01)
    assert levels[3]["test_accuracy"] >= levels[0]["test_accuracy"] - 0.01


@pytest.mark.slow
def test_imp_tickets_beat_random_pruning_at_8_percent_weights(study):
    ticket = sum(study[s]["imp"][LEVELS]["test_accuracy"] for s in SEEDS) / len(SEEDS)
    random = sum(study[s]["random"][LEVELS]["test_accuracy"] for s in SEEDS) / len(SEEDS)
    assert study[0]["imp"][LEVELS]["weights_remaining"] == pytest.approx(0.078, abs=0.01)
    assert ticket > random
