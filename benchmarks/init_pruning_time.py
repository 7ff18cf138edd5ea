"""Time each pruning-at-init method (lth.init_pruning) takes to produce its mask, against one
training of the same network with lth's `train()` (the preset's full schedule, quiet, mask on).

The preset's model at seed 0, its embedded data; SNIP scores one training batch of the preset's
batch size, GraSP a class-balanced batch of `--per-class` examples per class (its reference
implementation's sampler), SynFlow only the input shape (100 rounds, float64). Medians of
`--repeats` interleaved runs; the machine may be shared, so read the ratios, not the seconds.

    .venv/bin/python benchmarks/init_pruning_time.py [--preset mnist1d_mlp] [--fraction 0.05] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from lth.data import load_dataset
from lth.init_pruning import METHODS, class_balanced_batch, prune_at_init
from lth.masks import Mask
from lth.models import build_model
from lth.presets import get_preset
from lth.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist1d_mlp")
    parser.add_argument("--fraction", type=float, default=0.05, help="fraction of weights remaining")
    parser.add_argument("--per-class", type=int, default=10, help="GraSP's examples per class")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    config = get_preset(args.preset)
    data = load_dataset(config.data.dataset)
    device = torch.device(args.device)
    model = build_model(config.model.name, config.model.options, 0).to(device)
    batches = {"snip": (data.x_train[:config.train.batch_size], data.y_train[:config.train.batch_size])}
    batches["grasp"] = batches["grasp_abs"] = class_balanced_batch(data.x_train, data.y_train, args.per_class)
    batches["synflow"] = batches["snip"]  # only its shape is used

    def mask_time(method: str) -> float:
        began = time.perf_counter()
        prune_at_init(method, model, args.fraction, batches.get(method))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - began

    def train_time() -> float:
        fresh = build_model(config.model.name, config.model.options, 0).to(device)
        mask = prune_at_init("magnitude", fresh, args.fraction)
        began = time.perf_counter()
        train(fresh, data, config.train, mask=mask, device=device, quiet=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - began

    for method in METHODS:  # warm-up: first-call costs out of the timings
        mask_time(method)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    trainings = []
    for _ in range(args.repeats):
        for method in METHODS:
            times[method].append(mask_time(method))
        trainings.append(train_time())
    training = statistics.median(trainings)
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads; preset {args.preset}, "
          f"{Mask.ones(model).total():,} prunable weights, {args.fraction:g} kept; median of {args.repeats}")
    print(f"one training ({config.train.iterations}, batch {config.train.batch_size}): {training:.2f} s")
    print(f"{'method':<10} {'mask s':>9} {'/ training':>11}")
    for method, values in times.items():
        median = statistics.median(values)
        print(f"{method:<10} {median:>9.4f} {median / training:>10.2%}")


if __name__ == "__main__":
    main()
