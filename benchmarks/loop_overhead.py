"""lth's train() against a minimal hand-written PyTorch loop, side by side in one run.

Both loops use the same model, the same in-memory data, the same optimizer and the same number
of steps. lth's loop runs as users run it: a 50%-sparse mask re-applied after every step,
evaluation at the preset's cadence, resume checkpoints at the default cadence (every 2 minutes of
training: none in these short runs), progress bar on.
Runs are interleaved and repeated; the table shows medians (this machine is shared and noisy).

    .venv/bin/python benchmarks/loop_overhead.py [--repeats 5] [--steps 600]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from lth.config import PruneConfig
from lth.data import load_dataset
from lth.data.loader import TensorDataset
from lth.imp import resume_cadence
from lth.masks import Mask, layer_fractions, magnitude_prune
from lth.models import build_model
from lth.presets import get_preset
from lth.train import make_optimizer, train


def plain_loop(model, x, y, config, steps: int) -> None:
    """The loop a PyTorch user writes by hand: shuffle by index, forward, backward, step."""
    optimizer = make_optimizer(model, config)
    batch = config.batch_size
    per_epoch = len(y) // batch
    order = torch.randperm(len(y))
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(y))
        index = order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        loss = F.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def lth_loop(model, data, config, steps: int, mask: Mask) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        train(model, data, config, mask=mask, stop=steps, quiet=False, resume_path=f"{tmp}/resume.pt",
              resume_every=resume_cadence("auto", len(data.y_train) // config.batch_size), description="lth")


def cases():
    mlp = get_preset("mnist1d_mlp")
    yield "mnist1d_mlp (Adam, batch 100)", mlp, load_dataset("mnist1d")
    lenet = get_preset("lenet300_mnist")
    generator = torch.Generator().manual_seed(0)  # MNIST-shaped synthetic data: the loop cost does not depend on content
    fake = TensorDataset("synthetic-mnist", torch.randn(12000, 1, 28, 28, generator=generator),
                         torch.randint(0, 10, (12000,), generator=generator), torch.randn(2000, 1, 28, 28, generator=generator),
                         torch.randint(0, 10, (2000,), generator=generator), 10)
    yield "lenet300 (Adam, batch 60)", lenet, fake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, {args.repeats} repeats (interleaved)")
    print(f"{'case':<32} {'plain it/s':>10} {'lth it/s':>10} {'lth / plain':>11}")
    for name, config, data in cases():
        model_config = config.model
        ratios, plain_rates, lth_rates = [], [], []
        for _ in range(args.repeats):
            model = build_model(model_config.name, model_config.options, 0)
            mask = magnitude_prune(Mask.ones(model), dict(model.named_parameters()),
                                   layer_fractions(model, PruneConfig(0.5)), "layerwise", 0.5)
            began = time.perf_counter()
            plain_loop(model, data.x_train, data.y_train, config.train, args.steps)
            plain = args.steps / (time.perf_counter() - began)
            model = build_model(model_config.name, model_config.options, 0)
            began = time.perf_counter()
            lth_loop(model, data, config.train, args.steps, mask)
            ours = args.steps / (time.perf_counter() - began)
            plain_rates.append(plain)
            lth_rates.append(ours)
            ratios.append(ours / plain)
        print(f"{name:<32} {statistics.median(plain_rates):>10.0f} {statistics.median(lth_rates):>10.0f} "
              f"{statistics.median(ratios):>10.2f}x")


if __name__ == "__main__":
    main()
