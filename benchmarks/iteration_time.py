"""Parameter count and the time of one training iteration (forward, backward, optimizer step,
mask) for every preset's model on this machine, with inputs of the preset dataset's shape.

Big models are timed at a smaller batch and scaled linearly to the preset's batch (stated in
the table); on a GPU pass --device cuda.

    .venv/bin/python benchmarks/iteration_time.py [--device cpu] [--max-batch 64]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lth.masks import Mask
from lth.models import build_model, parameter_count
from lth.presets import PRESETS
from lth.train import make_optimizer

SHAPES = {"mnist1d": (40,), "mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "imagenet": (3, 224, 224)}
CLASSES = {"cifar100": 100, "imagenet": 1000}


def time_iteration(config, batch: int, device: str, repeats: int) -> float:
    options = dict(config.model.options)
    model = build_model(config.model.name, options, 0).to(device)
    optimizer = make_optimizer(model, config.train)
    params = dict(model.named_parameters())
    mask = Mask.ones(model)
    pairs = [params[n] for n in mask], [mask[n].to(device, torch.float32) for n in mask]
    x = torch.randn(batch, *SHAPES[config.data.dataset], device=device)
    y = torch.randint(0, CLASSES.get(config.data.dataset, 10), (batch,), device=device)
    times = []
    for step in range(repeats + 1):
        began = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            torch._foreach_mul_(*pairs)
        if device == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-batch", type=int, default=64, help="time at most this batch, scale linearly")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"{'preset':<18} {'params':>11} {'batch':>6} {'timed at':>8} {'s / iteration':>14}")
    for name, preset in PRESETS.items():
        config = preset.config
        batch = config.train.batch_size
        timed = min(batch, args.max_batch if config.data.dataset != "imagenet" else min(args.max_batch, 8))
        seconds = time_iteration(config, timed, args.device, args.repeats) * batch / timed
        params = parameter_count(build_model(config.model.name, config.model.options, 0))
        print(f"{name:<18} {params:>11,} {batch:>6} {timed:>8} {seconds:>14.4f}", flush=True)


if __name__ == "__main__":
    main()
