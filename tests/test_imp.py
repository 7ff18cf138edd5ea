import json
import os
import subprocess
import sys

import pytest
import torch

from lth import run_imp
from lth.cli import main
from lth.masks import Mask
from lth.store import load_tensors
from lth.options import RunOptions
from conftest import tiny_config


def _level_files(run_dir, level):
    d = os.path.join(run_dir, f"level_{level}")
    return {name: load_tensors(os.path.join(d, f"{name}.safetensors")) for name in ("start", "final")}, \
        Mask.load(os.path.join(d, "mask.safetensors"))


def test_imp_levels_have_exact_sparsity_rewound_weights_and_zeros(tmp_path, mnist1d):
    config = tiny_config()
    result = run_imp(config, 3, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert [row["level"] for row in result.levels] == [0, 1, 2, 3]
    rewind = load_tensors(os.path.join(result.run_dir, "level_0", "step_10it.safetensors"))
    # hidden layers lose round(20%) per level (1024 -> 819: 204.8 rounds to 205), the output 10%
    expected = {"fc1.weight": [1280, 1024, 819, 655], "fc2.weight": [1024, 819, 655, 524], "fc3.weight": [320, 288, 259, 233]}
    for level in range(4):
        tensors, mask = _level_files(result.run_dir, level)
        assert {n: left for n, (left, _) in mask.per_layer().items()} == {n: c[level] for n, c in expected.items()}
        assert result.levels[level]["weights_remaining"] == pytest.approx(mask.fraction_remaining())
        for name in mask:
            assert (tensors["final"][name][~mask[name]] == 0).all()
        if level > 0:  # rewound: survivors (and every unpruned tensor) equal W_k bit for bit
            for name, value in tensors["start"].items():
                want = value if name not in mask else rewind[name] * mask[name]
                assert torch.equal(value, want if name in mask else rewind[name])
            assert result.levels[level]["start_iteration"] == 10 and result.levels[level]["iterations"] == 50


def test_rewind_to_zero_resets_to_the_initialisation(tmp_path, mnist1d):
    result = run_imp(tiny_config(rewind="0it"), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    init, _ = _level_files(result.run_dir, 0)
    level1, mask = _level_files(result.run_dir, 1)
    for name, value in init["start"].items():
        assert torch.equal(level1["start"][name], value * mask[name] if name in mask else value)
    assert result.levels[1]["iterations"] == 60


def test_same_config_gives_identical_weights_and_a_second_run_trains_nothing(tmp_path, mnist1d):
    config = tiny_config()
    first = run_imp(config, 2, tmp_path / "a", options=RunOptions(quiet=True, data=mnist1d))
    second = run_imp(config, 2, tmp_path / "b", options=RunOptions(quiet=True, data=mnist1d))
    for level in range(3):
        a, _ = _level_files(first.run_dir, level)
        b, _ = _level_files(second.run_dir, level)
        assert all(torch.equal(a["final"][k], b["final"][k]) for k in a["final"])
    final = os.path.join(first.run_dir, "level_2", "final.safetensors")
    stamp = os.stat(final).st_mtime_ns
    again = run_imp(config, 2, tmp_path / "a", options=RunOptions(quiet=True, data=mnist1d))
    assert again.trained == 0 and again.levels == first.levels and os.stat(final).st_mtime_ns == stamp
    more = run_imp(config, 3, tmp_path / "a", options=RunOptions(quiet=True, data=mnist1d))
    assert more.trained == 1 and more.levels[:3] == first.levels


def test_cli_json_output_and_store_layout(tmp_path, capsys):
    args = ["imp", "--store", str(tmp_path), "--levels", "1", "--json", "--set", "model.options={\"hidden\": 16}",
            "--iterations", "40it", "--set", "train.eval_every=20it", "--rewind", "0it"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["level"] for row in out["levels"]] == [0, 1]
    assert 0.0 <= out["levels"][1]["test_accuracy"] <= 1.0
    assert out["levels"][1]["weights_remaining"] < 1.0
    run_dir = out["run_dir"]
    assert json.load(open(os.path.join(run_dir, "config.json")))["model"]["options"] == {"hidden": 16}
    for level in (0, 1):
        names = set(os.listdir(os.path.join(run_dir, f"level_{level}")))
        assert {"mask.safetensors", "start.safetensors", "final.safetensors", "metrics.jsonl", "summary.json"} <= names


@pytest.mark.parametrize("args,message", [
    (["imp", "--preset", "no_such_preset"], "unknown preset"),
    (["imp", "--rewind", "500"], "bad step"),
    (["imp", "--prune-fraction", "1.5"], "(0, 1)"),
    (["imp", "--prune-fraction", "0"], "(0, 1)"),
    (["imp", "--levels", "-1"], "--levels"),
    (["imp", "--rewind", "1500it"], "not before the end of training"),
    (["imp", "--set", "train.bogus=1"], "unknown config key"),
    (["imp", "--preset", "lenet300_mnist"], "pass --data-root DIR containing train-images-idx3-ubyte"),
    (["branch", "reinit", "--preset", "conv2_cifar10", "--data-root", "/nonexistent"], "cifar-10-batches-py"),
])
def test_cli_errors_exit_2_with_one_line(args, message, tmp_path, capsys):
    assert main([*args, "--store", str(tmp_path)]) == 2  # (bounds are config validation's: config.option)
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir()) or message == "not before the end of training"


def test_console_script_exits_2_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lth", "imp", "--preset", "nope", "--store", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "unknown preset" in done.stderr


@pytest.mark.parametrize("args,message", [
    (["stability", "--level", "99"], "level 41 would prune no weight of layer 'fc1.weight' (2 left: 0.2 of them "
                                     "rounds to none) while the other layers shrink; ask for at most 40 levels"),
    # the command: fc1 stops at 2 weights (20% of 2 rounds to 0) while fc2 and fc3 go on shrinking
    (["imp", "--rewind", "0it", "--levels", "60", "--iterations", "10it"], "level 41 would prune no weight of layer "
                                                                            "'fc1.weight'"),
    (["imp", "--levels", "99", "--set", "prune.ignore=[\"fc1.weight\", \"fc2.weight\"]"], "level 66 would prune no weight: the prune "
     "fractions of the few weights left round to zero in every layer; ask for at most 65 levels"),
    (["imp", "--levels", "9", "--prune-fraction", "0.9"], "level 5 would leave layer 'fc1.weight' with no weights; "
                                                          "ask for at most 4 levels"),
    (["imp", "--levels", "9", "--prune-fraction", "0.9", "--executor", "local"], "level 5 would leave layer 'fc1.weight'"),
])
def test_levels_that_cannot_be_reached_stop_before_any_training(tmp_path, capsys, args, message):
    # mnist1d_mlp, layer-wise: 20000 -> ... -> 2 weights in fc1 (20% of 2 rounds to 0), 5000 -> 4 in fc3
    assert main([*args, "--store", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lth: error: ") and message in err and "\n" not in err
    assert not list(tmp_path.glob("*/level_0"))  # nothing trained


def test_a_global_level_that_would_empty_a_layer_stops_naming_it(tmp_path, mnist1d):
    from lth.errors import ConfigError
    from lth.store import save_tensors

    config = tiny_config(**{"prune.strategy": "global", "prune.layer_fractions": {}, "prune.fraction": 0.5})
    dense = run_imp(config, 0, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    final = os.path.join(dense.run_dir, "level_0", "final.safetensors")
    weights = load_tensors(final)
    weights["fc3.weight"] = torch.full_like(weights["fc3.weight"], 1e-9)  # the smallest 320 of 2624: all go
    save_tensors(final, weights)
    with pytest.raises(ConfigError, match=r"^level 1 would leave layer 'fc3.weight' with no weights; ask for at most 0"):
        run_imp(config, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert not os.path.exists(os.path.join(dense.run_dir, "level_1", "start.safetensors"))
