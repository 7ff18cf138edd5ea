"""IMP against pruning at initialization on the embedded MNIST-1D data ([PaI], Frankle et al. 2021).

For each seed: IMP chains reset to init (k = 0) and rewound (k > 0) to the deepest asked level; off
each chain, at the asked levels, SNIP, GraSP, SynFlow, magnitude at init and random pruning (each
with exactly the ticket's count of weights, from W_k); off the k = 0 chain, each method's mask
shuffled within its layers ([PaI]'s sanity check). Everything runs through lth's library on one
store, so a rerun computes only what is missing.

    .venv/bin/python studies/pruning_at_init.py --quiet        # ~15 min on 2 cores

Writes <out>/pruning_at_init.csv (one row per k, level, method, seed) and prints a markdown table:
mean test accuracy over seeds, and IMP minus each method (paired over seeds, 95% t interval, verdict
from lth.claims).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from lth.api import run_branch_many
from lth.kinds import PRUNING_AT_INIT, SanityCheck, sanity_kind
from lth.claims import judge
from lth.api import run_imp_many
from lth.presets import get_preset
from lth.options import RunOptions
from tables import write_csv

CONTROLS = ("random-prune",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist1d_mlp_lth", help="where IMP finds winning tickets ([LTH]'s regime)")
    parser.add_argument("--rewind-points", default="0it,50it")
    parser.add_argument("--levels", default="7,13,17", help="~21%%, ~5.5%%, ~2.3%% of the weights (layer-wise 20%%)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--store", default="lth_runs_pai")
    parser.add_argument("--out", default="studies/results")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    levels, seeds = [int(x) for x in args.levels.split(",")], [int(x) for x in args.seeds.split(",")]
    rewinds = args.rewind_points.split(",")
    base = get_preset(args.preset)
    rows = []
    began = time.perf_counter()
    for k in rewinds:
        configs = [base.override({"rewind": k, "seed": s, "data_seed": None}) for s in seeds]
        chains = run_imp_many(configs, max(levels), args.store, options=RunOptions(quiet=args.quiet))
        kinds = [*PRUNING_AT_INIT, *CONTROLS] + ([sanity_kind(kind, SanityCheck.SHUFFLE) for kind in PRUNING_AT_INIT]
                                                if k == rewinds[0] else [])
        results = {"imp": chains}
        for kind in kinds:
            results[kind] = run_branch_many(kind, configs, max(levels), args.store, only=levels,
                                            options=RunOptions(quiet=args.quiet))
            print(f"k={k} {kind}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
        for kind, per_seed in results.items():
            for seed, result in zip(seeds, per_seed):
                by_level = {row["level"]: row for row in result.levels}
                for level in levels:
                    rows.append({"rewind": k, "level": level, "method": kind, "seed": seed,
                                 "weights": by_level[level]["weights_remaining"],
                                 "test_accuracy": by_level[level]["test_accuracy"]})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "pruning_at_init.csv", rows)
    print(table(rows, levels))
    return 0


def table(rows: list[dict], levels: list[int]) -> str:
    """Markdown: per k and method, mean accuracy at each level and IMP minus the method."""
    acc = {(r["rewind"], r["method"], r["level"], r["seed"]): r["test_accuracy"] for r in rows}
    weights = {r["level"]: r["weights"] for r in rows if r["method"] == "imp"}
    header = ["k", "method"] + [f"acc {100 * weights[lv]:.1f}%" for lv in levels] + \
             [f"IMP − method {100 * weights[lv]:.1f}%" for lv in levels]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for k in dict.fromkeys(r["rewind"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows if r["rewind"] == k):
            cells = []
            for level in levels:
                values = [v for (kk, m, lv, _), v in acc.items() if (kk, m, lv) == (k, method, level)]
                cells.append(f"{100 * statistics.fmean(values):.2f}")
            for level in levels:
                if method == "imp":
                    cells.append("–")
                    continue
                imp = {s: v for (kk, m, lv, s), v in acc.items() if (kk, m, lv) == (k, "imp", level)}
                other = {s: v for (kk, m, lv, s), v in acc.items() if (kk, m, lv) == (k, method, level)}
                claim = judge("imp > method", "", "", imp, other)
                cells.append(f"{100 * claim.difference:+.2f} [{100 * claim.low:+.2f}, {100 * claim.high:+.2f}] "
                             f"{claim.verdict}")
            lines.append("| " + " | ".join([k, method, *cells]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
