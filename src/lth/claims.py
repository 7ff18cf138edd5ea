"""The papers' claims, judged against the noise of the seeds at hand.

Each claim compares two quantities measured on the same seeds (a ticket and a baseline trained from
the same initialisation, or one ticket at two rewind points), so the test is on the paired
differences: their mean with a two-sided 95% Student-t interval over seeds, and a verdict

    holds         the whole interval lies on the claimed side (beyond the claim's margin)
    contradicted  the whole interval lies on the other side
    within noise  the interval straddles the margin: these seeds cannot tell

A "matching" claim ([LMC]: within 0.2 points of the dense network) has margin -0.2 points; every
other claim has margin 0. With one seed there is no interval and the verdict is "one seed".
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from .branches import PRUNING_AT_INIT, RANDOM_PRUNE, REINIT, RESET_INIT
from .imp import IMP

# Two-sided 95% quantiles of Student's t with 1..30 degrees of freedom (standard tables); beyond 30
# the normal 1.96 is within 2% of the t quantile.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
MATCHING_MARGIN = 0.002  # [LMC]'s "matching": within 0.2 points of the dense accuracy
FEW_SEEDS = 3  # fewer seeds than this get a warning: the interval is too wide to judge much


def t95(degrees_of_freedom: int) -> float:
    if degrees_of_freedom < 1:
        raise ValueError("a t interval needs at least two samples")
    return _T95[degrees_of_freedom - 1] if degrees_of_freedom <= len(_T95) else 1.96


@dataclass(frozen=True)
class Claim:
    claim: str  # what the papers say, as "A > B"
    source: str  # where they say it
    where: str  # which level / rewind points were compared
    difference: float  # mean over seeds of A - B (accuracy and barrier as fractions, slopes as they are)
    low: float  # the 95% interval of the mean
    high: float
    seeds: int
    verdict: str
    unit: str = "points"  # how the table prints difference/low/high: "points" = 100 x fraction

    def to_json(self) -> dict[str, Any]:  # strict JSON: no interval is null, not NaN
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Claim:
        return cls(**{k: math.nan if v is None else v for k, v in raw.items()})

    def row(self) -> list[str]:
        scale, fmt = (100.0, "{:+.2f}") if self.unit == "points" else (1.0, "{:+.3g}")
        interval = "–" if self.seeds < 2 else f"[{fmt.format(scale * self.low)}, {fmt.format(scale * self.high)}]"
        return [self.claim, self.where, f"{fmt.format(scale * self.difference)} {self.unit}", interval,
                str(self.seeds), self.verdict, self.source]


HEADER = ["claim", "compared at", "mean difference", "95% interval", "seeds", "verdict", "source"]


def text_table(claims: Sequence[Claim]) -> str:
    """The claims as an aligned plain-text table (for the terminal)."""
    rows = [HEADER[:-1]] + [c.row()[:-1] for c in claims]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def paired_interval(differences: Sequence[float]) -> tuple[float, float, float]:
    """Mean of the paired differences and its two-sided 95% t interval (NaN bounds for one value)."""
    values = list(differences)
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def verdict(low: float, high: float, margin: float = 0.0) -> str:
    """The claim is "difference > margin"; see the module docstring."""
    if math.isnan(low):
        return "one seed"
    if low > margin:
        return "holds"
    if high < margin:
        return "contradicted"
    return "within noise"


def judge(claim: str, source: str, where: str, a: Mapping[int, float], b: Mapping[int, float] | None = None,
          margin: float = 0.0, unit: str = "points") -> Claim | None:
    """Judge "a > b + margin" on the seeds both have (b omitted: "a > margin"); None without a shared seed."""
    seeds = sorted(set(a) & set(b)) if b is not None else sorted(a)
    if not seeds:
        return None
    mean, low, high = paired_interval([a[s] - (b[s] if b is not None else 0.0) for s in seeds])
    return Claim(claim, source, where, mean, low, high, len(seeds), verdict(low, high, margin), unit)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys on xs (NaN when xs do not vary)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else math.nan


def warnings(claims: Sequence[Claim]) -> list[str]:
    fewest = min((c.seeds for c in claims), default=0)
    if claims and fewest < FEW_SEEDS:
        return [f"only {fewest} seed{'s' * (fewest != 1)} behind some claims: with fewer than {FEW_SEEDS} the 95% "
                "intervals are too wide to judge most differences; add seeds with --seeds (finished runs are reused)"]
    return []


def study_claims(study) -> list[Claim]:
    """Every claim a study (lth.report.Study) can test, from the runs it has.

    Per rewind point k with an IMP chain, at the chain's deepest level: the ticket matches the dense
    network, and beats each baseline trained off that chain (reset-init only where k > 0: at k = 0 it
    is the IMP run itself) and each pruning-at-init method trained off it. Across rewind points: a ticket rewound to k > 0 beats the ticket reset to
    0 (at the deepest level both chains reach); the barrier falls from the earliest to the latest k;
    stabler tickets are more accurate (slope of accuracy on barrier across k, per seed)."""
    claims: list[Claim | None] = []
    dense = _by_seed(study.levels(IMP, study.main_rewind).get(0, []))
    chains = {k: study.levels(IMP, k) for k in study.rewinds()}
    for k, levels in chains.items():
        deepest = max(levels)
        if deepest == 0:
            continue
        ticket, where = _by_seed(levels[deepest]), _where(levels[deepest], deepest, f"rewind {k}")
        claims.append(judge(f"ticket (rewind {k}) matches or beats dense", "[LTH] §1; [SCALE] §3", where, ticket,
                            dense, margin=-MATCHING_MARGIN))
        for kind, name, source in BASELINE_CLAIMS:
            rows = study.levels(kind, k).get(deepest)
            if rows and not (kind == RESET_INIT and study.iterations(k) == 0):
                claims.append(judge(f"ticket (rewind {k}) > {name}", source, where, ticket, _by_seed(rows)))
        claims += _pruning_at_init_claims(study, k, levels)
    reset = next((k for k in chains if study.iterations(k) == 0), None)
    for k, levels in chains.items():
        if reset is None or k == reset:
            continue
        common = max(set(levels) & set(chains[reset]))
        if common > 0:
            claims.append(judge(f"ticket rewound to {k} > ticket reset to 0", "[SCALE] §3; [LMC] §4",
                                _where(levels[common], common), _by_seed(levels[common]),
                                _by_seed(chains[reset][common])))
    rows = [r for r in study.stability_rows if r["settings"] == study.main_settings]
    if rows:
        level = max(r["level"] for r in rows)
        at_level = sorted((r for r in rows if r["level"] == level), key=lambda r: r["rewind_iteration"])
        points = sorted({r["rewind_iteration"] for r in at_level})
        if len(points) > 1:
            first = {r["seed"]: r["barrier_test"] for r in at_level if r["rewind_iteration"] == points[0]}
            last = {r["seed"]: r["barrier_test"] for r in at_level if r["rewind_iteration"] == points[-1]}
            names = {r["rewind_iteration"]: r["rewind"] for r in at_level}
            where = f"level {level} ({100 * at_level[0]['weights_remaining']:.1f}% weights)"
            claims.append(judge(f"barrier falls from rewind {names[points[0]]} to {names[points[-1]]}",
                                "[SCALE] §4; [LMC] §4", where, first, last))
            slopes = {}
            for seed in {r["seed"] for r in at_level}:
                mine = [r for r in at_level if r["seed"] == seed]
                value = slope([r["barrier_test"] for r in mine], [r["test_accuracy"] for r in mine])
                if len(mine) > 1 and not math.isnan(value):
                    slopes[seed] = -value  # the claim: accuracy falls as the barrier grows
            claims.append(judge("stabler tickets are more accurate (−Δacc/Δbarrier > 0)", "[SCALE] §4", where
                                + f", over rewind {', '.join(names[p] for p in points)}", slopes, unit="per unit"))
    return [c for c in claims if c is not None]


def _pruning_at_init_claims(study, k: str, chain: Mapping[int, Sequence[Mapping[str, Any]]]) -> list[Claim | None]:
    """[PaI]: at the sparsest level each method reaches, IMP's ticket beats the method, and shuffling
    the method's mask within each layer does not hurt it (it matches the unshuffled mask)."""
    claims: list[Claim | None] = []
    for kind in PRUNING_AT_INIT:
        found = study.levels(kind, k)
        if not found or max(found) not in chain:
            continue
        level = max(found)
        method, where = _by_seed(found[level]), _where(found[level], level, f"rewind {k}")
        claims.append(judge(f"ticket (rewind {k}) > {kind}", "[PaI] §4", where, _by_seed(chain[level]), method))
        shuffled = study.levels(f"{kind}+shuffle", k).get(level)
        if shuffled:
            claims.append(judge(f"{kind} shuffled within layers matches {kind}", "[PaI] §5", where,
                                _by_seed(shuffled), method, margin=-MATCHING_MARGIN))
    return claims


BASELINE_CLAIMS = ((REINIT, "random reinitialisation", "[LTH] §2, §5; [SCALE] §3"),
                   (RANDOM_PRUNE, "random pruning", "[LTH] §2; [SCALE] §3; [LMC] §4"),
                   (RESET_INIT, "reset to init", "[SCALE] §3 (late resetting)"))


def _by_seed(summaries: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    return {int(s["seed"]): s["test_accuracy"] for s in summaries}


def _where(summaries: Sequence[Mapping[str, Any]], level: int, extra: str = "") -> str:
    weights = statistics.fmean(s["weights_remaining"] for s in summaries)
    return f"level {level} ({100 * weights:.1f}% weights)" + (f", {extra}" if extra else "")
