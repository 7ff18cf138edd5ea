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

from .branches import run_branch, run_branch_many
from .config import ExperimentConfig
from .errors import ConfigError
from .experiment import canonical, module_config, prepare
from .imp import run_imp
from .kinds import DATA_ORDER
from .masks import Mask
from .options import RunOptions
from .plans import STABILITY_LEVEL  # noqa: F401 (the CLI reads it here)
from .steps import check_steps
from .store import DEFAULT_STORE, FINAL_FILE, MASK_FILE, Store, level_dir_name, load_tensors, read_json, write_json
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


def measure_stability(config: ExperimentConfig, level: int, store: Store | str | Path = DEFAULT_STORE, *,
                      settings: StabilitySettings = StabilitySettings(),
                      options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Stability of the level-`level` IMP ticket of `config` at its rewind step (trains what is missing)."""
    if level < 0:
        raise ConfigError(f"--level must be 0 or more, got {level}")
    store = Store.of(store)
    if options.model is not None:
        config = module_config(config, options.model)
    config = canonical([config], store, options.data_root, options.data)[0]
    imp = run_imp(config, level, store, options=options)
    copy = run_branch(DATA_ORDER, config, level, store, only=[level], options=options)
    cache = measurement_path(Path(copy.run_dir), level, settings)
    if cache.exists():
        return read_json(cache)
    setup = prepare(config, options.data_root, store.cache_dir, options.device, options.data, options.model)
    ticket_dir, copy_dir = Path(imp.run_dir) / level_dir_name(level), Path(copy.run_dir) / level_dir_name(level)
    mask = Mask.load(ticket_dir / MASK_FILE)
    ticket = load_tensors(ticket_dir / FINAL_FILE, setup.device)
    other = load_tensors(copy_dir / FINAL_FILE, setup.device)
    dense = load_tensors(Path(imp.run_dir) / level_dir_name(0) / FINAL_FILE, setup.device)
    model = setup.new_model()
    curve = interpolation_curve(model, setup, ticket, other, settings.points, settings.batch_norm,
                                settings.train_examples)
    pruning, data_order = distances(ticket, dense, mask), distances(ticket, other, mask)
    row = {"level": level, "rewind": config.rewind, "rewind_iteration": setup.rewind, "seed": config.seed,
           "weights_remaining": mask.fraction_remaining(), "test_accuracy": imp.levels[level]["test_accuracy"],
           "copy_test_accuracy": copy.levels[0]["test_accuracy"],
           **{f"pruning_{k}": v for k, v in pruning.items()}, **{f"data_order_{k}": v for k, v in data_order.items()},
           "barrier_test": barrier([p["test_error"] for p in curve]),
           "barrier_train": barrier([p["train_error"] for p in curve]),
           "batch_norm": settings.batch_norm if has_batch_norm(model) else "none",
           "run": Path(imp.run_dir).name, "copy_run": Path(copy.run_dir).name, "curve": curve}
    write_json(cache, row)
    return row


def measure_stability_many(configs: list[ExperimentConfig], level: int, store: Store | str | Path = DEFAULT_STORE, *,
                           settings: StabilitySettings = StabilitySettings(),
                           options: RunOptions = RunOptions()) -> list[dict[str, Any]]:
    """measure_stability for several configs (e.g. seeds): the tickets and their data-order copies
    train first, level by level, small models stacked as replicas; then each is measured."""
    store = Store.of(store)
    run_branch_many(DATA_ORDER, configs, level, store, only=[level], options=options)
    return [measure_stability(config, level, store, settings=settings, options=options) for config in configs]


def stability_sweep(config: ExperimentConfig, level: int, rewind_points: list[str], store=DEFAULT_STORE, *,
                    settings: StabilitySettings = StabilitySettings(),
                    options: RunOptions = RunOptions()) -> list[dict[str, Any]]:
    """measure_stability at each rewind point (each point has its own IMP chain)."""
    return stability_sweep_many([config], level, rewind_points, store, settings=settings, options=options)[0]


def stability_sweep_many(configs: list[ExperimentConfig], level: int, rewind_points: list[str], store=DEFAULT_STORE, *,
                         settings: StabilitySettings = StabilitySettings(),
                         options: RunOptions = RunOptions()) -> list[list[dict[str, Any]]]:
    """stability_sweep for several configs: one list of rows (one per rewind point) per config."""
    check_steps(rewind_points)
    per_point = [measure_stability_many([c.override({"rewind": point}) for c in configs], level, store,
                                        settings=settings, options=options)
                 for point in rewind_points]
    return [[rows[i] for rows in per_point] for i in range(len(configs))]


def find_rewind(rows: list[dict[str, Any]], threshold: float = BARRIER_THRESHOLD) -> dict[str, Any] | None:
    """The earliest rewind point whose test-error barrier is below `threshold` (a fraction)."""
    for row in sorted(rows, key=lambda r: r["rewind_iteration"]):
        if row["barrier_test"] < threshold:
            return row
    return None
