"""Random streams: one independent stream per purpose for new runs (train.streams = 2), while runs
stored before the field existed (train.streams = 1) keep their addresses and compute their bits."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from lth.api import run_branch
from lth.branches import branch_config
from lth.config import DataConfig, ExperimentConfig, ModelConfig, PruneConfig, TrainConfig
from lth.data.loader import DeviceLoader
from lth.data.cifar import random_crop_flip
from lth.api import run_imp
from lth.levels import shape_model
from lth.masks import Mask, layer_fractions, magnitude_prune, random_prune
from lth.models import build_model
from lth.seeds import augment_seed, copy_data_seed, order_seed, random_prune_seed, reinit_seed, stream_seed
from lth.store import Store, load_tensors
from lth.options import RunOptions
from conftest import tiny_config

LEGACY_STORE = Path(__file__).parent / "data" / "legacy_store"  # written by lth before train.streams existed
LEGACY_RUNS = {"2bb58aeb9aa8bd75": "imp", "3ca7005129e7ad6e": "reinit", "a0cee6bab937156c": "random-prune",
               "8dc5f6f968056775": "data-order"}


def _legacy_config(streams=None) -> ExperimentConfig:
    """The config the legacy store was written with (tests/data/legacy_store/*/config.json)."""
    train = dict(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=50, iterations="90it", eval_every="30it")
    if streams is not None:
        train["streams"] = streams
    return ExperimentConfig(data=DataConfig("mnist1d"), model=ModelConfig("mnist1d_mlp", {"hidden": 8}),
                            train=TrainConfig(**train), prune=PruneConfig(fraction=0.2, layer_fractions={"output": 0.1}),
                            rewind="10it", seed=1)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the legacy store was written with one thread
    yield
    torch.set_num_threads(before)


def test_a_store_written_before_streams_keeps_its_addresses_and_bits(tmp_path, mnist1d, one_thread):
    """The stored weights were trained on another CPU, whose sums round differently: only what does not
    depend on the CPU is compared with them -- addresses, reading without training, stored values read
    back exactly, and the masks today's code derives from the stored weights and seeds (a sort and a
    seeded permutation: the same bits on any machine)."""
    store = tmp_path / "old"
    shutil.copytree(LEGACY_STORE, store)
    runs = {run.hash: run for run in Store(store).runs()}
    assert {h: r.config.kind for h, r in runs.items()} == LEGACY_RUNS  # read back under the names they had
    assert all(r.config.train.streams == 1 and r.dir.name == r.hash for r in runs.values())
    assert all("streams" not in json.loads((r.dir / "config.json").read_text())["train"] for r in runs.values())
    config = _legacy_config(streams=1)  # what `--set train.streams=1` gives: the old run's address
    assert config.hash() == "2bb58aeb9aa8bd75" and _legacy_config().hash() != config.hash()
    assert branch_config(config, "data-order").data_seed == 1 + 10_007
    # commands find everything there: nothing is trained, and the stored numbers come back exactly
    results = {"imp": run_imp(config, 2, store, options=RunOptions(quiet=True, data=mnist1d))}
    for kind in ("reinit", "random-prune"):
        results[kind] = run_branch(kind, config, 2, store, options=RunOptions(quiet=True, data=mnist1d))
    results["data-order"] = run_branch("data-order", config, 2, store, only=[2],
                                       options=RunOptions(quiet=True, data=mnist1d))
    assert all(result.trained == 0 for result in results.values())
    compared = 0
    for result in results.values():
        for summary in result.levels:  # (a branch's level 0 is its parent's)
            path = LEGACY_STORE / Path(result.run_dir).name / f"level_{summary['level']}" / "summary.json"
            if path.exists():
                stored = json.loads(path.read_text())
                assert summary["test_accuracy"] == stored["test_accuracy"] and summary["seed"] == stored["seed"]
                compared += 1
    assert compared == 3 + 2 + 2 + 1
    # today's pruning of the stored weights gives the stored masks; the baselines' masks follow from them
    imp = LEGACY_STORE / "2bb58aeb9aa8bd75"
    fractions = layer_fractions(shape_model(config), config.prune)
    masks = {0: Mask.load(imp / "level_0" / "mask.safetensors")}
    for level in (1, 2):
        masks[level] = magnitude_prune(masks[level - 1], load_tensors(imp / f"level_{level - 1}" / "final.safetensors"),
                                       fractions, config.prune.strategy, config.prune.fraction)
        assert masks[level] == Mask.load(imp / f"level_{level}" / "mask.safetensors")
        assert masks[level] == Mask.load(LEGACY_STORE / "3ca7005129e7ad6e" / f"level_{level}" / "mask.safetensors")
        generator = torch.Generator().manual_seed(random_prune_seed(1, level, streams=1))
        assert random_prune(masks[level], generator) == Mask.load(LEGACY_STORE / "a0cee6bab937156c" /
                                                                  f"level_{level}" / "mask.safetensors")
    assert masks[2] == Mask.load(LEGACY_STORE / "8dc5f6f968056775" / "level_2" / "mask.safetensors")


def test_new_runs_draw_each_purpose_from_its_own_stream():
    # the legacy scheme's collisions, kept for old runs only
    assert reinit_seed(0, streams=1) == 1000  # seed 0's reinitialisation was seed 1000's network
    assert copy_data_seed(0, streams=1) == 10_007  # and its data-order copy, data seed 10007's order
    assert order_seed(3, 5, streams=1) == augment_seed(3, 5, streams=1) == random_prune_seed(3, 5, streams=1)
    # the new scheme: a hash of (purpose, keys), pinned so that new runs keep their bits too
    assert stream_seed("order", 0, 0) == 2744815721171672521
    assert reinit_seed(0, streams=2) == stream_seed("reinit", 0) == 57093088230789380
    assert copy_data_seed(0, streams=2) == 7564171441880649302
    seeds = {order_seed(3, 5, 2), augment_seed(3, 5, 2), random_prune_seed(3, 5, 2), order_seed(3, 6, 2),
             order_seed(4, 5, 2), reinit_seed(3, 2), copy_data_seed(3, 2)}
    assert len(seeds) == 7 and min(seeds) > 2**32  # distinct, and far from any seed a person types
    a, b = build_model("mnist1d_mlp", {"hidden": 8}, reinit_seed(0, 2)), build_model("mnist1d_mlp", {"hidden": 8}, 1000)
    assert not torch.equal(a.fc1.weight, b.fc1.weight)


def test_new_configs_use_the_new_streams_and_old_ones_keep_theirs(mnist1d):
    assert tiny_config().train.streams == 2 and '"streams":2' in tiny_config().canonical_json()
    raw = tiny_config().to_dict()
    del raw["train"]["streams"]  # a config.json from before the field
    assert ExperimentConfig.from_dict(raw).train.streams == 1
    with pytest.raises(Exception, match="unknown train.streams value 3: use 1, 2"):
        tiny_config(**{"train.streams": 3})
    new = DeviceLoader(mnist1d.x_train, mnist1d.y_train, 50, 0, torch.device("cpu"), streams=2)
    old = DeviceLoader(mnist1d.x_train, mnist1d.y_train, 50, 0, torch.device("cpu"), streams=1)
    legacy_order = torch.randperm(4000, generator=torch.Generator().manual_seed(0 * 1_000_003 + 1))  # epoch 1
    assert torch.equal(old.order(1), legacy_order) and not torch.equal(new.order(1), legacy_order)


def test_augmentation_keeps_the_legacy_seed_for_old_runs_and_its_own_stream_for_new_ones():
    x, y = torch.rand(64, 3, 8, 8), torch.arange(64) % 10
    cpu = torch.device("cpu")
    old = DeviceLoader(x, y, 16, 3, cpu, random_crop_flip, streams=1).batch(5)[0]
    index = DeviceLoader(x, y, 16, 3, cpu, streams=1).indices(5)
    by_hand = random_crop_flip(x[index], torch.Generator().manual_seed(3 * 1_000_003 + 5))
    assert torch.equal(old, by_hand)
    new = DeviceLoader(x, y, 16, 3, cpu, random_crop_flip, streams=2)
    expected = random_crop_flip(x[new.indices(5)], torch.Generator().manual_seed(augment_seed(3, 5, 2)))
    assert torch.equal(new.batch(5)[0], expected)
