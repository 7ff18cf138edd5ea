"""K copies of a small network trained as one stacked model (lth.replicas) against K separate
`train()` runs, side by side in one process: replica-iterations per second, the ratio, and the
achieved GFLOP/s against this machine's measured matmul peak (a large torch.mm in the same run).

    .venv/bin/python benchmarks/replicas.py [--steps 300] [--repeats 3] [--ks 1,2,4,8] [--device cuda]

Both sides run lth's own train() with masks on, the preset's optimizer and batch, evaluation only
at the end; runs are interleaved and each figure is the median of --repeats.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from lth.data import load_dataset
from lth.data.loader import TensorDataset
from lth.masks import Mask
from lth.models import build_model
from lth.presets import get_preset
from lth.replicas import stack_masks, stack_models
from lth.train import train, train_replicas


def datasets(cache: str) -> dict[str, object]:
    generator = torch.Generator().manual_seed(0)
    mnist_shaped = TensorDataset("mnist", torch.randn(60_000, 1, 28, 28, generator=generator),
                                 torch.randint(0, 10, (60_000,), generator=generator),
                                 torch.randn(1_000, 1, 28, 28, generator=generator),
                                 torch.randint(0, 10, (1_000,), generator=generator), 10)
    return {"mnist1d_mlp": load_dataset("mnist1d", cache_dir=cache), "lenet300_mnist": mnist_shaped}


def models(config, k: int):
    built = [build_model(config.model.name, config.model.options, seed) for seed in range(k)]
    return built, [Mask.ones(m) for m in built]


def sequential(config, data, k: int, device: torch.device) -> float:
    built, masks = models(config, k)
    began = time.perf_counter()
    for seed, (model, mask) in enumerate(zip(built, masks)):  # train() ends reading metrics: synchronised
        train(model, data, config.train, mask=mask, data_seed=seed, quiet=True, device=device)
    return time.perf_counter() - began


def stacked(config, data, k: int, device: torch.device) -> float:
    built, masks = models(config, k)
    model, mask = stack_models(built), stack_masks(masks)
    began = time.perf_counter()
    train_replicas(model, data, config.train, list(range(k)), mask=mask, quiet=True, device=device)
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


def flops_per_iteration(config) -> float:
    """Forward + backward multiply-adds of the linear layers: 3 matmuls of 2 * batch * in * out."""
    model = build_model(config.model.name, config.model.options, 0)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 3 * 2 * config.train.batch_size * weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--cache", default="lth_runs/_cache")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (fp32 matmuls either way)")
    args = parser.parse_args()
    device = torch.device(args.device)
    ks = [int(k) for k in args.ks.split(",")]
    data = datasets(args.cache)
    peak = matmul_peak(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; {args.steps} steps per replica, median of {args.repeats}; "
          f"fp32 matmul peak {peak:.1f} GFLOP/s (torch.mm)")
    print(f"{'preset':<16} {'K':>2} {'sequential rep-it/s':>20} {'stacked rep-it/s':>17} {'ratio':>6} {'GFLOP/s':>8} "
          f"{'% peak':>7}")
    for name, dataset in data.items():
        config = get_preset(name)
        config = replace(config, train=replace(config.train, iterations=f"{args.steps}it", eval_every=f"{args.steps}it"))
        sequential(config, dataset, 1, device)  # warm-up: first calls pay for lazy initialisation
        stacked(config, dataset, 2, device)
        for k in ks:
            seq, stk = [], []
            for _ in range(args.repeats):  # interleaved
                seq.append(sequential(config, dataset, k, device))
                stk.append(stacked(config, dataset, k, device))
            seq_rate = k * args.steps / statistics.median(seq)
            stk_rate = k * args.steps / statistics.median(stk)
            gflops = stk_rate * flops_per_iteration(config) / 1e9
            print(f"{name:<16} {k:>2} {seq_rate:>20.0f} {stk_rate:>17.0f} {stk_rate / seq_rate:>5.2f}x {gflops:>8.1f} "
                  f"{100 * gflops / peak:>6.0f}%", flush=True)


if __name__ == "__main__":
    main()
