"""Read the store, write the study's tables and figures: results.csv (long form), report.md,
report.html (self-contained) and four PNGs (matplotlib, Agg backend)."""
from __future__ import annotations

import base64
import functools
import csv
import hashlib
import html
import io
import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, NamedTuple

from .aggregate import mean_std
from .kinds import BASELINES, BRANCHES, DATA_ORDER, DENSE, IMP, KINDS, RANDOM_PRUNE, REINIT
from .claims import (DEFAULT_MARGIN, HEADER as CLAIMS_HEADER, STABLER_CLAIM, Claim, family_note, study_claims,
                     warnings as claim_warnings)
from .early_stop import early_stop
from .presets import claims_of
from .hardware import hardware_of, mixed_hardware_warning
from .stability import StabilitySettings
from .steps import Step
from .errors import StoreError
from .store import CONFIG_FILE, METRICS_FILE, Run, Store, atomic_write, path_safe, read_json, read_jsonl, write_json

# One colour per kind (kinds.py), the same in every figure, and the stability plots' own lines.
COLORS = {**{name: kind.color for name, kind in KINDS.items()}, "pruning": "#ff7f0e", "barrier": "#d62728",
          "barrier-train": "#8c564b"}
REWIND_STYLES = ["-", "--", ":", "-."]
STABILITY_METRICS = ("test_accuracy", "pruning_l2", "pruning_l2_normalized", "pruning_angle", "data_order_l2",
                     "data_order_l2_normalized", "data_order_angle", "barrier_test", "barrier_train")


CLAIMS_FILE = "claims.json"
DEFAULT_STABILITY_SETTINGS = StabilitySettings().name  # lth stability's defaults, as in the file name
CLAIMS_TITLE = "Claims of the papers, judged against the noise of the seeds"
CLAIMS_LEGEND = ("Each row: the mean over seeds of the paired difference (same seed on both sides), its two-sided 95% "
                 "Student-t interval, what is tested, the p-value adjusted for the whole table (Holm) and the verdict. "
                 "'A > B' and 'matches or beats' (difference > -margin): holds, contradicted, or undecided. 'A matches "
                 "B' and 'no winning ticket' (two one-sided tests within ±margin): equivalent, not equivalent, or "
                 "undecided. Undecided means these seeds cannot tell: it is not evidence of no difference.")


def study_key(run: Run) -> str:
    """Runs that differ only in seeds, kind and rewind step belong to one study."""
    raw = run.config.to_dict()
    for field in ("seed", "data_seed", "kind", "rewind", "preset", "rewind_optimizer"):
        raw.pop(field)
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:10]


class Curve(NamedTuple):
    label: str
    kind: str
    rewind: str
    levels: dict[int, list[dict[str, Any]]]  # level -> the summaries of that level over seeds


class Study:
    def __init__(self, runs: list[Run]):
        self.runs = runs
        self.preset = next((r.config.preset for r in runs if r.config.preset), "") or runs[0].config.model.name
        self.claim_set = claims_of(self.preset)  # the claims of the preset's paper; generic without a preset
        self._early_stops: dict[tuple[str, int], dict[str, Any]] = {}
        imp = [r for r in runs if r.config.kind == IMP]
        # the main rewind step: the preset's if it has runs, else the one with the longest chains
        self.main_rewind = max({r.config.rewind for r in imp},
                               key=lambda k: (k == runs[0].config.rewind, max((len(r.levels_done()) for r in imp
                                                                             if r.config.rewind == k), default=0)),
                               default=runs[0].config.rewind)

    def levels(self, kind: str, rewind: str | None) -> dict[int, list[dict[str, Any]]]:
        """level -> the summaries of that level over seeds, with the early-stopping point where the level
        kept its evaluations (early_stop_iteration, early_stop_accuracy, early_stop_split)."""
        out: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for run in self.runs:
            if run.config.kind == kind and (rewind is None or run.config.rewind == rewind):
                for level in run.levels_done():
                    out[level].append({**run.summary(level), **self._early_stop(run, level)})
        return dict(sorted(out.items()))

    def _early_stop(self, run: Run, level: int) -> dict[str, Any]:
        """The level's early-stopping point from its metrics.jsonl, read once ({} without evaluations)."""
        key = (run.hash, level)
        if key not in self._early_stops:
            path = run.level_dir(level) / METRICS_FILE
            try:
                found = early_stop(read_jsonl(path)) if path.exists() else None
            except StoreError:
                found = None  # an unreadable log costs this level its early-stopping point, not the report
            self._early_stops[key] = {} if found is None else {
                "early_stop_iteration": found.iteration, "early_stop_accuracy": found.accuracy,
                "early_stop_split": found.split}
        return self._early_stops[key]

    def rewinds(self) -> list[str]:
        """The rewind steps of the IMP chains, earliest first."""
        return sorted({r.config.rewind for r in self.runs if r.config.kind == IMP}, key=self.iterations)

    def iterations(self, rewind: str) -> int:
        """A rewind step in iterations, as the runs resolved it (epochs need the data's epoch length)."""
        step = Step.parse(rewind)
        if step.is_start or step.unit == "it":
            return step.amount
        for run in self.runs:
            if run.config.rewind == rewind:
                for level in run.levels_done():
                    if level > 0 and KINDS[run.config.kind].starts_at_rewind:
                        return run.summary(level)["start_iteration"]
        return step.amount * 10**9  # not resolvable from the store: order epochs after iterations

    def methods(self) -> list[Curve]:
        """Every accuracy-vs-level curve: IMP at each rewind step, then each baseline off each chain."""
        rewinds = self.rewinds()
        curves = [Curve(f"imp rewind {k}", IMP, k, self.levels(IMP, k)) for k in rewinds]
        for kind in (*BASELINES, *(k for k in BRANCHES if KINDS[k].method)):
            for k in rewinds:
                found = self.levels(kind, k)
                if found:
                    curves.append(Curve(kind if k == self.main_rewind else f"{kind} (rewind {k})", kind, k, found))
        return curves

    def dense(self) -> list[float]:
        return [row["test_accuracy"] for row in self.levels(IMP, self.main_rewind).get(0, [])]

    @functools.cached_property
    def stability_rows(self) -> list[dict[str, Any]]:
        """One stability measurement per seed, rewind point, level and settings (interpolation points,
        batch-norm handling, train examples: the file name's part after "stability_")."""
        rows = []
        for run in self.runs:
            if run.config.kind == DATA_ORDER:
                for path in sorted(run.dir.glob("level_*/stability_*.json")):
                    rows.append({**read_json(path), "settings": path.stem.removeprefix("stability_")})
        return rows

    @functools.cached_property
    def main_settings(self) -> str | None:
        """The stability settings with the most measurements (claims are judged on those alone)."""
        counts = Counter(row["settings"] for row in self.stability_rows)
        return max(counts, key=lambda s: (counts[s], s == DEFAULT_STABILITY_SETTINGS)) if counts else None

    def stability(self) -> list[dict[str, Any]]:
        """Stability rows (one per settings, rewind point and level), aggregated over seeds: measurements
        made with different settings are never averaged together."""
        grouped: dict[tuple[bool, str, int, int], list[dict[str, Any]]] = defaultdict(list)
        for row in self.stability_rows:
            grouped[(row["settings"] != self.main_settings, row["settings"], row["rewind_iteration"],
                     row["level"])].append(row)
        rows = []
        for (*_, level), found in sorted(grouped.items()):
            row = {k: found[0][k] for k in ("rewind", "rewind_iteration", "level", "weights_remaining", "batch_norm",
                                            "settings")}
            row["seeds"] = len(found)
            for metric in STABILITY_METRICS:
                row[metric], row[f"{metric}_std"] = mean_std([r[metric] for r in found])
            row["curves"] = [r["curve"] for r in found]
            row["runs"] = [r["run"] for r in found]
            rows.append(row)
        return rows


def find_studies(store_or_run: str | Path) -> list[Study]:
    path = Path(store_or_run)
    if (path / CONFIG_FILE).exists():  # a run directory: its study lives in the parent store
        store = Store(path.parent)
        key = study_key(Run(store.root, next(r.config for r in store.runs() if r.dir == path)))
        runs = [r for r in store.runs() if study_key(r) == key]
    else:
        runs = Store(path).runs()
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if run.config.kind == DENSE:  # (shared by the IMP runs; the report reads it as their level 0)
            continue
        groups[study_key(run)].append(run)
    return [Study(group) for _, group in sorted(groups.items())]


def write_report(store_or_run: str | Path, out: str | Path | None = None, margin: float = DEFAULT_MARGIN) -> list[Path]:
    """Write one report per study found; returns the report directories. A store with nothing
    finished yields a report.md that says what is missing. `margin`: of the equivalence claims."""
    path = Path(store_or_run)
    if not path.exists():
        from .errors import ConfigError

        raise ConfigError(f"no store or run at {path}; run `lth reproduce` or `lth imp` first")
    out = Path(out) if out else (path if not (path / CONFIG_FILE).exists() else path.parent) / "report"
    studies = [s for s in find_studies(path) if any(r.levels_done() for r in s.runs)]
    if not studies:
        out.mkdir(parents=True, exist_ok=True)
        _write_text(out / "report.md", f"# lth report\n\nNo finished runs in `{path}` yet: run "
                    f"`lth reproduce --preset mnist1d_mlp --store {path}` (or `lth imp ...`) first.\n")
        return [out]
    written = []
    for study in studies:
        target = out if len(studies) == 1 else out / f"{path_safe(study.preset)}-{study_key(study.runs[0])}"
        written.append(_write_study(study, target, margin))
    if len(studies) > 1:
        _write_index(studies, written, out)
    return written


def _write_index(studies: list[Study], reports: list[Path], out: Path) -> None:
    """report.md / report.html at the top of `out` for a store with several studies: what sets each
    study apart (the config values that differ) and each one's claims, side by side."""
    flat = [_flatten(s.runs[0].config.to_dict()) for s in studies]
    differing = sorted(k for k in set().union(*flat) if k not in ("seed", "data_seed", "kind", "rewind", "preset")
                       and len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1)
    lines = ["# lth report: several studies", "", f"This store holds {len(studies)} studies; each has its own report "
             "(figures, tables, runs). They differ in: " + (", ".join(f"`{k}`" for k in differing) or "nothing hashed"),
             ""]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>lth report: several studies</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>",
             "<h1>lth report: several studies</h1>"]
    for study, report, values in zip(studies, reports, flat):
        link = report.relative_to(out).as_posix()
        setting = ", ".join(f"{k}={json.dumps(values.get(k))}" for k in differing)
        title = f"{study.preset} ({setting})" if setting else study.preset
        claims = json.loads((report / CLAIMS_FILE).read_text())
        rows = [Claim.from_json(c).row() for c in claims["claims"]]
        lines += [f"## {title}", "", f"[report]({link}/report.md) · [html]({link}/report.html)", ""]
        parts += [f"<h2>{html.escape(title)}</h2><p><a href='{html.escape(link)}/report.html'>report</a></p>"]
        if rows:
            lines += ["| " + " | ".join(CLAIMS_HEADER) + " |", "|" + "---|" * len(CLAIMS_HEADER)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            parts += _html_table("claims", (CLAIMS_HEADER, rows))
        lines += [*[f"**Warning:** {w}" for w in claims["warnings"]], ""]
    lines += [CLAIMS_LEGEND, ""]
    parts += [f"<p>{html.escape(CLAIMS_LEGEND)}</p></body></html>"]
    _write_text(out / "report.md", "\n".join(lines))
    _write_text(out / "report.html", "\n".join(parts))


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict) and key != "options" and key != "layer_fractions":
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def study_hardware(study: Study) -> list[str]:
    """The hardware the study's levels were computed on (docs/store.md: What changes the numbers)."""
    return hardware_of([s.get("execution") for r in study.runs for s in map(r.summary, r.levels_done())])


def _write_study(study: Study, out: Path, margin: float = DEFAULT_MARGIN) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    methods, stability = study.methods(), study.stability()
    claims = study_claims(study, margin)
    figures = {"accuracy_vs_weights.png": _plot_accuracy(study, methods)}
    if any(c.kind in EARLY_STOP_KINDS and _early_levels(c) for c in methods):
        figures["early_stopping.png"] = _plot_early_stopping(study, methods)
    if stability:
        main = [r for r in stability if r["settings"] == study.main_settings]  # one settings group per figure
        figures["stability_vs_rewind.png"] = _plot_stability(study, main)
        figures["accuracy_vs_stability.png"] = _plot_accuracy_vs_stability(study, claims)
        figures["interpolation.png"] = _plot_interpolation(study, main)
    for name, png in figures.items():
        with atomic_write(out / name) as handle:
            handle.write(png)
    _write_csv(study, out / "results.csv")
    hardware = study_hardware(study)
    warnings = claim_warnings(claims) + [w for w in [mixed_hardware_warning("this study", hardware)] if w]
    write_json(out / CLAIMS_FILE, {"preset": study.preset, "claims": [c.to_json() for c in claims],
                                   "family": family_note(claims), "margin": margin, "hardware": hardware,
                                   "warnings": warnings})
    tables = {CLAIMS_TITLE: (CLAIMS_HEADER, [c.row() for c in claims])} if claims else {}
    tables.update(_tables(study, methods, stability))
    notes = missing_parts(study, methods, stability)
    legend = f"{CLAIMS_LEGEND} {family_note(claims)}; margin ±{100 * margin:.2g} points."
    head = {"hardware": "; ".join(hardware) or "not recorded (stored by an earlier lth)", "legend": legend}
    _write_text(out / "report.md", _markdown(study, tables, list(figures), notes, warnings, head))
    _write_text(out / "report.html", _html(study, tables, figures, notes, warnings, head))
    return out


def _accuracy_table(methods) -> tuple[list[str], list[list[str]]]:
    header = ["method", "level", "% weights", "test accuracy (mean ± std)", "early-stop iteration (min test loss)",
              "test accuracy there", "seeds"]
    rows = []
    for curve in methods:
        for level, found in curve.levels.items():
            acc, std = mean_std([r["test_accuracy"] for r in found])
            early = ["–", "–"]
            if all("early_stop_iteration" in r for r in found):
                stop, stop_std = mean_std([r["early_stop_iteration"] for r in found])
                there, there_std = mean_std([r["early_stop_accuracy"] for r in found])
                early = [f"{stop:.0f} ± {stop_std:.0f}", f"{100 * there:.2f} ± {100 * there_std:.2f}"]
            rows.append([curve.label, str(level), f"{100 * statistics.fmean(r['weights_remaining'] for r in found):.2f}",
                         f"{100 * acc:.2f} ± {100 * std:.2f}", *early, str(len(found))])
    return header, rows


def _stability_table(stability) -> tuple[list[str], list[list[str]]]:
    header = ["rewind", "level", "% weights", "ticket acc", "pruning L2 (rel.)", "pruning angle",
              "data-order L2 (rel.)", "data-order angle", "barrier test", "barrier train", "seeds", "BN", "settings"]
    rows = [[r["rewind"], str(r["level"]), f"{100 * r['weights_remaining']:.2f}",
             f"{100 * r['test_accuracy']:.2f} ± {100 * r['test_accuracy_std']:.2f}",
             f"{r['pruning_l2']:.2f} ({r['pruning_l2_normalized']:.3f})", f"{r['pruning_angle']:.1f}°",
             f"{r['data_order_l2']:.2f} ({r['data_order_l2_normalized']:.3f})", f"{r['data_order_angle']:.1f}°",
             f"{100 * r['barrier_test']:.2f} ± {100 * r['barrier_test_std']:.2f}",
             f"{100 * r['barrier_train']:.2f} ± {100 * r['barrier_train_std']:.2f}", str(r["seeds"]), r["batch_norm"],
             r["settings"]]
            for r in stability]
    return header, rows


def _runs_table(study: Study) -> tuple[list[str], list[list[str]]]:
    header = ["run (config hash)", "kind", "rewind", "seed", "data seed", "levels done", "executed on"]
    rows = [[r.hash, r.config.kind, r.config.rewind, str(r.config.seed), str(r.config.order_seed),
             str(len(r.levels_done())), _executed(r)]
            for r in sorted(study.runs, key=lambda r: (r.config.kind, r.config.rewind, r.config.seed))]
    return header, rows


def _executed(run: Run) -> str:
    """How the run's levels were executed (docs/store.md, "What changes the numbers"); levels that differ are
    all listed."""
    from .execution import describe_execution

    found = {describe_execution(s["execution"]) for s in map(run.summary, run.levels_done()) if "execution" in s}
    return " | ".join(sorted(found)) or "not recorded (stored by an earlier lth)"


def _tables(study, methods, stability) -> dict[str, tuple[list[str], list[list[str]]]]:
    tables = {"Test accuracy by % of weights remaining": _accuracy_table(methods)}
    if stability:
        tables["Stability by rewind step"] = _stability_table(stability)
    tables["Runs behind these numbers"] = _runs_table(study)
    return tables


def _commands(study: Study) -> list[str]:
    preset = study.preset
    seeds = ",".join(str(s) for s in sorted({r.config.seed for r in study.runs}))
    return [f"lth reproduce --preset {preset} --seeds {seeds}", "lth report <store>",
            f"lth presets {preset}   # the full config; each run's config.json is in <store>/<hash>/"]


def missing_parts(study: Study, methods, stability) -> list[str]:
    """What a full study has that this store lacks, as advice."""
    notes = []
    for kind in BASELINES:
        if KINDS[kind].is_ticket_at_reset and study.iterations(study.main_rewind) == 0:
            continue  # at k = 0 the IMP run is the reset-to-init ticket
        if not any(curve.kind == kind for curve in methods):
            notes.append(f"no `{kind}` baseline yet: `lth branch {kind} --preset {study.preset}` (or `lth reproduce`)")
    if not stability:
        notes.append(f"no stability measurements yet: `lth stability --preset {study.preset} --rewind-points ...` "
                     "(or `lth reproduce`)")
    return notes


def _markdown(study: Study, tables, figures: list[str], notes: list[str], warnings: list[str],
              head: dict[str, str]) -> str:
    lines = [f"# lth report: {study.preset}", "", "Reproduce with:", "", "```", *_commands(study), "```", "",
             f"Computed on: {head['hardware']}", ""]
    if notes:
        lines += ["Missing from this store:", "", *[f"- {n}" for n in notes], ""]

    def table(title: str) -> None:
        header, rows = tables[title]
        lines.extend([f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)])
        lines.extend("| " + " | ".join(row) + " |" for row in rows)
        lines.append("")
        if title == CLAIMS_TITLE:
            lines.extend([head["legend"], "", *[f"**Warning:** {w}" for w in warnings], ""])

    if CLAIMS_TITLE in tables:  # the verdicts first: what the study says, then the evidence
        table(CLAIMS_TITLE)
    for name in figures:
        lines += [f"![{name}]({name})", ""]
    for title in tables:
        if title != CLAIMS_TITLE:
            table(title)
    return "\n".join(lines)


def _html(study: Study, tables, figures: dict[str, bytes], notes: list[str], warnings: list[str],
          head: dict[str, str]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lth report: {html.escape(study.preset)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin-bottom:2em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
             "</style></head><body>", f"<h1>lth report: {html.escape(study.preset)}</h1><pre>",
             html.escape("\n".join(_commands(study))), "</pre>", f"<p>Computed on: {html.escape(head['hardware'])}</p>"]
    if notes:
        parts.append("<p>Missing from this store:</p><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if CLAIMS_TITLE in tables:
        parts += _html_table(CLAIMS_TITLE, tables[CLAIMS_TITLE])
        parts.append(f"<p>{html.escape(head['legend'])}</p>")
        parts += [f"<p><b>Warning:</b> {html.escape(w)}</p>" for w in warnings]
    for name, png in figures.items():
        parts.append(f"<figure><img alt='{name}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
                     f"<figcaption>{name}</figcaption></figure>")
    for title, table in tables.items():
        if title != CLAIMS_TITLE:
            parts += _html_table(title, table)
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_table(title: str, table: tuple[list[str], list[list[str]]]) -> list[str]:
    header, rows = table
    return [f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
            *["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows], "</table>"]


def _write_csv(study: Study, path: Path) -> None:
    """Long form: one row per run, level and metric."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", "kind", "rewind", "seed", "level", "weights_remaining", "metric", "value"])
    for run in sorted(study.runs, key=lambda r: (r.config.kind, r.config.rewind, r.config.seed, r.hash)):
        for level in run.levels_done():
            summary = run.summary(level)
            for metric in ("test_accuracy", "test_loss", "train_loss"):
                writer.writerow([run.hash, run.config.kind, run.config.rewind, run.config.seed, level,
                                 summary["weights_remaining"], metric, summary[metric]])
            for stab in sorted(run.level_dir(level).glob("stability_*.json")):
                row = read_json(stab)
                for metric in STABILITY_METRICS:
                    writer.writerow([row["run"], "stability", row["rewind"], row["seed"], level,
                                     row["weights_remaining"], metric, row[metric]])
    _write_text(path, buffer.getvalue())


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=130)
    plt.close(fig)
    return buffer.getvalue()


def _plot_accuracy(study: Study, methods: list[Curve]) -> bytes:
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
    return _png(fig)


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


def _plot_stability(study: Study, stability) -> bytes:
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
    return _png(fig)


def _plot_accuracy_vs_stability(study: Study, claims: list[Claim]) -> bytes:
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
    return _png(fig)


EARLY_STOP_KINDS = (IMP, REINIT)  # [LTH]'s early-stopping figure: the ticket against random reinitialisation


def _early_levels(curve: Curve) -> dict[int, list[dict[str, Any]]]:
    """The curve's levels whose every seed has an early-stopping point."""
    return {level: rows for level, rows in curve.levels.items() if all("early_stop_iteration" in r for r in rows)}


def _plot_early_stopping(study: Study, methods: list[Curve]) -> bytes:
    """[LTH]'s pair of early-stopping plots: the iteration of minimum loss and the test accuracy there,
    against the weights remaining, for the tickets and random reinitialisation (mean, min-max over seeds)."""
    import matplotlib.pyplot as plt

    curves = [(c, _early_levels(c)) for c in methods if c.kind in EARLY_STOP_KINDS and _early_levels(c)]
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
    return _png(fig)


def _plot_interpolation(study: Study, stability) -> bytes:
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
    return _png(fig)
