"""K copies of a network trained as one stacked model (lth.replicas) against K separate `train()`
runs, side by side in one process: replica-iterations per second, the ratio, and the achieved
GFLOP/s (forward + backward, counted by torch's FlopCounterMode) against this machine's measured
matmul peak (a large torch.mm in the same run).

    .venv/bin/python benchmarks/replicas.py [--presets mnist1d_mlp,lenet300_mnist,resnet20_cifar10,vgg16_cifar10]
        [--steps 300] [--repeats 3] [--ks 1,2,4,8] [--device cuda] [--compile]

Both sides run lth's own train() with masks on, the preset's model, optimizer and batch (CIFAR-10
and MNIST shapes as random tensors: speed does not depend on the pixels; augmentation off), evaluation
only at the end; runs are interleaved and each figure is the median of --repeats. The all-linear
networks stack as batched matmuls, the conv nets as grouped convolutions (replicas.Layout).
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from lth.data import load_dataset
from lth.data.loader import TensorDataset
from lth.masks import Mask
from lth.models import build_model
from lth.presets import get_preset
from lth.replicas import stack_masks, stack_models
from lth.train import train, train_replicas


def shaped(name: str, shape: tuple[int, ...], train: int, test: int = 1_000) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    return TensorDataset(name, torch.randn(train, *shape, generator=generator),
                         torch.randint(0, 10, (train,), generator=generator),
                         torch.randn(test, *shape, generator=generator),
                         torch.randint(0, 10, (test,), generator=generator), 10)


def dataset(preset: str, cache: str):
    if preset.endswith("_cifar10"):
        return shaped("cifar10", (3, 32, 32), 10_000, test=256)
    if preset.endswith("_mnist"):
        return shaped("mnist", (1, 28, 28), 60_000)
    return load_dataset("mnist1d", cache_dir=cache)


def models(config, k: int):
    built = [build_model(config.model.name, config.model.options, seed) for seed in range(k)]
    return built, [Mask.ones(m) for m in built]


def sequential(config, data, k: int, device: torch.device, compile: bool) -> float:
    built, masks = models(config, k)
    began = time.perf_counter()
    for seed, (model, mask) in enumerate(zip(built, masks)):  # train() ends reading metrics: synchronised
        train(model, data, config.train, mask=mask, data_seed=seed, quiet=True, device=device, compile=compile)
    return time.perf_counter() - began


def stacked(config, data, k: int, device: torch.device, compile: bool) -> float:
    built, masks = models(config, k)
    model, mask = stack_models(built), stack_masks(masks)
    began = time.perf_counter()
    train_replicas(model, data, config.train, list(range(k)), mask=mask, quiet=True, device=device, compile=compile)
    return time.perf_counter() - began


def matmul_peak(device: torch.device, repeats: int = 5) -> float:
    size = 2048 if device.type == "cpu" else 8192
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def flops_per_iteration(config, data) -> float:
    """Forward + backward floating-point operations of one step of one replica (FlopCounterMode)."""
    model = build_model(config.model.name, config.model.options, 0)
    x, y = data.x_train[:config.train.batch_size], data.y_train[:config.train.batch_size]
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="mnist1d_mlp,lenet300_mnist,resnet20_cifar10,vgg16_cifar10")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--cache", default="lth_runs/_cache")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (fp32 matmuls either way)")
    parser.add_argument("--compile", action="store_true", help="both sides through torch.compile (lth --compile)")
    args = parser.parse_args()
    device = torch.device(args.device)
    ks = [int(k) for k in args.ks.split(",")]
    peak = matmul_peak(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; {args.steps} steps per replica, median of {args.repeats}"
          f"{', compiled' if args.compile else ''}; fp32 matmul peak {peak:.1f} GFLOP/s (torch.mm)")
    print(f"{'preset':<18} {'K':>2} {'sequential rep-it/s':>20} {'stacked rep-it/s':>17} {'ratio':>6} {'GFLOP/s':>8} "
          f"{'% peak':>7}")
    for name in args.presets.split(","):
        data = dataset(name, args.cache)
        config = get_preset(name)
        config = replace(config, train=replace(config.train, iterations=f"{args.steps}it", eval_every=f"{args.steps}it"),
                         data=replace(config.data, augment=False), rewind="0it")
        flops = flops_per_iteration(config, data)
        sequential(config, data, 1, device, args.compile)  # warm-up: first calls pay for lazy initialisation
        stacked(config, data, 2, device, args.compile)
        for k in ks:
            seq, stk = [], []
            for _ in range(args.repeats):  # interleaved
                seq.append(sequential(config, data, k, device, args.compile))
                stk.append(stacked(config, data, k, device, args.compile))
            seq_rate = k * args.steps / statistics.median(seq)
            stk_rate = k * args.steps / statistics.median(stk)
            gflops = stk_rate * flops / 1e9
            print(f"{name:<18} {k:>2} {seq_rate:>20.1f} {stk_rate:>17.1f} {stk_rate / seq_rate:>5.2f}x {gflops:>8.1f} "
                  f"{100 * gflops / peak:>6.0f}%", flush=True)


if __name__ == "__main__":
    main()
