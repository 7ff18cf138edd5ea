"""K runs of a small all-linear network trained as one stacked computation give what training them
one by one gives, to float tolerance; everything else still trains one by one."""
from pathlib import Path

import pytest
import torch

from conftest import DEVICES, tiny_config
from lth.api import run_branch_many
from lth.cli import main
from lth.api import run_imp_many
from lth.levels import load_optimizer_state
from lth.masks import Mask, layer_fractions, magnitude_prune
from lth.models import build_model
from lth.config import PruneConfig
from lth.errors import ConfigError
from lth.experiment import prepare
from lth.replica_choice import ReplicaChoice, best_size, choose_replicas
from lth.replicas import Layout, replica_state, stack_layout, stack_masks, stack_models
from lth.store import Store, load_tensors
from lth.train import train, train_replicas
from lth.options import RunOptions


def _close(a: dict, b: dict, atol: float = 1e-5) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].cpu(), b[k].cpu(), atol=atol) for k in a)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stacked_replicas_train_like_separate_runs(mnist1d, optimizer, device):
    config = tiny_config(**{"train.optimizer": optimizer, "train.lr": 0.05 if optimizer == "sgd" else 0.003,
                            "train.weight_decay": 0.001})
    models = [build_model(config.model.name, config.model.options, seed) for seed in (0, 1, 2)]
    masks = []
    for seed, model in enumerate(models):  # a different ticket per replica
        torch.manual_seed(seed)
        weights = {n: torch.randn_like(p) for n, p in model.named_parameters()}
        masks.append(magnitude_prune(Mask.ones(model), weights, layer_fractions(model, PruneConfig(0.5)), "layerwise", 0.5))
    separate = []
    for seed, (model, mask) in enumerate(zip(models, masks)):
        copy = build_model(config.model.name, config.model.options, seed)
        separate.append((train(copy, mnist1d, config.train, mask=mask, data_seed=10 + seed, quiet=True,
                                device=device), copy))
    stacked = stack_models(models)
    results = train_replicas(stacked, mnist1d, config.train, [10, 11, 12], mask=stack_masks(masks), quiet=True,
                             device=device)
    assert len(results) == 3
    for index, (result, (alone, model)) in enumerate(zip(results, separate)):
        state = {k: v.cpu() for k, v in replica_state(stacked.state_dict(), index).items()}
        assert _close(state, model.state_dict(), atol=1e-5 if device == "cpu" else 1e-4)
        assert all((state[name][~masks[index][name]] == 0).all() for name in masks[index])
        assert result.final["test_accuracy"] == pytest.approx(alone.final["test_accuracy"], abs=0.002)
        assert result.final["train_loss"] == pytest.approx(alone.final["train_loss"], rel=1e-4)


def test_train_with_a_list_of_seeds_is_refused_naming_train_replicas(mnist1d):
    """train() trains one model (lth 0.1's train(data_seed=[...]) was deprecated, then removed)."""
    config = tiny_config()
    model = stack_models([build_model(config.model.name, config.model.options, seed) for seed in (0, 1)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError, match="call train_replicas"):
        train(model, mnist1d, config.train, data_seed=[3, 4], quiet=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    results = train_replicas(model, mnist1d, config.train, [3, 4], quiet=True)
    assert len(results) == 2 and results[0].final != results[1].final


def test_seeds_of_imp_and_a_baseline_stacked_match_one_by_one(tmp_path, mnist1d):
    configs = [tiny_config(seed=seed) for seed in (0, 1, 2)]
    stacked = run_imp_many(configs, 2, tmp_path / "stacked", options=RunOptions(quiet=True, data=mnist1d, replicas=3))
    alone = run_imp_many(configs, 2, tmp_path / "alone", options=RunOptions(quiet=True, data=mnist1d, replicas="off"))
    for s, a in zip(stacked, alone):
        assert [level["replicas"] for level in s.levels] == [3, 3, 3]
        assert [level["replicas"] for level in a.levels] == [1, 1, 1]
        for level in range(3):
            for name in ("mask", "final"):
                got = load_tensors(Path(s.run_dir) / f"level_{level}" / f"{name}.safetensors")
                expected = load_tensors(Path(a.run_dir) / f"level_{level}" / f"{name}.safetensors")
                assert _close(got, expected)
    # the rewind checkpoint's optimizer state, saved per replica, is what a run alone saves
    for s, a in zip(stacked, alone):
        got, expected = (load_optimizer_state(Path(r.run_dir) / "level_0" / "step_10it_optimizer.pt", "cpu")
                         for r in (s, a))
        assert got["param_groups"] == expected["param_groups"] and got["state"].keys() == expected["state"].keys()
        for key, slot in expected["state"].items():
            assert all(torch.allclose(got["state"][key][name], value, atol=1e-6) for name, value in slot.items())
    # the data-order copy at level 0 continues the dense run from step k with that optimizer state
    copies = run_branch_many("data-order", configs, 2, tmp_path / "stacked", only=[0, 2],
                             options=RunOptions(quiet=True, data=mnist1d, replicas=3))
    singles = run_branch_many("data-order", configs, 2, tmp_path / "alone", only=[0, 2],
                              options=RunOptions(quiet=True, data=mnist1d, replicas="off"))
    for s, a in zip(copies, singles):
        assert [level["test_accuracy"] for level in s.levels] == pytest.approx([r["test_accuracy"] for r in a.levels],
                                                                              abs=0.002)
        for level in (0, 2):
            assert _close(load_tensors(Path(s.run_dir) / f"level_{level}" / "final.safetensors"),
                          load_tensors(Path(a.run_dir) / f"level_{level}" / "final.safetensors"))


def test_every_registry_network_stacks_in_its_layout():
    for name in ("mnist1d_mlp", "lenet300"):
        assert stack_layout(build_model(name, {}, 0)) is Layout.ROWS
    for name in ("conv2", "conv4", "conv6", "resnet20", "vgg11", "mnist1d_resnet", "resnet18"):
        assert stack_layout(build_model(name, {}, 0)) is Layout.CHANNELS, name
    assert stack_layout(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"))) is None
    assert stack_layout(torch.nn.Sequential(torch.nn.Embedding(4, 2), torch.nn.Linear(2, 2))) is None


def test_the_replica_choice_follows_the_flag_and_the_measurement(mnist1d, tmp_path):
    setup = prepare(tiny_config(), data=mnist1d, device="cpu")
    assert (choose_replicas("off", setup, 6, None).size, choose_replicas(4, setup, 6, None).size,
            choose_replicas(4, setup, 3, None).size, choose_replicas("auto", setup, 1, None).size) == (1, 4, 3, 1)
    # auto doubles K while the time per replica falls by 10% or more, never past the trainings
    assert best_size({1: 1.0, 2: 0.6, 4: 0.58, 8: 0.2}, 16) == 2  # (4 gained 3%: 8 is not looked at)
    assert best_size({1: 1.0, 2: 0.95}, 16) == 1 and best_size({1: 1.0, 2: 0.5, 4: 0.2}, 3) == 3
    # what auto measured is kept in the store: a second choice reads it, the same K
    first = choose_replicas("auto", setup, 4, Store(tmp_path))
    assert first.why.startswith("auto: step time per replica K=1") and (tmp_path / "_replicas.json").exists()
    before = (tmp_path / "_replicas.json").read_bytes()
    assert choose_replicas("auto", setup, 4, Store(tmp_path)) == first
    assert (tmp_path / "_replicas.json").read_bytes() == before
    # a user's model object stacks through torch.func, measured like the registry's networks
    user = prepare(tiny_config(), data=mnist1d, device="cpu", model=build_model("mnist1d_mlp", {"hidden": 32}, 0))
    assert choose_replicas("auto", user, 4, None).why.startswith("auto (torch.func): step time per replica K=1")
    assert choose_replicas(4, user, 4, None) == ReplicaChoice(4, "--replicas 4 (torch.func)")


class NormedConv(torch.nn.Module):
    """A user's network the registry does not know: conv, GroupNorm and a functional softplus."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 6, 3, padding=1)
        self.norm = torch.nn.GroupNorm(2, 6)
        self.head = torch.nn.Linear(6 * 40, 10)

    def forward(self, x):
        h = torch.nn.functional.softplus(self.norm(self.conv(x.view(x.shape[0], 1, -1))))
        return self.head(h.flatten(1))


class Stubborn(torch.nn.Module):
    """A forward torch.func cannot batch: it reads a value to the host."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(40, 10)

    def forward(self, x):
        return self.fc(x) * (2.0 if float(x.abs().max()) > 0 else 1.0)


def test_a_users_model_stacks_through_torch_func_and_trains_as_it_would_alone(tmp_path, mnist1d):
    configs = [tiny_config(seed=seed) for seed in (0, 1)]
    torch.manual_seed(0)
    user = NormedConv()  # (its weights are the initialisation: one object, one fingerprint, the same runs)
    alone = run_imp_many(configs, 0, tmp_path / "alone",
                         options=RunOptions(quiet=True, data=mnist1d, model=user, replicas="off"))
    asked = run_imp_many(configs, 0, tmp_path / "asked",
                         options=RunOptions(quiet=True, data=mnist1d, model=user, replicas=2))
    assert [r.levels[0]["replicas"] for r in alone] == [1, 1]
    assert [r.levels[0]["replicas"] for r in asked] == [2, 2]
    assert asked[0].levels[0]["execution"]["replicas_why"] == "--replicas 2 (torch.func)"
    for a, b in zip(alone, asked):
        assert a.run_dir.rsplit("/", 1)[1] == b.run_dir.rsplit("/", 1)[1]  # the same runs
        assert _close(load_tensors(Path(a.run_dir) / "level_0" / "final.safetensors"),
                      load_tensors(Path(b.run_dir) / "level_0" / "final.safetensors"))
    # auto measures it like a registry network, and says that it went through torch.func
    auto = run_imp_many(configs, 0, tmp_path / "auto", options=RunOptions(quiet=True, data=mnist1d, model=user))
    assert auto[0].levels[0]["execution"]["replicas_why"].startswith("auto (torch.func): step time per replica K=1")


def test_a_users_model_that_torch_func_cannot_batch_trains_one_by_one_and_says_why(tmp_path, mnist1d):
    configs = [tiny_config(seed=seed) for seed in (0, 1)]
    results = run_imp_many(configs, 0, tmp_path,
                           options=RunOptions(quiet=True, data=mnist1d, model=Stubborn(), replicas=2))
    assert [r.levels[0]["replicas"] for r in results] == [1, 1]
    why = results[0].levels[0]["execution"]["replicas_why"]
    assert why.startswith("one by one: torch.func cannot vmap its forward"), why


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_replicas_flag_is_one_line_and_exit_2(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit:
        main(["imp", "--replicas", value, "--store", str(tmp_path)])
    assert exit.value.code == 2 and "--replicas" in capsys.readouterr().err


def test_fp16_runs_are_never_stacked_and_asking_for_it_is_refused(tmp_path, mnist1d, capsys):
    """Stacked copies would share one GradScaler: an overflow in one would skip the step of all."""
    configs = [tiny_config(seed=seed, **{"train.precision": "fp16", "train.iterations": "20it"}) for seed in (0, 1)]
    auto = run_imp_many(configs, 0, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert [r.levels[0]["replicas"] for r in auto] == [1, 1]
    alone = run_imp_many(configs[1:], 0, tmp_path / "alone", options=RunOptions(quiet=True, data=mnist1d))
    a = load_tensors(Path(auto[1].run_dir) / "level_0" / "final.safetensors")
    b = load_tensors(Path(alone[0].run_dir) / "level_0" / "final.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # trained exactly as alone
    assert main(["imp", "--precision", "fp16", "--seeds", "0,1", "--replicas", "2", "--levels", "0", "--rewind", "0it",
                 "--iterations", "20it", "--store", str(tmp_path / "cli"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lth: error: --replicas 2 cannot stack fp16 runs") and "\n" not in err
    assert not (tmp_path / "cli").exists()  # refused before anything was written
    model = stack_models([build_model("mnist1d_mlp", {"hidden": 8}, seed) for seed in (0, 1)])
    with pytest.raises(ConfigError, match="fp16 cannot train stacked replicas"):
        train_replicas(model, mnist1d, configs[0].train, [0, 1], quiet=True)
