"""Regime map on the embedded MNIST-1D data: where does the papers' chain show?

For each training regime (optimizer, learning rate, warm-up) of the MNIST-1D MLP and each rewind
point k, for each seed: IMP to the deepest asked level, the reinit and random-prune baselines at the
asked levels (each off the chain of the same k), and the linear-interpolation barrier of the ticket
at the first asked level. Everything runs through lth's own library on one store, so a rerun only
computes what is missing and any cell can be extended with more seeds.

    .venv/bin/python studies/regime_map.py                      # the committed map (hours on 2 cores)
    .venv/bin/python studies/regime_map.py --regimes adam-1e-3,sgd-0.1 --seeds 0,1 --rewind-points 0it,50it

Writes <out>/regime_map_runs.csv (one row per regime, k, seed) and, from it, regime_map.csv (one row
per regime and k: means, paired differences with 95% intervals and verdicts from lth.claims) and
regime_map.png. `--summarize` rewrites the summary from the runs CSV without training.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from lth.api import run_branch_many
from lth.errors import TrainingDiverged
from lth.api import run_imp_many
from lth.presets import get_preset
from lth.api import measure_stability_many
from lth.options import RunOptions

# Each regime: overrides of the mnist1d_mlp preset (1500 it, batch 100, layer-wise 20%/10%).
# Adam 1.2e-3 .. 2e-2 spans [LTH]'s LeNet rate to [M1D]'s; SGD with momentum 0.9 at
# lr 0.1 is [LTH]'s deep-network recipe, without and with [LTH]'s linear warm-up (here 10% of training).
REGIMES: dict[str, dict[str, object]] = {
    "adam-1.2e-3": {"train.optimizer": "adam", "train.lr": 1.2e-3},  # [LTH]'s LeNet-300-100 rate
    "adam-5e-3": {"train.optimizer": "adam", "train.lr": 5e-3},
    "adam-2e-2": {"train.optimizer": "adam", "train.lr": 2e-2},
    "adam-2e-2-warmup": {"train.optimizer": "adam", "train.lr": 2e-2, "train.warmup": "150it"},
    "sgd-0.01": {"train.optimizer": "sgd", "train.lr": 0.01, "train.momentum": 0.9},
    "sgd-0.1": {"train.optimizer": "sgd", "train.lr": 0.1, "train.momentum": 0.9},
    "sgd-0.1-warmup": {"train.optimizer": "sgd", "train.lr": 0.1, "train.momentum": 0.9, "train.warmup": "150it"},
    "sgd-0.3": {"train.optimizer": "sgd", "train.lr": 0.3, "train.momentum": 0.9},
    # Higher SGD rates (0.3 was stable at k = 0 only just, barrier 1.3%): [SCALE]'s instability at k = 0 comes
    # with high rates. At 0.6 the dense network diverged (NaN loss between iterations 1000 and 1100).
    "sgd-0.45": {"train.optimizer": "sgd", "train.lr": 0.45, "train.momentum": 0.9},
    "sgd-0.6": {"train.optimizer": "sgd", "train.lr": 0.6, "train.momentum": 0.9},
    # Depth: 4 or 8 residual 500 -> 500 layers instead of 1 (mnist1d_mlp's `blocks`) at [LTH]'s rate. A
    # probe of the dense network (1 seed, k = 0) found the barrier growing with depth: 2.6% (1 layer),
    # 4.3% (4), 11.4% (8) -- [SCALE]'s "deeper networks are unstable at initialisation".
    "deep4-adam-1.2e-3": {"model.options": {"blocks": 4}, "train.optimizer": "adam", "train.lr": 1.2e-3},
    "deep8-adam-1.2e-3": {"model.options": {"blocks": 8}, "train.optimizer": "adam", "train.lr": 1.2e-3},
    # ... and at Adam 5e-3 (the one-layer network's best dense rate), where the 4-layer dense network's barrier
    # at k = 0 was 23% in the same probe.
    "deep4-adam-5e-3": {"model.options": {"blocks": 4}, "train.optimizer": "adam", "train.lr": 5e-3},
    # Data size: mnist1d's generator at 20,000 samples instead of 5,000 (16,000 train / 4,000 test through
    # data.options). The same 1500 iterations now see each example ~9 times instead of ~38, so the dense
    # network overfits less, and the 4x test set halves the measurement noise of each accuracy.
    "adam-2e-2-n20k": {"data.options": {"num_samples": 20000}, "train.optimizer": "adam", "train.lr": 2e-2},
    "adam-1.2e-3-n20k": {"data.options": {"num_samples": 20000}, "train.optimizer": "adam", "train.lr": 1.2e-3},
    # Width: a quarter (125), half (250) and twice (1000) the hidden width at [M1D]'s rate, the regime unstable
    # at k = 0. Width 125 is the preset mnist1d_mlp_scale.
    "w125-adam-2e-2": {"model.options": {"hidden": 125}, "train.optimizer": "adam", "train.lr": 2e-2},
    "w250-adam-2e-2": {"model.options": {"hidden": 250}, "train.optimizer": "adam", "train.lr": 2e-2},
    "w1000-adam-2e-2": {"model.options": {"hidden": 1000}, "train.optimizer": "adam", "train.lr": 2e-2},
}
def row_fields(levels: list[int]) -> list[str]:
    fields = ["regime", "rewind", "seed", "dense"]
    for level in levels:
        fields += [f"weights_L{level}", f"ticket_L{level}", f"reinit_L{level}", f"random_L{level}"]
    return fields + [f"barrier_L{levels[0]}", f"data_order_l2_L{levels[0]}"]


def measure_cell(regime: str, rewind: str, seeds: list[int], levels: list[int], store: str, quiet: bool) -> list[dict]:
    base = get_preset("mnist1d_mlp").override({**REGIMES[regime], "rewind": rewind})
    configs = [base.override({"seed": s, "data_seed": None}) for s in seeds]
    deepest = max(levels)
    options = RunOptions(quiet=quiet)
    chains = run_imp_many(configs, deepest, store, options=options)
    reinit = run_branch_many("reinit", configs, deepest, store, only=levels, options=options)
    random = run_branch_many("random-prune", configs, deepest, store, only=levels, options=options)
    stability = measure_stability_many(configs, levels[0], store, options=options)
    rows = []
    for i, seed in enumerate(seeds):
        row = {"regime": regime, "rewind": rewind, "seed": seed, "dense": chains[i].levels[0]["test_accuracy"]}
        by_level = {r["level"]: r for r in reinit[i].levels}
        random_by_level = {r["level"]: r for r in random[i].levels}
        for level in levels:
            row[f"weights_L{level}"] = chains[i].levels[level]["weights_remaining"]
            row[f"ticket_L{level}"] = chains[i].levels[level]["test_accuracy"]
            row[f"reinit_L{level}"] = by_level[level]["test_accuracy"]
            row[f"random_L{level}"] = random_by_level[level]["test_accuracy"]
        row[f"barrier_L{levels[0]}"] = stability[i]["barrier_test"]
        row[f"data_order_l2_L{levels[0]}"] = stability[i]["data_order_l2_normalized"]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regimes", default=",".join(REGIMES), help=f"comma-separated, from: {', '.join(REGIMES)}")
    parser.add_argument("--rewind-points", default="0it,15it,50it,150it", help="k = 0, ~1%%, ~3%%, ~10%% of 1500 it")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--levels", default="10,13", help="IMP levels compared (10: ~11%% weights, 13: ~6%%)")
    parser.add_argument("--store", default="lth_runs_regime_map")
    parser.add_argument("--out", default="studies/results")
    parser.add_argument("--summarize", action="store_true", help="only rewrite the summary from the runs CSV")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_csv = out / "regime_map_runs.csv"
    if not args.summarize:
        unknown = [r for r in args.regimes.split(",") if r not in REGIMES]
        if unknown:
            parser.error(f"unknown regime(s) {', '.join(unknown)}; known: {', '.join(REGIMES)}")
        existing = _read(runs_csv)
        fields = row_fields(levels)
        for regime in args.regimes.split(","):
            for rewind in args.rewind_points.split(","):
                began = time.perf_counter()
                try:
                    rows = measure_cell(regime, rewind, [int(s) for s in args.seeds.split(",")], levels, args.store,
                                        args.quiet)
                except TrainingDiverged as exc:  # a regime past the stable rates: say so, map the rest
                    print(f"{regime} k={rewind}: diverged ({exc})", file=sys.stderr, flush=True)
                    continue
                keys = {(r["regime"], r["rewind"], str(r["seed"])) for r in rows}
                existing = [r for r in existing if (r["regime"], r["rewind"], r["seed"]) not in keys]
                existing += [{k: str(v) for k, v in r.items()} for r in rows]
                _write(runs_csv, fields, existing)
                print(f"{regime} k={rewind}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    from regime_summary import summarize

    summarize(runs_csv, out)
    return 0


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
