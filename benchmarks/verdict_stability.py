"""Do make run's verdicts survive a change of float order? The same study (a preset's plan, the seeds
`make run` uses) is computed twice on this machine: once with the seeds stacked as replicas of one
computation (`--replicas auto`, what make run does) and once one by one (`--replicas off`). Both are
exact computations of the same configs; they differ only in how sums are ordered (stacked batched
matmuls vs one matmul per seed), so their last bits differ, the differences grow through training,
and every accuracy moves a little. A verdict that flips between the two is one the seeds cannot
carry: it depends on the float order, not on the science.

    .venv/bin/python benchmarks/verdict_stability.py [--preset mnist1d_mlp_scale] [--seeds 0-9] [--threads 2]

Prints both claims tables side by side, each claim's mean difference in both, the largest change of
an accuracy, and the verdicts that differ (none is the pass mark).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from lth.claims import study_claims
from lth.hardware import hardware
from lth.presets import get_preset
from lth.study import find_studies
from lth.reproduce import default_plan, reproduce
from lth.store import Store
from lth.options import RunOptions

sys.path.append(str(Path(__file__).resolve().parent.parent / "studies"))
from confirm import seed_list  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist1d_mlp_scale")
    parser.add_argument("--seeds", help="default: the preset's study plan (make run's seeds)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = get_preset(args.preset)
    plan = default_plan(config)
    if args.seeds:
        plan = replace(plan, seeds=seed_list(args.seeds))
    claims, seconds, accuracies = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for replicas in ("auto", "off"):
            store = Store(Path(tmp) / replicas)
            began = time.perf_counter()
            reproduce(config, plan, store, log=lambda line: None, options=RunOptions(quiet=True, replicas=replicas))
            seconds[replicas] = time.perf_counter() - began
            [study] = find_studies(store.root)
            claims[replicas] = {c.claim: c for c in study_claims(study)}
            accuracies[replicas] = {(r.config.kind, r.config.rewind, r.config.seed, level): r.summary(level)["test_accuracy"]
                                    for r in study.runs for level in r.levels_done()}
    shared = accuracies["auto"].keys() & accuracies["off"].keys()
    moved = [abs(accuracies["auto"][k] - accuracies["off"][k]) for k in shared]
    print(f"{args.preset}, seeds {','.join(map(str, plan.seeds))}, {args.threads} threads, {hardware()}, "
          f"torch {torch.__version__}")
    print(f"stacked: {seconds['auto']:.0f} s; one by one: {seconds['off']:.0f} s; {len(shared)} levels compared, "
          f"{sum(m > 0 for m in moved)} with another test accuracy, largest change {100 * max(moved):.2f} points")
    flipped = []
    print(f"{'claim':<72} {'stacked':>28} {'one by one':>28}")
    for name, a in claims["auto"].items():
        b = claims["off"].get(name)
        cell = lambda c: f"{c.difference * (100 if c.unit == 'points' else 1):+.2f} {c.verdict}"  # noqa: E731
        print(f"{name:<72} {cell(a):>28} {cell(b) if b else '-':>28}")
        if b is None or a.verdict != b.verdict:
            flipped.append(name)
    print(f"verdicts that differ: {len(flipped)} of {len(claims['auto'])}" + "".join(f"\n  {n}" for n in flipped))


if __name__ == "__main__":
    main()
