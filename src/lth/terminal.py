"""What the CLI prints: the tables of levels, runs and claims (the commands themselves are in cli.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .store import read_json


def print_levels(levels: list[dict[str, Any]], title: str) -> None:
    """The levels of a run (or the mean ± std of several seeds'), one line each."""
    print(title)
    spread = "test_accuracy_std" in levels[0]
    std_header = f"{'± std':>8}" if spread else ""
    print(f"{'level':>5}  {'% weights':>10}  {'test acc':>8}{std_header}  {'iterations':>10}  {'seconds':>8}")
    for row in levels:
        std = f"  {100 * row['test_accuracy_std']:>6.2f}" if spread else ""
        print(f"{row['level']:>5}  {100 * row['weights_remaining']:>9.2f}%  {100 * row['test_accuracy']:>7.2f}%{std}"
              f"  {row['iterations']:>10}  {row['seconds']:>8.1f}")


def claims_json(reports: list[Path]) -> list[dict[str, Any]]:
    """Each report's claims.json (preset, claims, warnings), in report order."""
    from .report import CLAIMS_FILE

    return [read_json(r / CLAIMS_FILE) for r in reports if (r / CLAIMS_FILE).exists()]


def print_claims(reports: list[Path]) -> None:
    """Each report's claims table, with its family note and warnings."""
    from .claims import Claim, text_table

    for found in claims_json(reports):
        claims = [Claim.from_json(c) for c in found["claims"]]
        if claims:
            print(f"\nclaims of the papers on {found['preset']}, judged against the noise of the seeds "
                  "(paired differences, 95% t intervals):")
            print(text_table(claims))
            if "family" in found:
                print(f"{found['family']}; margin ±{100 * found['margin']:.2g} points; computed on "
                      f"{'; '.join(found['hardware']) or 'hardware not recorded'}")
            for warning in found["warnings"]:
                print(f"warning: {warning}")


def print_runs(rows: list[dict[str, Any]]) -> None:
    """`lth ls`: one line per run, with its status and how its levels were executed."""
    from .execution import describe_execution

    print(f"{'run':<16}  {'preset':<17} {'kind':<12} {'rewind':>7} {'seed':>4} {'levels':>6} {'best acc':>8} {'% weights':>9}  "
          "status; executed on")
    for r in rows:
        best = f"{100 * r['best_accuracy']:.2f}%" if r["best_accuracy"] is not None else "-"
        weights = f"{100 * r['min_weights']:.2f}" if r["min_weights"] is not None else "-"
        executed = " | ".join(describe_execution(e) for e in r["executions"]) or "-"
        mixed = " (levels differ)" if len(r["executions"]) > 1 else ""
        print(f"{r['run']:<16}  {r['preset']:<17} {r['kind']:<12} {r['rewind'] or '-':>7} {r['seed']:>4} {r['levels_done']:>6} "
              f"{best:>8} {weights:>9}  {r['status']}; {executed}{mixed}")
