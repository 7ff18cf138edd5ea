"""Stability of a subnetwork's training ([SCALE] §2, [LMC] §2-3), measured on a ticket and its copies
(the maths -- distances, the interpolation curve, the barrier -- in connectivity.py).

From the same rewind point W_k and mask m:
- stability to pruning: distance between the ticket trained in isolation, train(m * W_k, u), and
  the dense network trained with the same data order u (level 0 of the IMP run);
- stability to data order: distance between two copies of the ticket trained with orders u, u'
  (the IMP ticket and its `data-order` branch);
- linear mode connectivity: the error barrier on the straight line between those two copies,
  max over alpha of error(alpha W1 + (1 - alpha) W2) minus the mean of the two end errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .branches import branch_config
from .config import ExperimentConfig
from .errors import ConfigError
from .kinds import DATA_ORDER
from .levels import setup_for
from .masks import Mask
from .options import RunOptions
from .plans import STABILITY_LEVEL  # noqa: F401 (the CLI reads it here)
from .store import FINAL_FILE, MASK_FILE, Store, level_dir_name, load_tensors, read_json, write_json
from .connectivity import (BATCH_NORM, BATCH_NORM_MODES, POINTS, TRAIN_EXAMPLES,  # noqa: F401 (the CLI reads them here)
                           barrier, distances, has_batch_norm, interpolation_curve)

BARRIER_THRESHOLD = 0.02  # a barrier below 2 points of error counts as stable ([LMC]'s linearly connected)


@dataclass(frozen=True)
class StabilitySettings:
    """How one stability measurement is made (connectivity.py's defaults)."""

    points: int = POINTS
    batch_norm: str = BATCH_NORM
    train_examples: int = TRAIN_EXAMPLES

    def __post_init__(self) -> None:
        if self.points < 2:
            raise ConfigError(f"--interpolation-points must be at least 2, got {self.points}")
        if self.train_examples < 1:
            raise ConfigError(f"train_examples must be at least 1, got {self.train_examples}")
        if self.batch_norm not in BATCH_NORM_MODES:
            raise ConfigError(f"batch_norm must be one of {', '.join(BATCH_NORM_MODES)}, got {self.batch_norm!r}")

    @property
    def name(self) -> str:
        """How the settings are named in a measurement's file name and in the report's tables."""
        return f"{self.points}pt_bn-{self.batch_norm}_{self.train_examples}"


def measurement_path(copy_run_dir: Path, level: int, settings: StabilitySettings = StabilitySettings()) -> Path:
    """Where the stability of a level is kept: beside the data-order copy it compares with."""
    return copy_run_dir / level_dir_name(level) / f"stability_{settings.name}.json"


def measure(config: ExperimentConfig, level: int, store: Store, settings: StabilitySettings = StabilitySettings(),
            options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Measure and store the stability of the level-`level` ticket of the IMP config `config` (canonical,
    its ticket and data-order copy trained: a stability job's needs) at its rewind step."""
    imp, copy = store.run(config), store.run(branch_config(config, DATA_ORDER))
    cache = measurement_path(copy.dir, level, settings)
    if cache.exists():
        return read_json(cache)
    setup = setup_for(config, store, (), options)
    ticket_dir, copy_dir = imp.level_dir(level), copy.level_dir(level)
    mask = Mask.load(ticket_dir / MASK_FILE)
    ticket = load_tensors(ticket_dir / FINAL_FILE, setup.device)
    other = load_tensors(copy_dir / FINAL_FILE, setup.device)
    dense = load_tensors(imp.level_dir(0) / FINAL_FILE, setup.device)
    model = setup.new_model()
    curve = interpolation_curve(model, setup, ticket, other, settings.points, settings.batch_norm,
                                settings.train_examples)
    pruning, data_order = distances(ticket, dense, mask), distances(ticket, other, mask)
    row = {"level": level, "rewind": config.rewind, "rewind_iteration": setup.rewind_iteration, "seed": config.seed,
           "weights_remaining": mask.fraction_remaining(), "test_accuracy": imp.summary(level)["test_accuracy"],
           "copy_test_accuracy": copy.summary(level)["test_accuracy"],
           **{f"pruning_{k}": v for k, v in pruning.items()}, **{f"data_order_{k}": v for k, v in data_order.items()},
           "barrier_test": barrier([p["test_error"] for p in curve]),
           "barrier_train": barrier([p["train_error"] for p in curve]),
           "batch_norm": settings.batch_norm if has_batch_norm(model) else "none",
           "run": imp.hash, "copy_run": copy.hash, "curve": curve}
    write_json(cache, row)
    return row


def find_rewind(rows: list[dict[str, Any]], threshold: float = BARRIER_THRESHOLD) -> dict[str, Any] | None:
    """The earliest rewind point whose test-error barrier is below `threshold` (a fraction)."""
    for row in sorted(rows, key=lambda r: r["rewind_iteration"]):
        if row["barrier_test"] < threshold:
            return row
    return None
