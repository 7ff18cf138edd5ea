"""The dense network is trained once: every IMP chain, branch and study of the same model, data,
training config and seeds adopts it (hard links, no copy); a rewind point asked for later is a
replay of k iterations, bit for bit; stores written before the dense run existed still read."""
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from conftest import tiny_config
from lth.api import run_branch
from lth.cli import main
from lth.config import DataConfig, ExperimentConfig, ModelConfig, PruneConfig, TrainConfig
from lth.dense import dense_config
from lth.api import run_imp, run_imp_many
from lth.kinds import DENSE
from lth.levels import load_optimizer_state, shape_model
from lth.masks import Mask, layer_fractions, magnitude_prune
from lth.reproduce import StudyPlan, reproduce
from lth.store import Store, load_tensors
from lth.options import RunOptions

OLD_STORE = Path(__file__).parent / "data" / "store_8150b21"  # written by lth at commit 8150b21, one thread


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU kernels split sums by thread: the same bits need the same count
    yield
    torch.set_num_threads(before)


def _same(a: Path, b: Path) -> bool:
    x, y = load_tensors(a), load_tensors(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _dense_runs(store: Path) -> list:
    return [run for run in Store(store).runs() if run.config.kind == DENSE]


def test_chains_with_different_rewind_points_share_one_dense_training(tmp_path, mnist1d, capsys):
    late, early = tiny_config(rewind="10it"), tiny_config(rewind="0it", **{"prune.fraction": 0.5})
    assert dense_config(late).hash() == dense_config(early).hash()  # rewind and pruning do not change it
    assert dense_config(late).hash() != dense_config(tiny_config(seed=1)).hash()
    first = run_imp(late, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    second = run_imp(early, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert first.trained == second.trained == 1  # level 1 each; level 0 is the dense run's
    [dense] = _dense_runs(tmp_path)
    assert dense.levels_done() == [0]
    for result in (first, second):
        level_0 = Path(result.run_dir) / "level_0"
        for name in ("final.safetensors", "start.safetensors", "mask.safetensors", "metrics.jsonl"):
            assert (level_0 / name).samefile(dense.level_dir(0) / name)  # one file on disk
        summary = Store(tmp_path).run(late if result is first else early).summary(0)
        assert summary["adopted_from"] == f"{dense.hash}/level_0" and summary["kind"] == "imp"
    assert Store(tmp_path).run(late).summary(0)["rewind"] == "10it"
    assert (Path(first.run_dir) / "level_0" / "step_10it.safetensors").samefile(dense.level_dir(0) / "step_10it.safetensors")
    capsys.readouterr()
    assert main(["ls", "--store", str(tmp_path)]) == 0  # the dense run is listed by its kind, without a rewind
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(dense.hash)]
    assert line.split()[1:5] == ["dense", "-", "0", "1"]


@pytest.mark.parametrize("replicas", ["off", 2])
def test_a_rewind_point_asked_later_replays_the_dense_run_bit_for_bit(tmp_path, mnist1d, one_thread, replicas):
    seeds = [tiny_config(seed=seed, rewind="0it") for seed in (0, 1)]
    later = [c.override({"rewind": "30it"}) for c in seeds]
    run_imp_many(seeds, 0, tmp_path / "replayed", options=RunOptions(quiet=True, data=mnist1d, replicas=replicas))
    for dense in _dense_runs(tmp_path / "replayed"):
        assert not (dense.level_dir(0) / "step_30it.safetensors").exists()
        assert ("stack" in dense.summary(0)) == (replicas == 2)  # what a replay has to stack again
    finished = {p: p.stat().st_mtime_ns for p in (tmp_path / "replayed").glob("*/level_0/final.safetensors")}
    assert len(finished) == 4  # two dense runs and the two chains' level 0 (hard links to them)
    run_imp_many(later, 0, tmp_path / "replayed", options=RunOptions(quiet=True, data=mnist1d, replicas=replicas))
    run_imp_many(later, 0, tmp_path / "direct",
                 options=RunOptions(quiet=True, data=mnist1d, replicas=replicas))  # saved while training
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in finished.items())  # the dense runs were not retrained
    compared = 0
    for dense in _dense_runs(tmp_path / "direct"):
        for name in ("step_30it.safetensors", "final.safetensors"):
            assert _same(tmp_path / "replayed" / dense.hash / "level_0" / name, dense.level_dir(0) / name), name
            compared += 1
        replayed, direct = (load_optimizer_state(root / dense.hash / "level_0" / "step_30it_optimizer.pt", torch.device("cpu"))
                            for root in (tmp_path / "replayed", tmp_path / "direct"))
        momenta = [(a["momentum_buffer"], b["momentum_buffer"]) for a, b in zip(replayed["state"].values(),
                                                                                  direct["state"].values())]
        assert len(momenta) == 6 and all(torch.equal(a, b) for a, b in momenta)  # 3 layers' weights and biases
    assert compared == 4


def test_reset_init_at_step_0_is_the_ticket_itself_and_is_not_trained_again(tmp_path, mnist1d):
    config = tiny_config(rewind="0it")
    run_imp(config, 2, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    result = run_branch("reset-init", config, 2, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert result.trained == 0
    ticket = Store(tmp_path).run(config)
    for level in (1, 2):
        assert (Path(result.run_dir) / f"level_{level}" / "final.safetensors").samefile(ticket.level_dir(level) / "final.safetensors")
        summary = result.levels[level]  # (after the parent's level 0)
        assert summary["kind"] == "reset-init" and summary["adopted_from"] == f"{ticket.hash}/level_{level}"
        assert summary["test_accuracy"] == ticket.summary(level)["test_accuracy"]
    late = run_branch("reset-init", tiny_config(rewind="10it"), 1, tmp_path,
                      options=RunOptions(quiet=True, data=mnist1d))
    assert late.trained == 1  # with k > 0 the ticket starts from W_k and reset-init from W_0: a real training


def test_a_study_trains_its_dense_network_once_for_all_rewind_points(tmp_path, mnist1d):
    plan = StudyPlan(levels=1, rewind_points=("0it", "10it", "20it"), stability_level=1, baseline_levels=(1,),
                     baseline_rewinds=("0it",))
    lines = []
    reproduce(tiny_config(), plan, tmp_path, log=lines.append, options=RunOptions(quiet=True, data=mnist1d))
    [dense] = _dense_runs(tmp_path)
    assert sorted(p.name for p in dense.level_dir(0).glob("step_*it.safetensors")) == [
        "step_10it.safetensors", "step_20it.safetensors"]
    finals = list(tmp_path.glob("*/level_0/final.safetensors"))
    assert len(finals) == 1 + 3 and len({p.stat().st_ino for p in finals}) == 1  # 3 chains, one dense network
    assert any("the dense network" in line for line in lines)


def _old_config(**changes) -> ExperimentConfig:
    """The config the old store was written with (tests/data/store_8150b21/*/config.json)."""
    config = ExperimentConfig(data=DataConfig("mnist1d"), model=ModelConfig("mnist1d_mlp", {"hidden": 8}),
                              train=TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=50,
                                                iterations="90it", eval_every="30it"),
                              prune=PruneConfig(fraction=0.2, layer_fractions={"output": 0.1}), rewind="10it", seed=1)
    return config.override(changes) if changes else config


def test_a_store_written_before_the_dense_run_existed_still_reads_and_extends(tmp_path, mnist1d, one_thread):
    """The stored weights were trained on another CPU: they are read and extended, never compared with
    weights trained here. The extension is compared with the same extension of a second copy of the
    stored files, and with what today's pruning and rewinding make of those files."""
    store = tmp_path / "old"
    shutil.copytree(OLD_STORE, store)
    config = _old_config()
    assert config.hash() == "87ee43d92dfc4bbb"  # the old address
    read = run_imp(config, 1, store, options=RunOptions(quiet=True, data=mnist1d))
    assert read.trained == 0  # read, not trained
    stored = [json.loads((OLD_STORE / config.hash() / f"level_{level}" / "summary.json").read_text()) for level in (0, 1)]
    assert [s["test_accuracy"] for s in read.levels] == [s["test_accuracy"] for s in stored]  # read back exactly
    assert run_branch("reinit", config, 1, store, options=RunOptions(quiet=True, data=mnist1d)).trained == 0
    assert not _dense_runs(store)
    extended = run_imp(config, 2, store, options=RunOptions(quiet=True, data=mnist1d))  # a new level on the old chain
    assert extended.trained == 1
    again = tmp_path / "again"
    shutil.copytree(OLD_STORE, again)
    assert run_imp(config, 2, again,
                   options=RunOptions(quiet=True, data=mnist1d)).trained == 1  # the same stored files, extended again
    level_2 = Path(extended.run_dir) / "level_2"
    for name in ("mask.safetensors", "start.safetensors", "final.safetensors"):
        assert _same(level_2 / name, again / config.hash() / "level_2" / name), name
    # level 2 is today's pruning of the stored level-1 weights, rewound to the stored W_10
    old = OLD_STORE / config.hash()
    mask = magnitude_prune(Mask.load(old / "level_1" / "mask.safetensors"), load_tensors(old / "level_1" / "final.safetensors"),
                           layer_fractions(shape_model(config), config.prune), "layerwise", 0.2)
    assert Mask.load(level_2 / "mask.safetensors") == mask
    rewound, start = load_tensors(old / "level_0" / "step_10it.safetensors"), load_tensors(level_2 / "start.safetensors")
    assert rewound.keys() == start.keys()
    assert all(torch.equal(start[k], rewound[k] * mask[k] if k in mask else rewound[k]) for k in start)
    fresh = run_imp(config, 2, tmp_path / "new",
                    options=RunOptions(quiet=True, data=mnist1d))  # today's code from scratch
    assert fresh.trained == 2 and Path(fresh.run_dir).name == config.hash()  # levels 1 and 2 (level 0 is the dense run's)
    [dense] = _dense_runs(tmp_path / "new")
    assert (Path(fresh.run_dir) / "level_0" / "final.safetensors").samefile(dense.level_dir(0) / "final.safetensors")
    assert os.stat(store / config.hash() / "level_0" / "final.safetensors").st_nlink == 1  # old files left alone
