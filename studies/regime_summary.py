"""Summarise regime_map_runs.csv: per regime and rewind point, the means, the paired differences
(ticket - baseline, same seed) with 95% t intervals and lth.claims verdicts, and whether the papers'
chain shows: unstable at k = 0 with no ticket advantage over reinit, and stable at some k > 0 with the
ticket beating reinit and random pruning and matching dense.

    .venv/bin/python studies/regime_summary.py [studies/results/regime_map_runs.csv]

Writes, beside the runs CSV: regime_map.csv (the summary), regime_map.md (docs/studies.md's table) and regime_map.png.
"""
from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from lth.claims import GREATER, MATCHING_MARGIN, NONINFERIOR, judge
from tables import write_csv

STABLE = 0.02  # [LMC]: a barrier below 2% counts as linearly mode connected (PAPERS.md)


def _steps(rewind: str) -> int:
    return int(rewind.removesuffix("it"))


def summarize(runs_csv: Path, out: Path) -> list[dict[str, str]]:
    with runs_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    levels = sorted({int(k.split("_L")[1]) for k in rows[0] if k.startswith("ticket_L")})
    cells: dict[tuple[str, str], dict[int, dict[str, float]]] = defaultdict(dict)
    for row in rows:
        cells[(row["regime"], row["rewind"])][int(row["seed"])] = {k: float(v) for k, v in row.items()
                                                                     if k not in ("regime", "rewind", "seed") and v}
    table = []
    regimes = list(dict.fromkeys(r["regime"] for r in rows))
    for regime in regimes:
        rewinds = sorted({k for (g, k) in cells if g == regime}, key=_steps)
        reset = cells.get((regime, "0it"))
        for rewind in rewinds:
            seeds = cells[(regime, rewind)]
            col = lambda name: {s: v[name] for s, v in seeds.items() if name in v}  # noqa: E731
            out_row = {"regime": regime, "rewind": rewind, "seeds": str(len(seeds)),
                       "dense": _mean(col("dense")), f"barrier_L{levels[0]}": _mean(col(f"barrier_L{levels[0]}"), 2)}
            for level in levels:
                ticket = col(f"ticket_L{level}")
                out_row[f"weights_L{level}"] = _mean(col(f"weights_L{level}"), 1)
                for name in ("ticket", "reinit", "random"):
                    out_row[f"{name}_L{level}"] = _mean(col(f"{name}_L{level}"))
                for name, other, test in (("vs_dense", col("dense"), NONINFERIOR),
                                          ("vs_reinit", col(f"reinit_L{level}"), GREATER),
                                          ("vs_random", col(f"random_L{level}"), GREATER),
                                          ("vs_reset", {s: v[f"ticket_L{level}"] for s, v in reset.items()}
                                           if reset and rewind != "0it" else {}, GREATER)):
                    claim = judge(name, "", "", ticket, other, MATCHING_MARGIN, test=test) if other else None
                    out_row[f"{name}_L{level}"] = _claim(claim)
            table.append(out_row)
    for row in table:  # the chain, judged at the first level (the one with the barrier)
        level = levels[0]
        row["chain"] = _chain_part(row, level, table)
    write_csv(out / "regime_map.csv", table)
    _plot(cells, regimes, levels, out / "regime_map.png")
    (out / "regime_map.md").write_text(markdown(table, levels))
    _print(table, levels)
    return table


def markdown(table: list[dict[str, str]], levels: list[int]) -> str:
    """docs/studies.md's regime-map table: accuracies (%) at the first level, the paired differences with their
    intervals and verdicts (verdict "holds" in bold) at both levels, and the chain column."""
    first, last = levels[0], levels[-1]
    head = (["regime", "k", "seeds", "dense", f"% weights L{first}", "ticket", "reinit", "random", f"barrier L{first}",
             f"ticket − reinit L{first}", f"ticket − random L{first}", f"% weights L{last}", f"ticket − reinit L{last}",
             f"ticket − random L{last}", f"rewound − reset L{first}", "chain"])
    keys = ["regime", "rewind", "seeds", "dense", f"weights_L{first}", f"ticket_L{first}", f"reinit_L{first}",
            f"random_L{first}", f"barrier_L{first}", f"vs_reinit_L{first}", f"vs_random_L{first}", f"weights_L{last}",
            f"vs_reinit_L{last}", f"vs_random_L{last}", f"vs_reset_L{first}", "chain"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table:
        cells = [row[k].replace(" holds", " **holds**") if row[k] else "–" for k in keys]
        cells[8] += "%"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _chain_part(row: dict[str, str], level: int, table: list[dict[str, str]]) -> str:
    barrier = float(row[f"barrier_L{level}"]) / 100
    if row["rewind"] == "0it":
        # (an undecided test is not "no advantage": it says so)
        verdict = row[f"vs_reinit_L{level}"].split("] ")[-1]
        return ("unstable" if barrier >= STABLE else "stable") + (", ticket > reinit" if verdict == "holds" else
                                                                  f", ticket > reinit {verdict}")
    # Name the tests a k > 0 ticket fails, so a cell that beats both controls but only ties dense says so.
    failed = [f"{label} {row[f'{name}_L{level}'].split('] ')[-1]}"
              for name, label in (("vs_dense", "≥ dense"), ("vs_reinit", "> reinit"), ("vs_random", "> random"))
              if not row[f"{name}_L{level}"].endswith("holds")]
    stability = "stable" if barrier < STABLE else "unstable"
    return f"{stability}, winning ticket" if not failed else f"{stability}, no winning ticket ({', '.join(failed)})"


def _mean(values: dict[int, float], digits: int = 2, scale: float = 100.0) -> str:
    return f"{scale * statistics.fmean(values.values()):.{digits}f}" if values else ""


def _claim(claim) -> str:
    if claim is None:
        return ""
    return f"{100 * claim.difference:+.2f} [{100 * claim.low:+.2f}, {100 * claim.high:+.2f}] {claim.verdict}"


def _plot(cells, regimes: list[str], levels: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    level = levels[0]
    columns = min(4, len(regimes))
    rows = (len(regimes) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False, sharey=True)
    for ax in axes.flat[len(regimes):]:
        ax.axis("off")
    for ax, regime in zip(axes.flat, regimes):
        rewinds = sorted({k for (g, k) in cells if g == regime}, key=_steps)
        xs = list(range(len(rewinds)))
        for name, color in (("reinit", "#2ca02c"), ("random", "#9467bd"), ("dense", "#7f7f7f")):
            means, errs = [], []
            for rewind in rewinds:
                seeds = cells[(regime, rewind)]
                key = "dense" if name == "dense" else f"{name}_L{level}"
                claim = judge("", "", "", {s: v[f"ticket_L{level}"] for s, v in seeds.items()},
                              {s: v[key] for s, v in seeds.items()})
                means.append(100 * claim.difference)
                errs.append(100 * (claim.high - claim.difference) if claim.seeds > 1 else 0.0)
            ax.errorbar(xs, means, yerr=errs, color=color, marker="o", capsize=3, label=f"ticket − {name}")
        ax.axhline(0, color="black", lw=0.8)
        twin = ax.twinx()
        barriers = [100 * statistics.fmean(v[f"barrier_L{level}"] for v in cells[(regime, k)].values()) for k in rewinds]
        twin.plot(xs, barriers, color="#d62728", ls="--", marker="s", label="barrier (test, %)")
        twin.axhline(100 * STABLE, color="#d62728", lw=0.6, ls=":")
        twin.set_ylim(0, max(20, *barriers))
        ax.set_xticks(xs, rewinds)
        ax.set_title(regime, fontsize=10)
        ax.grid(alpha=0.3)
        if ax is axes.flat[0]:
            handles, labels = ax.get_legend_handles_labels()
            more, more_labels = twin.get_legend_handles_labels()
            ax.legend(handles + more, labels + more_labels, fontsize=7, loc="upper right")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"Δ test acc. at level {level} (points)")
    for ax in axes[-1]:
        ax.set_xlabel("rewind step k")
    fig.suptitle("MNIST-1D MLP regimes: ticket minus baseline (mean, 95% t interval over seeds) and the "
                 "barrier (dashed, right axis; dotted = 2%) by rewind step", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _print(table: list[dict[str, str]], levels: list[int]) -> None:
    level = levels[0]
    print(f"{'regime':<18} {'k':>5} {'n':>2} {'dense':>6} {'ticket':>6} {'reinit':>6} {'random':>6} {'barrier':>7}  "
          f"ticket-reinit (level {level})                 chain")
    for row in table:
        print(f"{row['regime']:<18} {row['rewind']:>5} {row['seeds']:>2} {row['dense']:>6} {row[f'ticket_L{level}']:>6} "
              f"{row[f'reinit_L{level}']:>6} {row[f'random_L{level}']:>6} {row[f'barrier_L{level}']:>7}  "
              f"{row[f'vs_reinit_L{level}']:<42} {row['chain']}")


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "studies/results/regime_map_runs.csv")
    summarize(source, source.parent)
