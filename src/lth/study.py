"""A study read from the store: the runs of one preset and config, grouped by kind, rewind step and seed
(the model the report's tables, figures and claims are computed from)."""
from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, NamedTuple

from .aggregate import mean_std
from .kinds import BASELINES, BRANCHES, DATA_ORDER, DENSE, IMP, KINDS
from .early_stop import early_stop
from .presets import claims_of
from .hardware import hardware_of
from .stability import StabilitySettings
from .steps import Step
from .errors import StoreError
from .store import CONFIG_FILE, METRICS_FILE, Run, Store, read_json, read_jsonl

STABILITY_METRICS = ("test_accuracy", "pruning_l2", "pruning_l2_normalized", "pruning_angle", "data_order_l2",
                     "data_order_l2_normalized", "data_order_angle", "barrier_test", "barrier_train")

DEFAULT_STABILITY_SETTINGS = StabilitySettings().name  # lth stability's defaults, as in the file name

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

def study_hardware(study: Study) -> list[str]:
    """The hardware the study's levels were computed on (docs/store.md: What changes the numbers)."""
    return hardware_of([s.get("execution") for r in study.runs for s in map(r.summary, r.levels_done())])
