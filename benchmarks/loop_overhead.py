"""lth's train() against a minimal hand-written PyTorch loop, side by side in one run.

Both loops use the same model, the same in-memory data, the same optimizer and the same number
of steps. lth's loop runs as users run it: a 50%-sparse mask re-applied after every step,
evaluation at the preset's cadence, resume checkpoints at the default cadence (every 2 minutes of
training: none in these short runs), progress bar on.
Runs are interleaved and repeated; the table shows medians (this machine is shared and noisy).

    .venv/bin/python benchmarks/loop_overhead.py [--repeats 5] [--steps 600] [--breakdown] [--compile]

--breakdown also runs train() with its features switched off one after another (resume
checkpoints, evaluation, mask, progress bar), each against the plain loop: where the time goes.
--compile adds full train() through torch.compile (compiled once before the timed runs).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from lth.config import PruneConfig
from lth.data import load_dataset
from lth.data.loader import TensorDataset
from lth.levels import resume_cadence
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


def lth_loop(model, data, config, steps: int, mask: Mask | None, off: frozenset = frozenset()) -> None:
    """train() as users run it, less the features named in `off` (resume, evaluation, mask, bar);
    "compile" in `off` means compiled instead."""
    if "evaluation" in off:  # (the one evaluation at the end of training stays)
        config = dataclasses.replace(config, eval_every=f"{10 * steps}it")
    with tempfile.TemporaryDirectory() as tmp:
        train(model, data, config, mask=None if "mask" in off else mask, stop=steps, quiet="bar" in off,
              resume_path=None if "resume" in off else f"{tmp}/resume.pt",
              resume_every=resume_cadence("auto", len(data.y_train) // config.batch_size), description="lth",
              compile="compile" in off)


# --breakdown: cumulative, so each row's drop from the one above is that feature's cost
VARIANTS = {"full train()": frozenset(), "- resume checkpoints": frozenset({"resume"}),
            "- evaluation": frozenset({"resume", "evaluation"}),
            "- mask multiply": frozenset({"resume", "evaluation", "mask"}),
            "- progress bar": frozenset({"resume", "evaluation", "mask", "bar"})}


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
    parser.add_argument("--breakdown", action="store_true", help="also time train() with features switched off")
    parser.add_argument("--compile", action="store_true", help="also time train(compile=True)")
    args = parser.parse_args()
    variants = dict(VARIANTS) if args.breakdown else {"full train()": frozenset()}
    if args.compile:
        variants["train(compile=True)"] = frozenset({"compile"})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, {args.repeats} repeats (interleaved)")
    print(f"{'case':<32} {'variant':<22} {'plain it/s':>10} {'lth it/s':>10} {'lth / plain':>11}")
    for name, config, data in cases():
        model_config = config.model
        plain_rates, rates = [], {variant: [] for variant in variants}
        warm = build_model(model_config.name, model_config.options, 0)  # first-call costs out of the timings
        plain_loop(warm, data.x_train, data.y_train, config.train, 20)
        for off in variants.values():
            lth_loop(warm, data, config.train, 20, None, off)
        for _ in range(args.repeats):
            model = build_model(model_config.name, model_config.options, 0)
            mask = magnitude_prune(Mask.ones(model), dict(model.named_parameters()),
                                   layer_fractions(model, PruneConfig(0.5)), "layerwise", 0.5)
            began = time.perf_counter()
            plain_loop(model, data.x_train, data.y_train, config.train, args.steps)
            plain_rates.append(args.steps / (time.perf_counter() - began))
            for variant, off in variants.items():
                model = build_model(model_config.name, model_config.options, 0)
                began = time.perf_counter()
                lth_loop(model, data, config.train, args.steps, mask, off)
                rates[variant].append(args.steps / (time.perf_counter() - began))
        plain = statistics.median(plain_rates)
        for variant, ours in rates.items():  # ratios pair each run with the plain run beside it
            ratio = statistics.median(o / p for o, p in zip(ours, plain_rates))
            print(f"{name:<32} {variant:<22} {plain:>10.0f} {statistics.median(ours):>10.0f} {ratio:>10.3f}x")


if __name__ == "__main__":
    main()
