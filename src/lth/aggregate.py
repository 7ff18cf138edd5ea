"""Mean and spread over seeds: the rows of several runs that differ only in their seeds."""
from __future__ import annotations

import statistics
from typing import Any, Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = list(values)
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate_rows(per_seed: Sequence[Sequence[dict[str, Any]]], metrics: Sequence[str],
                   key: str = "level") -> list[dict[str, Any]]:
    """Rows matched by `key` across seeds; each metric becomes its mean, plus `<metric>_std` and
    `<metric>_per_seed`. Other fields are taken from the first seed's row."""
    rows = []
    for matched in zip(*per_seed):
        if len({row[key] for row in matched}) != 1:
            raise ValueError(f"rows do not line up by {key!r}")
        row = dict(matched[0])
        row["seeds"] = [r.get("seed") for r in matched]
        for metric in metrics:
            values = [r[metric] for r in matched]
            row[metric], row[f"{metric}_std"] = mean_std(values)
            row[f"{metric}_per_seed"] = values
        rows.append(row)
    return rows
