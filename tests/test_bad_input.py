"""Bad input, one class per table (issue 32): each case exits 2 with one line on stderr, no traceback,
and leaves the store as it was (every file, byte for byte). Tiny runs: 20 iterations of a 16-unit MLP."""
from __future__ import annotations

import hashlib
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from lth.cli import build_parser, config_from_args, main
from lth.errors import ConfigError, DataError

TINY = ["--iterations", "20it", "--rewind", "0it", "--set", "train.eval_every=10it", "--set", 'model.options={"hidden":16}',
        "--quiet"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` and the sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store holding one tiny IMP run (levels 0 and 1), which no refused command may change."""
    root = tmp_path_factory.mktemp("bad") / "store"
    assert main(["imp", "--levels", "1", *TINY, "--store", str(root)]) == 0
    return root


def refused(args: list[str], message: str, store: Path, capsys) -> str:
    before = snapshot(store)
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err
    assert snapshot(store) == before  # nothing written, nothing changed
    return err


# ---------------------------------------------------------------- settings that were silently dropped

@pytest.mark.parametrize("args, message", [
    (["imp", "--target-weights", "0.5", "--levels", "3"], "not both"),
    (["imp", "--preset", ""], "--preset is empty"),
    (["imp", "--config", ""], "--config is empty"),
    (["imp", "--data-root", ""], "--data-root is empty"),
    (["imp", "--data-root", "/tmp"], "dataset 'mnist1d' comes from its package, not from --data-root /tmp"),
    (["imp", "--set", ""], "--set is empty"),
    (["imp", "--gpus-per-job", "2"], "--gpus-per-job only apply to --executor local or slurm"),
    (["imp", "--workers", "4", "--timeout-min", "5"], "--workers, --timeout-min only apply"),
    (["imp", "--set", "train=[1]"], "takes a JSON object of train's keys"),
    (["imp", "--set", 'train={"bogus": 1}'], "unknown config key 'train.bogus'"),
])
def test_settings_are_applied_or_refused_never_dropped(args, message, store, capsys):
    refused([*args, *TINY, "--store", str(store)], message, store, capsys)


def test_an_empty_store_flag_is_refused_before_writing_to_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    refused(["train", "--store", "", *TINY], "--store is empty", tmp_path, capsys)


def test_a_section_given_whole_sets_its_keys_and_keeps_the_presets_others():
    args = build_parser().parse_args(["imp", "--preset", "lenet300_mnist", "--set", 'train={"lr": 0.01}',
                                      "--set", 'prune={"fraction": 0.5}'])
    config = config_from_args(args)
    assert config.train.lr == 0.01 and config.train.iterations == "50000it" and config.train.batch_size == 60
    assert config.prune.fraction == 0.5 and config.prune.layer_fractions == {"output": 0.1}


def test_a_partial_config_file_is_refused_naming_what_it_lacks(store, tmp_path, capsys):
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"train": {"lr": 0.01}}))
    err = refused(["imp", "--config", str(partial), "--store", str(store)], "lacks data.dataset", store, capsys)
    assert "lth presets NAME" in err
    whole = tmp_path / "whole.json"  # a run's own config.json (without the fields added since) is whole
    run_config = next(p for p in store.glob("*/config.json") if json.loads(p.read_text())["kind"] == "imp")
    whole.write_text(run_config.read_text())
    assert main(["imp", "--config", str(whole), "--levels", "1", "--store", str(store), "--quiet"]) == 0


# ---------------------------------------------------------------- values that gave tracebacks or misled

NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("args, message", [
    (["imp", "--seed", str(2 ** 63)], "seed must be in [0, 9.22337e+18)"),
    (["imp", "--seeds", f"0,{2 ** 64}"], "seed must be in"),
    (["imp", "--optimizer", "sgd", "--set", "train.nesterov=true"], "Nesterov momentum needs --optimizer sgd"),
    (["imp", "--lr", "inf"], "learning rate must be a finite number, got inf"),
    (["imp", "--set", "train.momentum=nan"], "momentum must be a finite number"),
    (["imp", "--set", "preset=../../outside"], "must be a plain name"),
    (["imp", "--set", 'model.options={"num_classes": 3}'], "outputs shape (2, 3) for a batch of 2, expected (2, 10)"),
    (["imp", "--set", 'model.options={"hidden": -5}'], "cannot be built"),
    (["imp", "--set", 'model.options={"depth": 2}'], "bad options for model 'mnist1d_mlp'"),
    (["stability", "--rewind-points", ","], "--rewind-points needs at least one step"),
    (["stability", "--threshold", "nan"], "--threshold is a barrier"),
    (["stability", "--level", "-1"], "--level must be 0 or more"),
    (["imp", "--executor", "local", "--timeout-min", "-5"], "--timeout-min must be at least 1"),
    (["imp", "--executor", "local", "--workers", "0"], "--workers must be at least 1"),
])
def test_bad_values_exit_2_with_one_line(args, message, store, capsys):
    refused([*args[:1], *TINY, *args[1:], "--store", str(store)], message, store, capsys)


@pytest.mark.parametrize("command", [["train"], ["imp", "--levels", "1"]])
def test_a_rewind_step_past_the_end_says_which_flag_to_change(tmp_path, capsys, command):
    assert main([*command, *TINY, "--rewind", "50it", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass an earlier --rewind (e.g. --rewind 0it)" in err, err
    assert [p.name for p in tmp_path.iterdir()] in ([], ["_cache"]), err  # no run created (the data cache at most)


def test_argparse_values_are_named_by_their_meaning(store, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["report", str(store), "--margin", "abc"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "the margin is a number of points" in err and "_margin" not in err


def test_a_deeply_nested_config_file_is_one_line(store, tmp_path, capsys):
    nested = tmp_path / "nested.json"
    nested.write_text(NESTED)
    refused(["imp", "--config", str(nested), "--store", str(store)], "cannot read config file", store, capsys)


# ---------------------------------------------------------------- a user's model factory

FACTORIES = '''
import torch
from torch import nn


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(40, 10)

    def forward(self, x):
        return self.fc(x), x


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(40, 10)

    def forward(self, x):
        return self.fc(x).double()


def raises():
    raise RuntimeError("no GPU here")


def pair():
    return Pair()


def rank3():
    return nn.Sequential(nn.Linear(40, 10), nn.Unflatten(1, (2, 5)))


def three_classes():
    return nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 3))


def float64():
    return Wide()


def frozen():
    model = nn.Sequential(nn.Linear(40, 10))
    model.requires_grad_(False)
    return model


def tied():
    model = nn.Sequential(nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 10))
    model[2].weight = model[0].weight
    return model


def image_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))


def lazy():
    return nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.LazyLinear(10))
'''


@pytest.mark.parametrize("factory, message", [
    ("factories:raises", "cannot be built with options {}: RuntimeError: no GPU here"),
    ("broken_factories:anything", "cannot import model factory 'broken_factories:anything': SyntaxError"),
    ("factories:missing", "cannot import model factory 'factories:missing': AttributeError"),
    ("factories:pair", "returns a tuple, not a tensor of logits"),
    ("factories:rank3", "outputs shape (2, 2, 5) for a batch of 2, expected (2, 10)"),
    ("factories:three_classes", "outputs shape (2, 3)"),
    ("factories:float64", "outputs torch.float64 logits"),
    ("factories:frozen", "has no trainable parameter"),
    ("factories:tied", "ties weights (2.weight share a parameter"),
    ("factories:image_model", "does not fit mnist1d inputs of shape (40,) and 10 classes"),
    ("factories:lazy", "has lazy layers (2.weight, 2.bias)"),
])
def test_a_model_that_cannot_train_on_the_data_is_named_in_one_line(factory, message, store, tmp_path, monkeypatch,
                                                                     capsys):
    (tmp_path / "factories.py").write_text(FACTORIES)
    (tmp_path / "broken_factories.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    refused(["imp", *TINY, "--set", "model.options={}", "--model", factory, "--store", str(store)], message, store,
            capsys)


# ---------------------------------------------------------------- data files

def write_mnist(directory: Path, seed: int, train: int = 120, test: int = 20) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count).astype(np.uint8)
        (directory / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">4i", 2051, count, 28, 28) + images.tobytes())
        (directory / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">2i", 2049, count) + labels.tobytes())


def write_cifar10(directory: Path, test: dict | None = None) -> None:
    directory = directory / "cifar-10-batches-py"
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}
        if name == "test_batch" and test is not None:
            batch.update(test)
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize("damage, message", [
    ("empty mnist test", "has an empty test split"),
    ("mnist size overflow", "needs"),
    ("empty cifar test", "has an empty test split"),
    ("float cifar labels", "must hold 10 integer labels"),
    ("float32 cifar data", "got a float32 array of shape (10, 3072)"),
    ("mnist1d train_split 2", "train_split is the fraction of examples trained on, in (0, 1); got 2"),
    ("mnist1d train_split -0.5", "got -0.5"),
])
def test_bad_data_is_refused_in_one_line(damage, message, tmp_path):
    from lth.data import load_dataset

    root = tmp_path / "data"
    if damage == "empty mnist test":
        write_mnist(root, 0, test=0)
        dataset, options = "mnist", None
    elif damage == "mnist size overflow":
        write_mnist(root, 0)
        path = root / "train-images-idx3-ubyte"
        path.write_bytes(struct.pack(">4i", 2051, 2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1) + path.read_bytes()[16:])
        dataset, options = "mnist", None
    elif damage == "empty cifar test":
        write_cifar10(root, {b"data": np.zeros((0, 3072), np.uint8), b"labels": []})
        dataset, options = "cifar10", None
    elif damage == "float cifar labels":
        write_cifar10(root, {b"labels": [k + 0.7 for k in range(10)]})
        dataset, options = "cifar10", None
    elif damage == "float32 cifar data":
        write_cifar10(root, {b"data": np.zeros((10, 3072), np.float32)})
        dataset, options = "cifar10", None
    else:
        dataset, options = "mnist1d", {"train_split": float(damage.split()[-1])}
    with pytest.raises((DataError, ConfigError), match=None) as error:
        load_dataset(dataset, None if dataset == "mnist1d" else root, tmp_path / "cache", options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_model_for_other_data_names_both_shapes(tmp_path, capsys):
    write_mnist(tmp_path / "mnist", 0)
    store = tmp_path / "store"
    err = refused(["imp", "--preset", "mnist1d_mlp", "--dataset", "mnist", "--data-root", str(tmp_path / "mnist"), *TINY,
                   "--store", str(store)], "model mnist1d_mlp does not fit mnist inputs of shape (1, 28, 28) and 10 "
                   "classes", store, capsys)
    assert not store.exists() or not any(store.glob("*/config.json")), err


# ---------------------------------------------------------------- where output goes

def test_outputs_inside_the_store_or_unwritable_are_refused(store, tmp_path, capsys):
    run = next(p.parent for p in store.glob("*/config.json") if (p.parent / "level_1").exists())
    refused(["export", str(run), "--level", "1", "--out", str(run / "level_1" / "final.safetensors")],
            "lies inside the store", store, capsys)
    refused(["export", run.name, "--level", "1", "--store", str(store), "--out", str(store / "_cache" / "t.pt"),
             "--format", "torch-prune"], "lies inside the store", store, capsys)
    refused(["export", run.name, "--level", "1", "--store", str(store), "--out", str(store / "_replicas.json")],
            "lies inside the store", store, capsys)
    refused(["report", str(store), "--out", str(run / "level_1")], "lies inside the run directory", store, capsys)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    refused(["report", str(store), "--out", str(a_file)], f"--out {a_file} is a file", store, capsys)
    refused(["report", str(store), "--out", "/proc/lth_report"], "cannot write to --out /proc/lth_report", store, capsys)
    refused(["report", str(a_file)], f"no store at {a_file}", store, capsys)
    refused(["ls", "--store", str(tmp_path / "nowhere")], "no store at", store, capsys)
    assert not (tmp_path / "nowhere").exists()
