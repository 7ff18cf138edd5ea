"""Read the store, write each study's tables and figures: results.csv (long form), report.md,
report.html (self-contained), claims.json and the PNGs of figures.py."""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import statistics
from pathlib import Path
from typing import Any

from .aggregate import mean_std
from .kinds import BASELINES, KINDS
from .claims import (DEFAULT_MARGIN, HEADER as CLAIMS_HEADER, Claim, family_note, study_claims,
                     warnings as claim_warnings)
from .hardware import mixed_hardware_warning
from .store import CONFIG_FILE, Run, atomic_write, path_safe, read_json, write_json
from .figures import (EARLY_STOP_KINDS, early_levels, plot_accuracy, plot_accuracy_vs_stability, plot_early_stopping,
                      plot_interpolation, plot_stability)
from .study import STABILITY_METRICS, Curve, Study, find_studies, study_hardware, study_key

CLAIMS_FILE = "claims.json"

CLAIMS_TITLE = "Claims of the papers, judged against the noise of the seeds"

CLAIMS_LEGEND = ("Each row: the mean over seeds of the paired difference (same seed on both sides), its two-sided 95% "
                 "Student-t interval, what is tested, the p-value adjusted for the whole table (Holm) and the verdict. "
                 "'A > B' and 'matches or beats' (difference > -margin): holds, contradicted, or undecided. 'A matches "
                 "B' and 'no winning ticket' (two one-sided tests within ±margin): equivalent, not equivalent, or "
                 "undecided. Undecided means these seeds cannot tell: it is not evidence of no difference.")

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

def _write_study(study: Study, out: Path, margin: float = DEFAULT_MARGIN) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    methods, stability = study.methods(), study.stability()
    claims = study_claims(study, margin)
    figures = {"accuracy_vs_weights.png": plot_accuracy(study, methods)}
    if any(c.kind in EARLY_STOP_KINDS and early_levels(c) for c in methods):
        figures["early_stopping.png"] = plot_early_stopping(study, methods)
    if stability:
        main = [r for r in stability if r["settings"] == study.main_settings]  # one settings group per figure
        figures["stability_vs_rewind.png"] = plot_stability(study, main)
        figures["accuracy_vs_stability.png"] = plot_accuracy_vs_stability(study, claims)
        figures["interpolation.png"] = plot_interpolation(study, main)
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

def _accuracy_table(methods: list[Curve]) -> tuple[list[str], list[list[str]]]:
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

def _stability_table(stability: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
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

def _tables(study: Study, methods: list[Curve], stability: list[dict[str, Any]]) -> dict[str, tuple[list[str], list[list[str]]]]:
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

def missing_parts(study: Study, methods: list[Curve], stability: list[dict[str, Any]]) -> list[str]:
    """What a full study has that this store lacks, as advice."""
    notes = []
    for kind in BASELINES:
        if KINDS[kind].is_the_ticket_at(study.iterations(study.main_rewind)):
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
