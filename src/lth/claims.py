"""The papers' claims, judged against the noise of the seeds at hand, as one family of tests.

Each claim compares two quantities measured on the same seeds (a ticket and a baseline trained from
the same initialisation, or one ticket at two rewind points), so it is tested on the paired
differences d (Student's t over seeds; the table shows their mean and two-sided 95% interval). A
claim is one of three tests, with margin δ (`--margin`, default 1 point):

    greater      "A > B"                  holds / contradicted / undecided   (two-sided t test of d = 0)
    noninferior  "A matches or beats B"   holds / contradicted / undecided   (two-sided t test of d = -δ)
    equivalent   "A matches B", "no winning ticket"                          (two one-sided tests, TOST:
                 equivalent when -δ < d < δ is shown, not equivalent when d is shown beyond ±δ, else undecided)

"undecided" means the seeds cannot tell: it is never evidence of no difference -- only an
"equivalent" verdict says that, and only within its margin. A study's claims are one family: their
p-values are adjusted by Holm's step-down method, so the chance that any verdict in the table is
wrong stays under 5% however many claims it tests. With one seed there is no test ("one seed").
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

from scipy import stats

from .kinds import IMP, KINDS, PRUNING_AT_INIT, RANDOM_PRUNE, REINIT, RESET_INIT

ALPHA = 0.05  # the family-wise error rate of a study's verdicts
DEFAULT_MARGIN = 0.01  # ±1 point: the equivalence / non-inferiority margin (--margin, in points)
MATCHING_MARGIN = 0.002  # [LMC]'s "matching": within 0.2 points of the dense accuracy (the regime map's margin)
GREATER, NONINFERIOR, EQUIVALENT = "greater", "noninferior", "equivalent"
FEW_SEEDS = 3  # fewer seeds than this get a warning: the interval is too wide to judge much


def t95(degrees_of_freedom: int) -> float:
    """The two-sided 95% quantile of Student's t."""
    if degrees_of_freedom < 1:
        raise ValueError("a t interval needs at least two samples")
    return float(stats.t.ppf(0.975, degrees_of_freedom))


@dataclass(frozen=True)
class Claim:
    claim: str  # what the papers say, as "A > B", "A matches B", ...
    source: str  # where they say it
    where: str  # which level / rewind points were compared
    difference: float  # mean over seeds of A - B (accuracy and barrier as fractions, slopes as they are)
    low: float  # the 95% interval of the mean
    high: float
    seeds: int
    verdict: str
    unit: str = "points"  # how the table prints difference/low/high: "points" = 100 x fraction
    test: str = GREATER  # GREATER, NONINFERIOR or EQUIVALENT
    margin: float = 0.0  # δ of a NONINFERIOR or EQUIVALENT test (a fraction, like the difference)
    p: float = math.nan  # the test's p-value alone
    p_holm: float = math.nan  # adjusted for the family of claims it was judged with (= p for a family of one)

    def to_json(self) -> dict[str, Any]:  # strict JSON: no interval is null, not NaN
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Claim:
        return cls(**{k: math.nan if v is None else v for k, v in raw.items()})

    def tested(self) -> str:
        """The hypothesis shown as held, e.g. "> 0", "≥ -1.00", "within ±1.00"."""
        scale = 100.0 if self.unit == "points" else 1.0
        if self.test == EQUIVALENT:
            return f"within ±{scale * self.margin:.2f}"
        return f"> {scale * -self.margin:+.2f}" if self.test == NONINFERIOR else "> 0"

    def row(self) -> list[str]:
        scale, fmt = (100.0, "{:+.2f}") if self.unit == "points" else (1.0, "{:+.3g}")
        interval = "–" if self.seeds < 2 else f"[{fmt.format(scale * self.low)}, {fmt.format(scale * self.high)}]"
        p = "–" if math.isnan(self.p_holm) else f"{self.p_holm:.2g}"
        return [self.claim, self.where, f"{fmt.format(scale * self.difference)} {self.unit}", interval,
                str(self.seeds), self.tested(), p, self.verdict, self.source]


HEADER = ["claim", "compared at", "mean difference", "95% interval", "seeds", "tested", "p (Holm)", "verdict",
          "source"]


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


def _one_sided(mean: float, se: float, df: int, null: float, above: bool) -> float:
    """p of the one-sided t test of "d <= null" (above=True: evidence d > null) or "d >= null"."""
    if se == 0.0:  # every seed gave the same difference: the side is certain, or nothing is shown
        return 0.0 if (mean > null if above else mean < null) else 1.0
    t = (mean - null) / se
    return float(stats.t.sf(t, df) if above else stats.t.cdf(t, df))


def _shown(test: str, margin: float, difference: float) -> str:
    """The verdict a claim's p-value stands for: the side of its null hypothesis the mean lies on."""
    if test == EQUIVALENT:
        return "equivalent" if -margin < difference < margin else "not equivalent"
    return "holds" if difference > (-margin if test == NONINFERIOR else 0.0) else "contradicted"


def p_value(differences: Sequence[float], test: str = GREATER, margin: float = 0.0) -> float:
    """The p-value of one claim on its paired differences, for the verdict `_shown` names (NaN for one seed)."""
    values = list(differences)
    if len(values) < 2:
        return math.nan
    mean, df = statistics.fmean(values), len(values) - 1
    se = statistics.stdev(values) / math.sqrt(len(values))
    if test == EQUIVALENT:
        if _shown(test, margin, mean) == "equivalent":  # TOST: both "d <= -δ" and "d >= δ" rejected
            return max(_one_sided(mean, se, df, -margin, True), _one_sided(mean, se, df, margin, False))
        return min(_one_sided(mean, se, df, margin, True), _one_sided(mean, se, df, -margin, False))  # beyond ±δ
    null = -margin if test == NONINFERIOR else 0.0
    return min(1.0, 2 * min(_one_sided(mean, se, df, null, True), _one_sided(mean, se, df, null, False)))


def verdict(p: float, shown: str, alpha: float = ALPHA) -> str:
    if math.isnan(p):
        return "one seed"
    return shown if p <= alpha else "undecided"


def judge(claim: str, source: str, where: str, a: Mapping[int, float], b: Mapping[int, float] | None = None,
          margin: float = 0.0, unit: str = "points", test: str = GREATER) -> Claim | None:
    """Judge a claim on the seeds a and b share (b omitted: a against 0) as a family of one (`holm` judges
    a study's claims together); None without a shared seed. `margin` is δ of NONINFERIOR / EQUIVALENT."""
    seeds = sorted(set(a) & set(b)) if b is not None else sorted(a)
    if not seeds:
        return None
    differences = [a[s] - (b[s] if b is not None else 0.0) for s in seeds]
    mean, low, high = paired_interval(differences)
    margin = margin if test != GREATER else 0.0
    p = p_value(differences, test, margin)
    return Claim(claim, source, where, mean, low, high, len(seeds), verdict(p, _shown(test, margin, mean)), unit, test,
                 margin, p, p)


def holm(claims: Sequence[Claim], alpha: float = ALPHA) -> list[Claim]:
    """The claims judged as one family: Holm's step-down adjusted p-values, verdicts at `alpha`."""
    tested = sorted((c.p, i) for i, c in enumerate(claims) if not math.isnan(c.p))
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return [replace(c, p_holm=adjusted[i], verdict=verdict(adjusted[i], _shown(c.test, c.margin, c.difference), alpha))
            if i in adjusted else c for i, c in enumerate(claims)]


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys on xs (NaN when xs do not vary)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else math.nan


def family_note(claims: Sequence[Claim], alpha: float = ALPHA) -> str:
    """How many claims the table tests as one family, and how."""
    tested = sum(not math.isnan(c.p) for c in claims)
    return (f"{tested} claim{'s' * (tested != 1)} tested as one family: p-values adjusted by Holm's method, verdicts "
            f"at a family-wise error rate of {alpha:.0%}")


def warnings(claims: Sequence[Claim]) -> list[str]:
    fewest = min((c.seeds for c in claims), default=0)
    if claims and fewest < FEW_SEEDS:
        return [f"only {fewest} seed{'s' * (fewest != 1)} behind some claims: with fewer than {FEW_SEEDS} the 95% "
                "intervals are too wide to judge most differences; add seeds with --seeds (finished runs are reused)"]
    return []


def study_claims(study, margin: float = DEFAULT_MARGIN) -> list[Claim]:
    """Every claim a study (lth.report.Study) can test, from the runs it has.

    Per rewind point k with an IMP chain, at the chain's deepest level: the ticket matches the dense
    network (within `margin`), and beats each baseline trained off that chain (reset-init only where
    k > 0: at k = 0 it is the IMP run itself) and each pruning-at-init method trained off it; at k = 0,
    also [LTH]/[SCALE]'s "no winning ticket": the ticket is equivalent to random reinitialisation.
    Across rewind points: a ticket rewound to k > 0 beats the ticket reset to 0 (at the deepest level
    both chains reach); the barrier falls from the earliest to the latest k;
    stabler tickets are more accurate (slope of accuracy on barrier across k, per seed). Judged as one
    family (`holm`)."""
    claims: list[Claim | None] = []
    dense = _by_seed(study.levels(IMP, study.main_rewind).get(0, []))
    chains = {k: study.levels(IMP, k) for k in study.rewinds()}
    for k, levels in chains.items():
        deepest = max(levels)
        if deepest == 0:
            continue
        ticket, where = _by_seed(levels[deepest]), _where(levels[deepest], deepest, f"rewind {k}")
        claims.append(judge(f"ticket (rewind {k}) matches or beats dense", "[LTH] §1; [SCALE] §3", where, ticket,
                            dense, margin, test=NONINFERIOR))
        for kind, name, source in BASELINE_CLAIMS:
            rows = study.levels(kind, k).get(deepest)
            if rows and not (KINDS[kind].is_ticket_at_reset and study.iterations(k) == 0):
                claims.append(judge(f"ticket (rewind {k}) > {name}", source, where, ticket, _by_seed(rows)))
            if rows and kind == REINIT and study.iterations(k) == 0:
                claims.append(judge(f"no winning ticket at rewind {k}: ticket matches {name}",
                                    "[LTH] §5 (deep networks); [SCALE] §3", where, ticket, _by_seed(rows), margin,
                                    test=EQUIVALENT))
        claims += _pruning_at_init_claims(study, k, levels, margin)
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
    return holm([c for c in claims if c is not None])


def _pruning_at_init_claims(study, k: str, chain: Mapping[int, Sequence[Mapping[str, Any]]],
                            margin: float) -> list[Claim | None]:
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
                                _by_seed(shuffled), method, margin, test=EQUIVALENT))
    return claims


BASELINE_CLAIMS = tuple((kind, KINDS[kind].label, source) for kind, source in (
    (REINIT, "[LTH] §2, §5; [SCALE] §3"), (RANDOM_PRUNE, "[LTH] §2; [SCALE] §3; [LMC] §4"),
    (RESET_INIT, "[SCALE] §3 (late resetting)")))


def _by_seed(summaries: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    return {int(s["seed"]): s["test_accuracy"] for s in summaries}


def _where(summaries: Sequence[Mapping[str, Any]], level: int, extra: str = "") -> str:
    weights = statistics.fmean(s["weights_remaining"] for s in summaries)
    return f"level {level} ({100 * weights:.1f}% weights)" + (f", {extra}" if extra else "")
