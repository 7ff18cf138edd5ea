"""Is the dense MNIST-1D MLP unstable at initialisation, and how does that change with depth?

For each depth (mnist1d_mlp's `blocks`: residual 500 -> 500 layers) and Adam learning rate, one seed:
the dense network and its data-order copy, both from k = 0, and the test-error barrier on the linear
path between them (lth's own stability measurement at level 0, 11 points). A cheap filter before a
regime-map cell (studies/regime_map.py), which measures the *ticket's* stability and the baselines.

    .venv/bin/python studies/depth_probe.py [--blocks 1,4,8] [--lrs 1.2e-3,5e-3] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

from lth.api import run_imp
from lth.presets import get_preset
from lth.api import measure_stability_many
from lth.stability import StabilitySettings
from lth.options import RunOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", default="1,4,8")
    parser.add_argument("--lrs", default="1.2e-3,5e-3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", default="lth_runs_depth_probe")
    args = parser.parse_args()
    base = get_preset("mnist1d_mlp")
    print(f"{'blocks':>6} {'Adam lr':>8} {'dense %':>8} {'barrier k=0':>12} {'data-order rel. L2':>19}")
    for blocks in map(int, args.blocks.split(",")):
        for lr in map(float, args.lrs.split(",")):
            began = time.time()
            config = base.override({"model.options": {"blocks": blocks}, "train.lr": lr, "rewind": "0it",
                                    "seed": args.seed, "data_seed": None})
            row = measure_stability_many([config], 0, args.store, settings=StabilitySettings(points=11),
                                         options=RunOptions(quiet=True))[0]
            dense = run_imp(config, 0, args.store, options=RunOptions(quiet=True)).levels[0]["test_accuracy"]
            print(f"{blocks:>6} {lr:>8g} {100 * dense:>8.1f} {100 * row['barrier_test']:>11.2f}% "
                  f"{row['data_order_l2_normalized']:>19.2f}   ({time.time() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
