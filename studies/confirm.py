"""Held-out confirmation: a regime chosen from the map is judged again on seeds never used to choose it.

The regime map (regime_map.py) picked mnist1d_mlp_scale from ~30 cells with seeds 0..4; a verdict
read off those seeds is selected, and so biased towards what the selection looked for. This script
runs the preset's study (its Preset.plan, the study `make run` runs) on the selection seeds and on
held-out seeds, judges each set's claims as one family (lth.claims: Holm, TOST within --margin), and
writes the two tables side by side. The README's story is written from the held-out column.

    python studies/confirm.py                       # seeds 0..4 (selection) vs 100..109 (held out)
    python studies/confirm.py --held-out 100-114 --store lth_runs_confirm --out studies/results

Writes <out>/confirm.md and confirm.csv. Everything already in the store is reused.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from lth.claims import DEFAULT_MARGIN, Claim, family_note, study_claims
from lth.presets import get_preset
from lth.study import Study, find_studies, study_hardware
from lth.reproduce import default_plan, reproduce
from lth.store import Store
from lth.options import RunOptions
from tables import markdown_table, write_csv


def seed_list(text: str) -> tuple[int, ...]:
    """"0,1,2" or "100-109" (inclusive)."""
    if "-" in text:
        first, last = map(int, text.split("-"))
        return tuple(range(first, last + 1))
    return tuple(int(s) for s in text.split(","))


def judged(store: Store, seeds: tuple[int, ...], margin: float) -> tuple[list[Claim], Study]:
    """The claims of the study restricted to `seeds`, judged as one family."""
    [study] = [s for s in find_studies(store.root) if s.preset]
    mine = Study([r for r in study.runs if r.config.seed in seeds])
    return study_claims(mine, margin), mine


def cell(claim: Claim | None) -> str:
    if claim is None:
        return "–"
    diff, low, high = (f"{claim.difference * (100 if claim.unit == 'points' else 1):+.2f}",
                       f"{claim.low * (100 if claim.unit == 'points' else 1):+.2f}",
                       f"{claim.high * (100 if claim.unit == 'points' else 1):+.2f}")
    verdict = f"**{claim.verdict}**" if claim.verdict in ("holds", "equivalent") else claim.verdict
    return f"{diff} [{low}, {high}] {verdict}" + " (fragile)" * claim.fragile


def side_by_side(columns: dict[str, list[Claim]]) -> list[dict[str, str]]:
    names = list(dict.fromkeys(c.claim for claims in columns.values() for c in claims))
    rows = []
    for name in names:
        found = {label: next((c for c in claims if c.claim == name), None) for label, claims in columns.items()}
        where = next(c.where for c in found.values() if c is not None)
        rows.append({"claim": name, "compared at": where, **{label: cell(c) for label, c in found.items()}})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mnist1d_mlp_scale")
    parser.add_argument("--selection", default="0-4", help="the seeds the regime map chose with (default 0-4)")
    parser.add_argument("--held-out", default="100-109", help="seeds never used to choose (default 100-109)")
    parser.add_argument("--margin", type=float, default=100 * DEFAULT_MARGIN, help="equivalence margin in points")
    parser.add_argument("--store", default="lth_runs_confirm")
    parser.add_argument("--out", default="studies/results")
    args = parser.parse_args(argv)
    config, store = get_preset(args.preset), Store(args.store)
    plan = default_plan(config)
    sets = {"selection": seed_list(args.selection), "held out": seed_list(args.held_out)}
    if set(sets["selection"]) & set(sets["held out"]):
        parser.error("the held-out seeds must not include a selection seed")
    columns, notes = {}, []
    for name, seeds in sets.items():
        began = time.perf_counter()
        reproduce(config, replace(plan, seeds=seeds), store, log=print, options=RunOptions(quiet=True))
        claims, study = judged(store, seeds, args.margin / 100)
        label = f"{name}: seeds {seeds[0]}–{seeds[-1]} ({len(seeds)})"
        columns[label] = claims
        notes.append(f"{label}: {family_note(claims)}; computed on {'; '.join(study_hardware(study)) or 'unrecorded'}; "
                     f"{time.perf_counter() - began:.0f} s")
    rows = side_by_side(columns)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "confirm.csv", rows)
    lines = [*markdown_table(rows), "",
             *[f"- {note}" for note in notes], f"- margin ±{args.margin:g} points; `python studies/confirm.py "
             f"--preset {args.preset} --selection {args.selection} --held-out {args.held_out}`"]
    (out / "confirm.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
