"""The studies' output tables: a CSV with a header row, and the same rows as a Markdown table."""
from __future__ import annotations

import csv
from pathlib import Path


def write_csv(path: Path, rows: list[dict]) -> None:
    """`rows` (dicts with the same keys, in column order) as a CSV file with a header."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: list[dict]) -> list[str]:
    """`rows` as the lines of a Markdown table, its header from the first row's keys."""
    head = list(rows[0])
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(str(row[k]) for k in head) + " |" for row in rows]]
