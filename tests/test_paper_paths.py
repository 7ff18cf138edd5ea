"""Behaviour the papers' experiments rely on, each checked against an independent computation or
literal numbers: batch-norm state rewound with the weights, batch-norm recomputation, rewinding
the optimizer, --target-weights, --find-rewind, the barrier, a level >= 1 continuing the dense
run's batch order, and data-parallel training of a batch-norm model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lth import run_imp
from lth.cli import main
from lth.config import ExperimentConfig
from lth.levels import load_optimizer_state
from lth.masks import Mask
from lth.models import build_model
from lth.connectivity import barrier, recompute_batch_norm
from lth.stability import find_rewind
from lth.store import load_tensors
from lth.train import Schedule, make_optimizer, train
from lth.options import RunOptions
from conftest import tiny_config

BN_NET = {"model.name": "mnist1d_resnet", "model.options": {"widths": [4, 8], "blocks_per_stage": 1},
          "prune.strategy": "global", "prune.layer_fractions": {}, "prune.ignore": ["output"]}
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def test_a_level_starts_from_the_batch_norm_statistics_of_the_rewind_step(tmp_path, mnist1d):
    config = tiny_config(**BN_NET, **{"train.iterations": "30it", "train.eval_every": "10it"})  # rewind 10it
    result = run_imp(config, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    level0, level1 = Path(result.run_dir) / "level_0", Path(result.run_dir) / "level_1"
    at_k, start = load_tensors(level0 / "step_10it.safetensors"), load_tensors(level1 / "start.safetensors")
    init, dense = load_tensors(level0 / "start.safetensors"), load_tensors(level0 / "final.safetensors")
    buffers = [name for name in start if name.endswith(BUFFERS)]
    assert len(buffers) == 3 * 6  # stem, two in each of the 2 blocks, the second block's projection shortcut
    for name in buffers:
        assert torch.equal(start[name], at_k[name])
    assert int(at_k["bn.num_batches_tracked"]) == 10 and not torch.equal(at_k["bn.running_mean"], init["bn.running_mean"])
    assert not torch.equal(at_k["bn.running_mean"], dense["bn.running_mean"])
    final = load_tensors(level1 / "final.safetensors")
    assert int(final["bn.num_batches_tracked"]) == 30  # 10 rewound + 20 trained


def test_batch_norm_recomputation_matches_torch_update_bn_and_a_hand_computation(mnist1d):
    model = build_model("mnist1d_resnet", {"widths": [4, 8], "blocks_per_stage": 1}, 0)
    train(model, mnist1d, tiny_config(**BN_NET).train, stop=5, quiet=True)  # running stats away from their init
    batches = [(mnist1d.x_train[i:i + 100], mnist1d.y_train[i:i + 100]) for i in range(0, 500, 100)]
    ours, theirs = build_model("mnist1d_resnet", {"widths": [4, 8], "blocks_per_stage": 1}, 0), \
        build_model("mnist1d_resnet", {"widths": [4, 8], "blocks_per_stage": 1}, 0)
    ours.load_state_dict(model.state_dict())
    theirs.load_state_dict(model.state_dict())
    recompute_batch_norm(ours, batches)
    torch.optim.swa_utils.update_bn(batches, theirs)
    for name, value in theirs.state_dict().items():
        if name.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(ours.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the stem's BN by hand: mean of the 5 batch means and of the 5 unbiased variances
        stems = [model.conv(x.unsqueeze(1)) for x, _ in batches]
        mean = torch.stack([s.mean((0, 2)) for s in stems]).mean(0)
        var = torch.stack([s.var((0, 2), unbiased=True) for s in stems]).mean(0)
    torch.testing.assert_close(ours.bn.running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.bn.running_var, var, rtol=1e-5, atol=1e-6)
    assert ours.training and ours.bn.momentum == 0.1  # left as it was


def test_rewinding_the_optimizer_restores_its_state_at_the_rewind_step(tmp_path, mnist1d):
    config = tiny_config(rewind_optimizer="rewind")  # SGD with momentum 0.9, rewind 10it
    rewound = run_imp(config, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    reset = run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    assert (rewound.levels[1]["rewind_optimizer"], reset.levels[1]["rewind_optimizer"]) == ("rewind", "reset")
    level0, level1 = Path(rewound.run_dir) / "level_0", Path(rewound.run_dir) / "level_1"
    momentum = load_optimizer_state(level0 / "step_10it_optimizer.pt", torch.device("cpu"))
    assert all(s["momentum_buffer"].abs().sum() > 0 for s in momentum["state"].values())  # 10 steps of momentum
    # by hand: the level-1 start weights, the step-10 optimizer state, iterations 10..60
    model = build_model(config.model.name, config.model.options, 0)
    model.load_state_dict(load_tensors(level1 / "start.safetensors"))
    train(model, mnist1d, config.train, mask=Mask.load(level1 / "mask.safetensors"), start=10,
          optimizer_state=momentum, data_seed=0, quiet=True)
    final = load_tensors(level1 / "final.safetensors")
    assert all(torch.equal(final[k], v) for k, v in model.state_dict().items())
    other = load_tensors(Path(reset.run_dir) / "level_1" / "final.safetensors")
    assert not torch.equal(final["fc1.weight"], other["fc1.weight"])


def test_target_weights_picks_the_fewest_levels_that_reach_it(tmp_path, capsys):
    # mnist1d_mlp: fc1 20,000, fc2 250,000, fc3 5,000 weights; 20% / 20% / 10% per level:
    # 275,000 -> 220,500 -> 176,850 -> 141,885 (51.6%) -> 113,872 (41.4%)
    assert main(["imp", "--target-weights", "0.5", "--iterations", "20it", "--rewind", "0it", "--set",
                 "train.eval_every=20it", "--store", str(tmp_path), "--json", "--quiet"]) == 0
    levels = json.loads(capsys.readouterr().out)["levels"]
    assert [row["level"] for row in levels] == [0, 1, 2, 3, 4]
    assert [row["weights_remaining_count"] for row in levels] == [275000, 220500, 176850, 141885, 113872]


def test_find_rewind_is_the_earliest_point_strictly_below_the_threshold():
    rows = [{"rewind": "200it", "rewind_iteration": 200, "barrier_test": 0.01},
            {"rewind": "0it", "rewind_iteration": 0, "barrier_test": 0.11},
            {"rewind": "50it", "rewind_iteration": 50, "barrier_test": 0.015}]
    assert find_rewind(rows, 0.02)["rewind"] == "50it"
    assert find_rewind(rows, 0.015)["rewind"] == "200it"  # 0.015 is not below 0.015
    assert find_rewind(rows, 0.2)["rewind"] == "0it"
    assert find_rewind(rows, 0.005) is None


def test_find_rewind_on_the_command_line(tmp_path, capsys):
    args = ["stability", "--level", "1", "--rewind-points", "20it,0it", "--iterations", "40it", "--interpolation-points",
            "3", "--set", "model.options={\"hidden\": 16}", "--set", "train.eval_every=20it", "--store", str(tmp_path),
            "--find-rewind", "--quiet", "--json"]
    assert main([*args, "--threshold", "0.9"]) == 0  # every barrier is below 90%: the earliest point
    out = json.loads(capsys.readouterr().out)
    assert out["find_rewind"] == "0it" and [r["rewind"] for r in out["rows"]] == ["20it", "0it"]
    assert main([*args, "--threshold", "0.0"]) == 0  # no barrier is below 0
    assert json.loads(capsys.readouterr().out)["find_rewind"] is None


def test_the_barrier_is_the_peak_error_above_the_mean_of_the_end_errors():
    assert barrier([0.1, 0.5, 0.3]) == pytest.approx(0.3)  # 0.5 - (0.1 + 0.3) / 2
    assert barrier([0.4, 0.1, 0.2]) == pytest.approx(0.1)  # the peak is an end point
    assert barrier([0.2, 0.2, 0.1, 0.2]) == pytest.approx(0.0)


def test_a_rewound_level_continues_the_dense_runs_batch_order_from_step_k(tmp_path, mnist1d, monkeypatch):
    from lth.data.loader import DeviceLoader

    seen = []
    real_batch = DeviceLoader.batch

    def spy(self, iteration):
        seen.append((self.seed, iteration, tuple(self.indices(iteration).tolist())))
        return real_batch(self, iteration)

    monkeypatch.setattr(DeviceLoader, "batch", spy)
    run_imp(tiny_config(data_seed=5), 1, tmp_path,
            options=RunOptions(quiet=True, data=mnist1d))  # 60 iterations, rewind 10it
    dense, level1 = seen[:60], seen[60:]
    assert [i for _, i, _ in dense] == list(range(60)) and [i for _, i, _ in level1] == list(range(10, 60))
    assert level1 == dense[10:] and {s for s, _, _ in seen} == {5}
    assert level1[0][2] != dense[0][2]  # not the order restarted at iteration 0


@pytest.mark.slow
def test_two_process_training_of_a_batch_norm_model_uses_per_process_statistics(tmp_path, mnist1d):
    """torchrun, 2 processes: each normalises over its half of the batch, DDP averages the gradients,
    and rank 0's running statistics (broadcast to the other rank before every step) are stored.
    Checked against the same computation done by hand in one process."""
    args = ["imp", "--preset", "mnist1d_resnet", "--levels", "0", "--iterations", "20it", "--set",
            "model.options={\"widths\": [4, 8], \"blocks_per_stage\": 1}", "--set", "train.eval_every=20it",
            "--quiet", "--json", "--store", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29519", "-m", "lth"]
    done = subprocess.run([*torchrun, *args], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    stored = load_tensors(run_dir / "level_0" / "final.safetensors")
    config = ExperimentConfig.from_dict(json.loads((run_dir / "config.json").read_text()))

    def by_hand(processes: int) -> dict[str, torch.Tensor]:
        model = build_model(config.model.name, config.model.options, config.seed)
        optimizer = make_optimizer(model, config.train)
        loader = mnist1d.train_loader(config.train.batch_size, config.order_seed, torch.device("cpu"),
                                      streams=config.train.streams)
        schedule = Schedule.from_config(config.train, loader.iterations_per_epoch)
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for iteration in range(20):
            x, y = loader.batch(iteration)
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr_at(iteration)
            optimizer.zero_grad()
            for rank, (xs, ys) in enumerate(zip(x.chunk(processes), y.chunk(processes))):
                kept = [[getattr(m, b).clone() for b in BUFFERS] for m in norms]
                (F.cross_entropy(model(xs), ys) / processes).backward()  # DDP: the mean of the ranks' gradients
                if rank > 0:  # the other ranks' running statistics are overwritten by rank 0's
                    for m, values in zip(norms, kept):
                        for b, value in zip(BUFFERS, values):
                            getattr(m, b).copy_(value)
            optimizer.step()
        return model.state_dict()

    two, one = by_hand(2), by_hand(1)
    for name, value in two.items():
        torch.testing.assert_close(stored[name], value, rtol=1e-4, atol=1e-5)
    assert (stored["bn.running_mean"] - one["bn.running_mean"]).abs().max() > 1e-3  # not full-batch statistics
