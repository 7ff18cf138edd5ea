"""The report's figures (matplotlib, Agg backend), each returned as PNG bytes."""
from __future__ import annotations

import io
import statistics
from typing import Any

from .aggregate import mean_std
from .kinds import DATA_ORDER, DENSE, IMP, KINDS, RANDOM_PRUNE, REINIT
from .claims import STABLER_CLAIM, Claim
from .study import Curve, Study

# One colour per kind (kinds.py), the same in every figure, and the stability plots' own lines.
COLORS = {**{name: kind.color for name, kind in KINDS.items()}, "pruning": "#ff7f0e", "barrier": "#d62728",
          "barrier-train": "#8c564b"}

REWIND_STYLES = ["-", "--", ":", "-."]

def png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=130)
    plt.close(fig)
    return buffer.getvalue()

def plot_accuracy(study: Study, methods: list[Curve]) -> bytes:
    """Accuracy vs. weights remaining. With baselines off several rewind points, one panel per rewind
    point (its IMP chain and the baselines trained off it) side by side on one y axis."""
    import matplotlib.pyplot as plt

    with_baselines = [k for k in study.rewinds() if any(c.rewind == k and c.kind != IMP for c in methods)]
    panels = [[c for c in methods if c.rewind == k] for k in with_baselines] if len(with_baselines) > 1 else [methods]
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 if len(panels) == 1 else 5.5 * len(panels), 4.8),
                             sharey=True, squeeze=False)
    dense, rewinds = study.dense(), study.rewinds()
    smallest = min(100 * statistics.fmean(r["weights_remaining"] for r in rows) for c in methods for rows in c.levels.values())
    for ax, curves in zip(axes[0], panels):
        if dense:
            mean, std = mean_std(dense)
            ax.axhspan(100 * (mean - std), 100 * (mean + std), color=COLORS[DENSE], alpha=0.2)
            ax.axhline(100 * mean, color=COLORS[DENSE], lw=1, label=f"dense ({100 * mean:.1f}%)")
        for curve in curves:
            rows_by_level = list(curve.levels.values())
            xs = [100 * statistics.fmean(r["weights_remaining"] for r in rows) for rows in rows_by_level]
            means = [statistics.fmean(100 * r["test_accuracy"] for r in rows) for rows in rows_by_level]
            low = [m - min(100 * r["test_accuracy"] for r in rows) for m, rows in zip(means, rows_by_level)]
            high = [max(100 * r["test_accuracy"] for r in rows) - m for m, rows in zip(means, rows_by_level)]
            style = REWIND_STYLES[rewinds.index(curve.rewind) % len(REWIND_STYLES)] if curve.kind == IMP else "-"
            # random pruning's weights depend on the rewind step: say which, unless the panel title does
            label = f"{curve.label} (rewind {curve.rewind})" if len(panels) == 1 and curve.label == RANDOM_PRUNE \
                else curve.label
            ax.errorbar(xs, means, yerr=[low, high], color=COLORS[curve.kind],
                        ls="--" if KINDS[curve.kind].dashed else style, marker="o", ms=3, capsize=2,
                        label=label)
        _percent_log_axis(ax, smallest)
        ax.set_xlabel("weights remaining (%, log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        if len(panels) > 1:
            ax.set_title(f"rewind to {curves[0].rewind}")
    axes[0][0].set_ylabel("test accuracy (%)")
    seeds = len(dense)
    title = f"{study.preset}: accuracy vs. sparsity (mean, min-max over {seeds} seed{'s' * (seeds != 1)})"
    (fig.suptitle if len(panels) > 1 else axes[0][0].set_title)(title)
    return png(fig)

def _percent_log_axis(ax, low: float) -> None:
    """Log x axis from 100% down to `low`, ticked at round percentages."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.set_xscale("log")
    ticks = [t for t in (100, 50, 30, 20, 10, 5, 3, 2, 1, 0.5, 0.2, 0.1) if t >= low * 0.9]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(110, low * 0.85)

def plot_stability(study: Study, stability: list[dict[str, Any]]) -> bytes:
    import matplotlib.pyplot as plt

    level = max(r["level"] for r in stability)
    rows = [r for r in stability if r["level"] == level]
    xs = list(range(len(rows)))  # rewind points evenly spaced, labelled by their step
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    panels = ((axes[0], (("pruning", "pruning_l2_normalized", "stability to pruning"),
                         (DATA_ORDER, "data_order_l2_normalized", "stability to data order")),
               "relative L2 distance (lower = more stable)", 1.0),
              (axes[1], (("barrier", "barrier_test", "barrier, test error"),
                         ("barrier-train", "barrier_train", "barrier, train error")),
               "linear interpolation barrier (percentage points)", 100.0))
    for ax, metrics, ylabel, scale in panels:
        for color, key, label in metrics:
            ax.errorbar(xs, [scale * r[key] for r in rows], yerr=[scale * r[f"{key}_std"] for r in rows],
                        color=COLORS[color], marker="o", capsize=2, label=label)
        ax.set_xticks(xs, [r["rewind"] for r in rows])
        ax.set_xlabel("rewind step k")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.errorbar(xs, [100 * r["test_accuracy"] for r in rows], yerr=[100 * r["test_accuracy_std"] for r in rows],
                      color="black", ls="--", marker="s", capsize=2, label="ticket test accuracy")
        twin.set_ylabel("ticket test accuracy (%)")
        handles, labels = ax.get_legend_handles_labels()
        more, more_labels = twin.get_legend_handles_labels()
        ax.legend(handles + more, labels + more_labels, fontsize=8, loc="best")
    seeds = rows[0]["seeds"]
    fig.suptitle(f"{study.preset}: stability vs. rewind step (level {level}, {100 * rows[0]['weights_remaining']:.1f}% "
                 f"weights; mean ± std over {seeds} seed{'s' * (seeds != 1)})")
    return png(fig)

def plot_accuracy_vs_stability(study: Study, claims: list[Claim]) -> bytes:
    """Every seed at every rewind point (the deepest level measured, the main settings): the ticket's test
    accuracy against its barrier, a seed's points joined in rewind order; the title gives the slope claim."""
    import matplotlib.pyplot as plt

    rows = [r for r in study.stability_rows if r["settings"] == study.main_settings]
    level = max(r["level"] for r in rows)
    rows = sorted((r for r in rows if r["level"] == level), key=lambda r: (r["seed"], r["rewind_iteration"]))
    points = sorted({r["rewind_iteration"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 5))
    for seed in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == seed]
        ax.plot([100 * r["barrier_test"] for r in mine], [100 * r["test_accuracy"] for r in mine], color="#999999",
                lw=0.8, zorder=1)
    cmap = plt.get_cmap("viridis")
    for i, point in enumerate(points):
        at = [r for r in rows if r["rewind_iteration"] == point]
        ax.scatter([100 * r["barrier_test"] for r in at], [100 * r["test_accuracy"] for r in at], zorder=2,
                   color=cmap(i / max(1, len(points) - 1)), label=f"rewind {at[0]['rewind']} ({len(at)} seeds)")
    claim = next((c for c in claims if c.claim == STABLER_CLAIM), None)
    if claim is not None:
        judged = (f"slope −Δacc/Δbarrier {claim.difference:+.3g} per unit, 95% [{claim.low:+.3g}, {claim.high:+.3g}]: "
                  f"{claim.verdict}{' (fragile)' * claim.fragile}")
    elif len(points) < 2:
        judged = "one rewind point: no slope to judge"
    else:
        judged = f"the slope is not a claim of {study.claim_set.value} (not judged)"
    ax.set_xlabel("linear interpolation barrier, test error (percentage points)")
    ax.set_ylabel("ticket test accuracy (%)")
    ax.set_title(f"{study.preset}: accuracy vs. stability, level {level} "
                 f"({100 * rows[0]['weights_remaining']:.1f}% weights); a line joins one seed\n{judged}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)

EARLY_STOP_KINDS = (IMP, REINIT)  # [LTH]'s early-stopping figure: the ticket against random reinitialisation

def early_levels(curve: Curve) -> dict[int, list[dict[str, Any]]]:
    """The curve's levels whose every seed has an early-stopping point."""
    return {level: rows for level, rows in curve.levels.items() if all("early_stop_iteration" in r for r in rows)}

def plot_early_stopping(study: Study, methods: list[Curve]) -> bytes:
    """[LTH]'s pair of early-stopping plots: the iteration of minimum loss and the test accuracy there,
    against the weights remaining, for the tickets and random reinitialisation (mean, min-max over seeds)."""
    import matplotlib.pyplot as plt

    curves = [(c, early_levels(c)) for c in methods if c.kind in EARLY_STOP_KINDS and early_levels(c)]
    rewinds = study.rewinds()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    smallest = min(100 * statistics.fmean(r["weights_remaining"] for r in rows) for _, levels in curves
                   for rows in levels.values())
    split = next(iter(curves[0][1].values()))[0]["early_stop_split"]
    for ax, key, scale, ylabel in ((axes[0], "early_stop_iteration", 1.0, f"early-stop iteration (min {split} loss)"),
                                   (axes[1], "early_stop_accuracy", 100.0, "test accuracy at early stop (%)")):
        for curve, levels in curves:
            xs = [100 * statistics.fmean(r["weights_remaining"] for r in rows) for rows in levels.values()]
            values = [[scale * r[key] for r in rows] for rows in levels.values()]
            means = [statistics.fmean(v) for v in values]
            style = REWIND_STYLES[rewinds.index(curve.rewind) % len(REWIND_STYLES)] if curve.rewind in rewinds else "-"
            ax.errorbar(xs, means, yerr=[[m - min(v) for m, v in zip(means, values)],
                                         [max(v) - m for m, v in zip(means, values)]],
                        color=COLORS[curve.kind], ls=style, marker="o", ms=3, capsize=2, label=curve.label)
        _percent_log_axis(ax, smallest)
        ax.set_xlabel("weights remaining (%, log scale)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    seeds = max(len(rows) for _, levels in curves for rows in levels.values())
    fig.suptitle(f"{study.preset}: early stopping as in [LTH] (mean, min-max over {seeds} seed{'s' * (seeds != 1)}; "
                 f"the {split} loss picks the iteration: lth holds out no validation split)", fontsize=10)
    return png(fig)

def plot_interpolation(study: Study, stability: list[dict[str, Any]]) -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(stability):
        curves = r["curves"]
        alphas = [p["alpha"] for p in curves[0]]
        errors = [statistics.fmean(c[j]["test_error"] for c in curves) * 100 for j in range(len(alphas))]
        ax.plot(alphas, errors, marker=".", color=cmap(i / max(1, len(stability) - 1)),
                label=f"rewind {r['rewind']}, level {r['level']} (barrier {100 * r['barrier_test']:.2f}%)")
    ax.set_xlabel("interpolation α (0 = copy with other data order, 1 = ticket)")
    ax.set_ylabel("test error (%)")
    ax.set_title(f"{study.preset}: error along the linear path between two copies")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)
