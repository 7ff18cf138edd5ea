"""The 30-point linear interpolation of stability analysis: all points evaluated as one stacked
model against one point at a time, side by side in one run. lth picks stacked passes on CUDA only
(lth.connectivity.points_per_pass); this benchmark is how to check that choice on a machine.

    .venv/bin/python benchmarks/interpolation.py [--repeats 5] [--points 30] [--device cuda]

Both sides call lth's interpolation_curve on the same two networks (two independent
initialisations: the cost does not depend on the weights) over the test set and 5,000 training
examples, as `lth stability` does; runs are interleaved and each figure is a median.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from types import SimpleNamespace

import torch

from lth.data import load_dataset
from lth.data.loader import TensorDataset
from lth.models import build_model
from lth.presets import get_preset
from lth.connectivity import interpolation_curve, points_per_pass


def cases(cache: str):
    generator = torch.Generator().manual_seed(0)  # MNIST-shaped data: the cost does not depend on content
    mnist_shaped = TensorDataset("mnist", torch.randn(60_000, 1, 28, 28, generator=generator),
                                 torch.randint(0, 10, (60_000,), generator=generator),
                                 torch.randn(10_000, 1, 28, 28, generator=generator),
                                 torch.randint(0, 10, (10_000,), generator=generator), 10)
    yield "mnist1d_mlp (1,000 test)", get_preset("mnist1d_mlp"), load_dataset("mnist1d", cache_dir=cache)
    yield "lenet300 (10,000 test)", get_preset("lenet300_mnist"), mnist_shaped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, {args.points} points, median of {args.repeats}")
    print("| case | points per pass | one by one (s) | stacked (s) | speed-up |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        for name, config, data in cases(cache):
            setup = SimpleNamespace(data=data, device=device)
            model = build_model(config.model.name, config.model.options, 0).to(device)
            a = {k: v.clone() for k, v in model.state_dict().items()}
            b = build_model(config.model.name, config.model.options, 1).to(device).state_dict()
            per_pass = points_per_pass(model, args.points, "cuda")  # the stacked size, whatever the device
            times: dict[int, list[float]] = {1: [], per_pass: []}
            for _ in range(args.repeats):
                for size in (1, per_pass):  # interleaved
                    began = time.perf_counter()
                    interpolation_curve(model, setup, a, b, args.points, per_pass=size)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[size].append(time.perf_counter() - began)
            single, stacked = statistics.median(times[1]), statistics.median(times[per_pass])
            print(f"| {name} | {per_pass} | {single:.2f} | {stacked:.2f} | {single / stacked:.2f}× |")


if __name__ == "__main__":
    main()
