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

Which claims a study is judged on is the source paper of its preset (`ClaimSet`): [LTH]'s for LeNet and
Conv-n (winning tickets at reset, learning faster), [SCALE]/[LMC]'s for deep networks at high rates (no
ticket at reset, one when rewound, stability); a config without a preset gets every comparison its runs
allow, labelled "generic", not a paper's claim. A verdict near the threshold is marked fragile
(`mark_fragile`): another float order or one seed fewer may turn it.
"""
from __future__ import annotations

import enum
import functools
import math
import statistics
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Mapping, Protocol, Sequence

from scipy import stats

from .kinds import IMP, KINDS, PRUNING_AT_INIT, RANDOM_PRUNE, REINIT, RESET_INIT, SanityCheck, sanity_kind

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
    paired: tuple[tuple[int, float], ...] = ()  # (seed, difference) behind the mean: leave-one-seed-out reruns it
    fragile: bool = False  # the verdict is near the threshold or turns without one seed (`mark_fragile`)

    def to_json(self) -> dict[str, Any]:  # strict JSON: no interval is null, not NaN
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Claim:
        values: dict[str, Any] = {k: math.nan if v is None else v for k, v in raw.items()}
        values["paired"] = tuple((int(s), float(d)) for s, d in values.get("paired", ()))
        return cls(**values)

    def tested(self) -> str:
        """The hypothesis shown as held, e.g. "> 0", "≥ -1.00", "within ±1.00"."""
        scale = 100.0 if self.unit == "points" else 1.0
        if self.test == EQUIVALENT:
            return f"within ±{scale * self.margin:.2f}"
        return f"> {scale * -self.margin:+.2f}" if self.test == NONINFERIOR else "> 0"

    def row(self) -> list[str]:
        scale, fmt = UNIT_FORMATS.get(self.unit, (1.0, "{:+.3g}"))
        interval = "–" if self.seeds < 2 else f"[{fmt.format(scale * self.low)}, {fmt.format(scale * self.high)}]"
        p = "–" if math.isnan(self.p_holm) else f"{self.p_holm:.2g}"
        return [self.claim, self.where, f"{fmt.format(scale * self.difference)} {self.unit}", interval,
                str(self.seeds), self.tested(), p, self.verdict + " (fragile)" * self.fragile, self.source]


UNIT_FORMATS = {"points": (100.0, "{:+.2f}"), "iterations": (1.0, "{:+.0f}")}  # (scale, format) of a unit


HEADER = ["claim", "compared at", "mean difference", "95% interval", "seeds", "tested", "p (Holm)", "verdict",
          "source"]


def text_table(claims: Sequence[Claim]) -> str:
    """The claims as an aligned plain-text table (for the terminal), each with its source."""
    rows = [HEADER] + [c.row() for c in claims]
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
                 margin, p, p, tuple(zip(seeds, differences)))


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


def is_near_threshold(p_holm: float, alpha: float = ALPHA) -> bool:
    """A Holm p within a factor 4 of alpha: another float order (another CPU, seeds stacked or not) moved
    make run's "no winning ticket" from p 0.014 to 0.085, across the threshold."""
    return alpha / 4 <= p_holm <= 4 * alpha


def mark_fragile(claims: Sequence[Claim], alpha: float = ALPHA) -> list[Claim]:
    """The family with each verdict marked fragile where its Holm p is near alpha (`is_near_threshold`), or
    where judging the family again without one of its seeds (each in turn) changes it. Leaving a seed out
    is only asked of claims that keep two seeds: with fewer there is no test."""
    turned: set[int] = set()
    for seed in sorted({s for c in claims for s, _ in c.paired}):
        without = holm([_without_seed(c, seed) for c in claims], alpha)
        turned |= {i for i, (c, w) in enumerate(zip(claims, without)) if w.seeds >= 2 and w.verdict != c.verdict}
    return [replace(c, fragile=not math.isnan(c.p_holm) and (is_near_threshold(c.p_holm, alpha) or i in turned))
            for i, c in enumerate(claims)]


def _without_seed(claim: Claim, seed: int) -> Claim:
    """The claim judged alone on its paired differences without `seed` (unchanged if it lacks that seed)."""
    kept = [d for s, d in claim.paired if s != seed]
    if len(kept) == len(claim.paired) or not kept:
        return claim
    mean = statistics.fmean(kept)
    p = p_value(kept, claim.test, claim.margin)
    return replace(claim, difference=mean, seeds=len(kept), p=p, p_holm=p,
                   verdict=verdict(p, _shown(claim.test, claim.margin, mean)))


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


class ClaimSet(enum.Enum):
    """The paper whose claims a study is judged on, named by its preset (presets.py)."""

    LTH = "[LTH]"  # LeNet, Conv-2/4/6 (and mnist1d_mlp_lth): winning tickets at reset, learning faster
    SCALE = "[SCALE]/[LMC]"  # deep networks at high rates: no ticket at reset, one when rewound, stability
    GENERIC = "generic"  # no preset: every comparison the runs allow, none of them a paper's claim


class At(enum.Enum):
    """Where on the rewind axis a chain's claim is made: the papers claim different things at each."""

    RESET = "k = 0"
    REWOUND = "k > 0"


class Comparison(enum.Enum):
    DENSE = "ticket matches or beats dense"
    REINIT = "ticket > random reinitialisation"
    NO_TICKET = "no winning ticket: ticket matches random reinitialisation"
    RANDOM_PRUNE = "ticket > random pruning"
    RESET_INIT = "ticket > reset to init (late resetting)"
    FASTER_THAN_DENSE = "ticket's early-stop iteration earlier than dense's"
    FASTER_THAN_REINIT = "ticket's early-stop iteration earlier than reinit's"
    REWOUND_BEATS_RESET = "ticket rewound to k > ticket reset to 0"
    BARRIER_FALLS = "barrier falls from the first to the last rewind point"
    STABLER_MORE_ACCURATE = "stabler tickets are more accurate"


GENERIC_SOURCE = "generic comparison (no preset)"
_EARLY = "(early stopping)"
# What each paper claims for its networks, and where it says so ([LTH] §2: LeNet; §3: Conv-2/4/6; §4: VGG and
# ResNet at high rates). A comparison a paper does not make for its networks is not judged in its studies.
SOURCES: dict[ClaimSet, dict[tuple[Comparison, At], str]] = {
    ClaimSet.LTH: {
        (Comparison.DENSE, At.RESET): "[LTH] §2–3",
        (Comparison.REINIT, At.RESET): "[LTH] §2–3",
        (Comparison.RANDOM_PRUNE, At.RESET): "[LTH] §2–3",
        (Comparison.FASTER_THAN_DENSE, At.RESET): f"[LTH] §2–3 {_EARLY}",
        (Comparison.FASTER_THAN_REINIT, At.RESET): f"[LTH] §2–3 {_EARLY}",
    },
    ClaimSet.SCALE: {
        (Comparison.NO_TICKET, At.RESET): "[LTH] §4; [SCALE] §3",
        (Comparison.DENSE, At.REWOUND): "[SCALE] §3",
        (Comparison.REINIT, At.REWOUND): "[SCALE] §3",
        (Comparison.RANDOM_PRUNE, At.REWOUND): "[SCALE] §3; [LMC] §4",
        (Comparison.RESET_INIT, At.REWOUND): "[SCALE] §3 (late resetting)",
        (Comparison.REWOUND_BEATS_RESET, At.REWOUND): "[SCALE] §3; [LMC] §4",
        (Comparison.BARRIER_FALLS, At.REWOUND): "[SCALE] §4; [LMC] §4",
        (Comparison.STABLER_MORE_ACCURATE, At.REWOUND): "[SCALE] §4",
    },
}
# [LTH] §2: LeNet's tickets learn faster down to 21% of the weights, slower beyond: "learns faster" is judged
# at the sparsest level that keeps at least this fraction.
FASTER_DOWN_TO = 0.21


def source(claim_set: ClaimSet, comparison: Comparison, at: At) -> str | None:
    """Where the claim set's paper makes this comparison for a chain `at` (None: it does not)."""
    if claim_set is ClaimSet.GENERIC:
        return GENERIC_SOURCE
    return SOURCES[claim_set].get((comparison, at))


class StudyRecord(Protocol):
    """What the claims read of a study: lth.study.Study, which lies above this module (it takes its
    claim set from the presets, which take ClaimSet from here)."""

    claim_set: ClaimSet
    main_rewind: str

    def levels(self, kind: str, rewind: str | None) -> dict[int, list[dict[str, Any]]]: ...

    def rewinds(self) -> list[str]: ...

    def iterations(self, rewind: str) -> int: ...

    @property
    def stability_rows(self) -> list[dict[str, Any]]: ...

    @property
    def main_settings(self) -> str | None: ...


def study_claims(study: StudyRecord, margin: float = DEFAULT_MARGIN) -> list[Claim]:
    """The claims of the study's paper (`study.claim_set`) it can test, from the runs it has.

    Per rewind point k with an IMP chain, at the chain's deepest level: the ticket matches the dense
    network (within `margin`) and beats each baseline trained off that chain (reset-init only where
    k > 0: at k = 0 it is the IMP run itself); at k = 0 also "no winning ticket" (the ticket is equivalent
    to random reinitialisation); "learns faster" (early-stop iteration, `early_stop.py`) at the sparsest
    level with >= 21% of the weights; [PaI]'s methods where they were trained. Across rewind points: a
    ticket rewound to k > 0 beats the ticket reset to 0 (at the deepest level both chains reach); the
    barrier falls from the earliest to the latest k; stabler tickets are more accurate (slope of accuracy
    on barrier across k, per seed). Each only where the paper claims it (`SOURCES`). Judged as one family
    (`holm`), fragile verdicts marked (`mark_fragile`)."""
    claims: list[Claim | None] = []
    dense_rows = study.levels(IMP, study.main_rewind).get(0, [])
    dense = _by_seed(dense_rows)
    chains = {k: study.levels(IMP, k) for k in study.rewinds()}
    for k, levels in chains.items():
        deepest = max(levels)
        if deepest == 0:
            continue
        at = At.RESET if study.iterations(k) == 0 else At.REWOUND
        claim_source = functools.partial(source, study.claim_set, at=at)
        ticket, where = _by_seed(levels[deepest]), _where(levels[deepest], deepest, f"rewind {k}")
        if found := claim_source(Comparison.DENSE):
            claims.append(judge(f"ticket (rewind {k}) matches or beats dense", found, where, ticket, dense, margin,
                                test=NONINFERIOR))
        for kind, comparison in BASELINE_COMPARISONS:
            rows = study.levels(kind, k).get(deepest)
            found = claim_source(comparison)
            if rows and found and not KINDS[kind].is_the_ticket_at(study.iterations(k)):
                claims.append(judge(f"ticket (rewind {k}) > {KINDS[kind].label}", found, where, ticket, _by_seed(rows)))
            if rows and kind == REINIT and (found := claim_source(Comparison.NO_TICKET)):
                claims.append(judge(f"no winning ticket at rewind {k}: ticket matches {KINDS[kind].label}", found,
                                    where, ticket, _by_seed(rows), margin, test=EQUIVALENT))
        claims += _faster_claims(study, k, levels, dense_rows, claim_source)
        claims += _pruning_at_init_claims(study, k, levels, margin)
    reset = next((k for k in chains if study.iterations(k) == 0), None)
    rewound_source = source(study.claim_set, Comparison.REWOUND_BEATS_RESET, At.REWOUND)
    for k, levels in chains.items():
        if reset is None or k == reset or not rewound_source:
            continue
        common = max(set(levels) & set(chains[reset]))
        if common > 0:
            claims.append(judge(f"ticket rewound to {k} > ticket reset to 0", rewound_source,
                                _where(levels[common], common), _by_seed(levels[common]),
                                _by_seed(chains[reset][common])))
    claims += _stability_claims(study)
    return mark_fragile(holm([c for c in claims if c is not None]))


def _faster_claims(study: StudyRecord, k: str, chain: Mapping[int, Sequence[Mapping[str, Any]]],
                   dense_rows: Sequence[Mapping[str, Any]],
                   claim_source: Callable[[Comparison], str | None]) -> list[Claim | None]:
    """[LTH]'s "learns faster": the ticket's early-stop iteration is earlier than the dense network's, and
    than random reinitialisation's at the same level -- each at the sparsest level keeping >= 21% of the
    weights where both sides were trained (per seed: the other's iteration minus the ticket's)."""
    claims: list[Claim | None] = []
    reinit = study.levels(REINIT, k)
    for comparison, other in ((Comparison.FASTER_THAN_DENSE, None), (Comparison.FASTER_THAN_REINIT, reinit)):
        found = claim_source(comparison)
        levels = [level for level, rows in chain.items() if level > 0 and _has_early_stop(rows)
                  and statistics.fmean(r["weights_remaining"] for r in rows) >= FASTER_DOWN_TO
                  and (other is None or _has_early_stop(other.get(level, [])))]
        if not found or not levels or not _has_early_stop(dense_rows):
            continue
        level = max(levels)
        name, baseline = ("dense", dense_rows) if other is None else ("random reinitialisation", other[level])
        split = chain[level][0]["early_stop_split"]
        claims.append(judge(f"ticket (rewind {k}) stops earlier than {name} (iteration of min {split} loss)", found,
                            _where(chain[level], level, f"rewind {k}"), _by_seed(baseline, "early_stop_iteration"),
                            _by_seed(chain[level], "early_stop_iteration"), unit="iterations"))
    return claims


def _has_early_stop(rows: Sequence[Mapping[str, Any]]) -> bool:
    return bool(rows) and all("early_stop_iteration" in r for r in rows)


def _stability_claims(study: StudyRecord) -> list[Claim | None]:
    """Across rewind points, at the deepest level measured: the barrier falls from the first point to the
    last, and stabler tickets are more accurate (per seed, minus the slope of accuracy on barrier)."""
    barrier_source = source(study.claim_set, Comparison.BARRIER_FALLS, At.REWOUND)
    stabler_source = source(study.claim_set, Comparison.STABLER_MORE_ACCURATE, At.REWOUND)
    rows = [r for r in study.stability_rows if r["settings"] == study.main_settings]
    if not rows:
        return []
    level = max(r["level"] for r in rows)
    at_level = sorted((r for r in rows if r["level"] == level), key=lambda r: r["rewind_iteration"])
    points = sorted({r["rewind_iteration"] for r in at_level})
    if len(points) < 2:
        return []
    claims: list[Claim | None] = []
    names = {r["rewind_iteration"]: r["rewind"] for r in at_level}
    where = f"level {level} ({100 * at_level[0]['weights_remaining']:.1f}% weights)"
    if barrier_source:
        first = {r["seed"]: r["barrier_test"] for r in at_level if r["rewind_iteration"] == points[0]}
        last = {r["seed"]: r["barrier_test"] for r in at_level if r["rewind_iteration"] == points[-1]}
        claims.append(judge(f"barrier falls from rewind {names[points[0]]} to {names[points[-1]]}", barrier_source,
                            where, first, last))
    if stabler_source:
        slopes = {}
        for seed in {r["seed"] for r in at_level}:
            mine = [r for r in at_level if r["seed"] == seed]
            value = slope([r["barrier_test"] for r in mine], [r["test_accuracy"] for r in mine])
            if len(mine) > 1 and not math.isnan(value):
                slopes[seed] = -value  # the claim: accuracy falls as the barrier grows
        claims.append(judge(STABLER_CLAIM, stabler_source,
                            where + f", over rewind {', '.join(names[p] for p in points)}", slopes, unit="per unit"))
    return claims


STABLER_CLAIM = "stabler tickets are more accurate (−Δacc/Δbarrier > 0)"


def _pruning_at_init_claims(study: StudyRecord, k: str, chain: Mapping[int, Sequence[Mapping[str, Any]]],
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
        shuffled = study.levels(sanity_kind(kind, SanityCheck.SHUFFLE), k).get(level)
        if shuffled:
            claims.append(judge(f"{kind} shuffled within layers matches {kind}", "[PaI] §5", where,
                                _by_seed(shuffled), method, margin, test=EQUIVALENT))
    return claims


BASELINE_COMPARISONS = ((REINIT, Comparison.REINIT), (RANDOM_PRUNE, Comparison.RANDOM_PRUNE),
                        (RESET_INIT, Comparison.RESET_INIT))


def _by_seed(summaries: Sequence[Mapping[str, Any]], key: str = "test_accuracy") -> dict[int, float]:
    return {int(s["seed"]): s[key] for s in summaries}


def _where(summaries: Sequence[Mapping[str, Any]], level: int, extra: str = "") -> str:
    weights = statistics.fmean(s["weights_remaining"] for s in summaries)
    return f"level {level} ({100 * weights:.1f}% weights)" + (f", {extra}" if extra else "")
