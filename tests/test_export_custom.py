import json

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from lth import load_ticket, run_imp
from lth.cli import main
from lth.models import build_model
from lth.train import evaluate
from lth.options import RunOptions
from conftest import tiny_config


def small_net(hidden: int = 24) -> nn.Module:
    """A user's own model, importable as tests.test_export_custom:small_net."""
    return nn.Sequential(nn.Flatten(), nn.Linear(40, hidden), nn.ReLU(), nn.Linear(hidden, 10))


@pytest.mark.parametrize("fmt,suffix", [("safetensors", ".safetensors"), ("torch-prune", ".pt")])
def test_exported_ticket_loads_onto_a_fresh_model_with_the_stored_accuracy(tmp_path, mnist1d, fmt, suffix, capsys):
    config = tiny_config()
    result = run_imp(config, 2, tmp_path / "store", options=RunOptions(quiet=True, data=mnist1d))
    out = tmp_path / f"ticket{suffix}"
    assert main(["export", result.run_dir, "--level", "2", "--format", fmt, "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(out)
    model, mask = load_ticket(out, build_model(config.model.name, config.model.options, seed=123))
    assert mask.fraction_remaining() == pytest.approx(result.levels[2]["weights_remaining"])
    assert evaluate(model, mnist1d.test_batches("cpu"))[1] == result.levels[2]["test_accuracy"]


def test_torch_prune_export_loads_in_plain_pytorch(tmp_path, mnist1d):
    config = tiny_config()
    result = run_imp(config, 1, tmp_path / "store", options=RunOptions(quiet=True, data=mnist1d))
    out = tmp_path / "ticket.pt"
    assert main(["export", result.run_dir, "--level", "1", "--format", "torch-prune", "--out", str(out)]) == 0
    model = build_model(config.model.name, config.model.options, seed=5)
    for module in (model.fc1, model.fc2, model.fc3):  # the three documented lines
        prune.identity(module, "weight")
    model.load_state_dict(torch.load(out, weights_only=True))
    assert evaluate(model, mnist1d.test_batches("cpu"))[1] == result.levels[1]["test_accuracy"]


def test_export_of_a_missing_run_or_level_exits_2(tmp_path, capsys, mnist1d):
    assert main(["export", "deadbeef", "--level", "1", "--store", str(tmp_path)]) == 2
    assert "no run match" in capsys.readouterr().err
    result = run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert main(["export", result.run_dir, "--level", "3", "--out", str(tmp_path / "t.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"lth: error: level 3 of {result.run_dir} is not finished (its finished levels: 0, 1); run it first"
    assert not (tmp_path / "t.safetensors").exists()


def test_a_users_model_runs_by_import_path_and_as_an_object(tmp_path, mnist1d):
    by_name = tiny_config(**{"model.name": "test_export_custom:small_net", "model.options": {"hidden": 24}})
    named = run_imp(by_name, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert named.levels[1]["weights_remaining"] < 1
    torch.manual_seed(0)
    module = small_net()
    first = run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d, model=module))
    again = run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d, model=module))
    assert again.trained == 0 and again.run_dir == first.run_dir
    assert json.load(open(f"{first.run_dir}/config.json"))["model"]["name"] == "instance:Sequential"
