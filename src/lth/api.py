"""The library's run functions. Each builds its part of a study's job graph (jobs.py) and hands it to
an executor -- inline, in this process (the default), or local processes and SLURM jobs
(executors.py, `executor=ExecutorOptions(...)`) -- then reads what was asked for from the store. So
skipping finished work, locking, grouping seeds into stacked replicas and marking failures are
defined once (jobs.py, levels.py) and every executor computes the same bits by construction.

One IMP level, from the CLI to the training loop: cli.cmd_imp -> run_imp_many -> execute ->
Job.execute -> levels.train_level -> train.train_replicas.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .branches import branch_config, branch_levels
from .config import ExperimentConfig, section_key
from .errors import ConfigError, LthError
from .distributed import is_main
from .experiment import canonical, epoch_length, module_config, rewind_iterations, schedule_warnings
from .jobs import Job, branch_jobs, imp_jobs, stability_jobs, unique
from .kinds import DATA_ORDER, DENSE, IMP
from .levels import RunResult, resolve_replicas, shape_model
from .masks import check_levels
from .options import ExecutorOptions, RunOptions
from .plans import STABILITY
from .stability import StabilitySettings, measurement_path
from .steps import check_steps
from .store import DEFAULT_STORE, JOBS_DIR, Run, Store, read_json

Trained = set[tuple[str, int]]  # (run hash, level) of the levels an execution trained


def run_imp(config: ExperimentConfig, levels: int, store: Store | str | Path = DEFAULT_STORE,
            options: RunOptions = RunOptions(), executor: ExecutorOptions | None = None) -> RunResult:
    """Run (or read from the store) levels 0..`levels` of IMP for `config`. `options`: how it runs
    (lth.options.RunOptions: quiet, data, model, replicas, ...); `executor`: where (default inline)."""
    return run_imp_many([config], levels, store, options, executor)[0]


def run_imp_many(configs: list[ExperimentConfig], levels: int, store: Store | str | Path = DEFAULT_STORE,
                 options: RunOptions = RunOptions(), executor: ExecutorOptions | None = None) -> list[RunResult]:
    """run_imp for several configs (e.g. seeds): their chains level by level, seeds stacked as replicas."""
    if any(c.kind != IMP for c in configs):
        raise ConfigError("run_imp takes IMP configs, got kinds " + ", ".join(sorted({c.kind for c in configs})))
    store, configs = prepared(configs, store, options, levels)
    trained = execute(imp_jobs(configs, levels, resolve_replicas(configs[0], len(configs), store, options)),
                      store, options, executor)
    return [result(store.run(c), range(levels + 1), trained) for c in configs]


def run_branch(kind: str, config: ExperimentConfig, levels: int, store: Store | str | Path = DEFAULT_STORE,
               data_seed: int | None = None, only: list[int] | None = None, options: RunOptions = RunOptions(),
               executor: ExecutorOptions | None = None) -> RunResult:
    """Run the IMP chain of `config` to `levels` (or read it), then the branch `kind` at each level
    (or only at the levels in `only`: each branch level depends on the IMP chain alone).

    The result lists level 0 too: the dense network of the parent (or, for data-order, the dense
    network continued from the rewind step with the other data order)."""
    return run_branch_many(kind, [config], levels, store, data_seed, only, options, executor)[0]


def run_branch_many(kind: str, configs: list[ExperimentConfig], levels: int, store: Store | str | Path = DEFAULT_STORE,
                    data_seed: int | None = None, only: list[int] | None = None, options: RunOptions = RunOptions(),
                    executor: ExecutorOptions | None = None) -> list[RunResult]:
    """run_branch for several configs (e.g. seeds); seeds train stacked as replicas."""
    for c in configs:
        branch_config(c, kind, data_seed)  # (an unknown kind or a non-IMP config: refused before anything runs)
    wanted = branch_levels(kind, levels, only)
    store, configs = prepared(configs, store, options, levels)
    replicas = resolve_replicas(configs[0], len(configs), store, options)
    trained = execute(branch_jobs(kind, configs, levels, only, replicas, data_seed), store, options, executor)
    results = [result(store.run(branch_config(c, kind, data_seed)), wanted, trained) for c in configs]
    if kind != DATA_ORDER and only is None:  # level 0 of a baseline is its parent's dense network
        for branch, c in zip(results, configs):
            branch.levels.insert(0, store.run(c).summary(0))
    return results


def measure_stability(config: ExperimentConfig, level: int, store: Store | str | Path = DEFAULT_STORE, *,
                      settings: StabilitySettings = StabilitySettings(), options: RunOptions = RunOptions(),
                      executor: ExecutorOptions | None = None) -> dict[str, Any]:
    """Stability of the level-`level` IMP ticket of `config` at its rewind step (trains what is missing)."""
    return measure_stability_many([config], level, store, settings=settings, options=options, executor=executor)[0]


def measure_stability_many(configs: list[ExperimentConfig], level: int, store: Store | str | Path = DEFAULT_STORE, *,
                           settings: StabilitySettings = StabilitySettings(), options: RunOptions = RunOptions(),
                           executor: ExecutorOptions | None = None) -> list[dict[str, Any]]:
    """measure_stability for several configs (e.g. seeds): the tickets and their data-order copies
    train first, seeds stacked as replicas; then each is measured. One row per config."""
    return [rows[0] for rows in _stability(configs, level, None, store, settings, options, executor)]


def stability_sweep(config: ExperimentConfig, level: int, rewind_points: list[str], store: Store | str | Path = DEFAULT_STORE,
                    *, settings: StabilitySettings = StabilitySettings(), options: RunOptions = RunOptions(),
                    executor: ExecutorOptions | None = None) -> list[dict[str, Any]]:
    """measure_stability at each rewind point (each point has its own IMP chain)."""
    return stability_sweep_many([config], level, rewind_points, store, settings=settings, options=options,
                                executor=executor)[0]


def stability_sweep_many(configs: list[ExperimentConfig], level: int, rewind_points: list[str],
                         store: Store | str | Path = DEFAULT_STORE, *, settings: StabilitySettings = StabilitySettings(),
                         options: RunOptions = RunOptions(), executor: ExecutorOptions | None = None
                         ) -> list[list[dict[str, Any]]]:
    """stability_sweep for several configs: one list of rows (one per rewind point) per config."""
    check_steps(rewind_points)
    return _stability(configs, level, rewind_points, store, settings, options, executor)


def _stability(configs: list[ExperimentConfig], level: int, rewind_points: list[str] | None, store: Store | str | Path,
               settings: StabilitySettings, options: RunOptions, executor: ExecutorOptions | None
               ) -> list[list[dict[str, Any]]]:
    """The stability rows of each config at each rewind point (None: at the config's own rewind step),
    every point's jobs run as one graph."""
    if level < 0:
        raise ConfigError(f"--level must be 0 or more, got {level}")
    points = [[c.override({"rewind": p}) for c in configs] for p in rewind_points] if rewind_points is not None \
        else [configs]
    store, canonical_points = prepared_points(points, store, options, level)
    replicas = resolve_replicas(canonical_points[0][0], len(configs), store, options)
    execute([job for staged in canonical_points for job in stability_jobs(staged, level, settings, replicas)],
            store, options, executor)
    return [[read_json(measurement_path(store.run(branch_config(staged[i], DATA_ORDER)).dir, level, settings))
             for staged in canonical_points] for i in range(len(configs))]


def prepared(configs: list[ExperimentConfig], store: Store | str | Path, options: RunOptions, levels: int
             ) -> tuple[Store, list[ExperimentConfig]]:
    """The entry of every run function: the store, and the configs as runs are addressed (a user's
    model named by its fingerprint, steps in iterations; lth.experiment.canonical), checked before any
    work: the levels can be reached."""
    store, (configs,) = prepared_points([configs], store, options, levels)
    return store, configs


def prepared_points(points: list[list[ExperimentConfig]], store: Store | str | Path, options: RunOptions,
                    levels: int) -> tuple[Store, list[list[ExperimentConfig]]]:
    """`prepared` for several lists of configs (a sweep's rewind points)."""
    if levels < 0:
        raise ConfigError(f"--levels must be 0 or more, got {levels}")
    if not points or not points[0]:
        raise ConfigError("no configs to run")
    store = Store.of(store)
    if options.model is not None:
        points = [[module_config(c, options.model) for c in configs] for configs in points]
    points = [canonical(configs, store, options.data_root, options.data) for configs in points]
    for c in {(section_key(c.model), section_key(c.prune)): c for configs in points for c in configs}.values():
        check_levels(options.model if options.model is not None else shape_model(c), c.prune, levels)
    for c in {c.train: c for configs in points for c in configs}.values():
        for warning in schedule_warnings(c, epoch_length(c, options.data_root, store.cache_dir, options.data)):
            if is_main():
                print(f"lth: warning: {warning}", file=sys.stderr)
    return store, points


def execute(jobs: list[Job], store: Store, options: RunOptions = RunOptions(),
            executor: ExecutorOptions | None = None) -> Trained:
    """Run the jobs not yet done: in this process, in order (needs come first), or with `executor`'s
    local processes or SLURM jobs. A rewind step past the end of training is refused before any run
    is created. Returns the levels it trained."""
    jobs = unique(jobs)
    check_rewind_steps(jobs, store, options)
    if executor is not None:
        return _execute_elsewhere(jobs, store, options, executor)
    trained: Trained = set()
    for job in jobs:
        if not job.done(store):
            try:
                trained |= {(run.hash, job.level) for run in job.execute(store, options)}
            except LthError:  # a refusal, said in one line (a divergence train_level has marked already)
                raise
            except Exception as exc:  # a crash (out of memory, a bug): marked as an executor's driver marks it
                job.mark_failed(store, f"{type(exc).__name__}: {exc}")
                raise
    return trained


def _execute_elsewhere(jobs: list[Job], store: Store, options: RunOptions, executor: ExecutorOptions) -> Trained:
    """The jobs on executors.run_jobs' processes or SLURM jobs; any failure raises once all have ended."""
    from .executors import run_jobs

    before = {job.key for job in jobs if job.done(store)}
    log = lambda text: print(text, file=sys.stderr)  # noqa: E731 - stdout stays for the results
    log(f"{len(jobs)} job(s) on the {executor.executor.value} executor; logs in {store.root / JOBS_DIR}")
    outcome = run_jobs(jobs, store, executor, options, log=log, quiet=options.quiet)
    if outcome.failed or outcome.blocked:
        first = next(iter(outcome.failed.values()), None)
        detail = f"; first: {first['label']}: {first['error']} (log: {first['log']})" if first else ""
        raise LthError(f"{len(outcome.failed)} job(s) failed and {len(outcome.blocked)} could not run{detail}; "
                       f"`lth ls --store {store.root}` lists the failed runs; rerun the command to retry them")
    return {(run.hash, job.level) for job in jobs if job.key not in before and job.what != STABILITY
            for run in job.runs(store)}


def check_rewind_steps(jobs: list[Job], store: Store, options: RunOptions) -> None:
    """Every rewind step the dense runs save must lie before the end of training."""
    for job in jobs:
        if job.what == DENSE:
            for config in job.configs:
                ipe = epoch_length(config, options.data_root, store.cache_dir, options.data)
                for step in job.dense_steps:
                    rewind_iterations(config, step, ipe)


def result(run: Run, levels: range | list[int], trained: Trained) -> RunResult:
    """A run's summaries at `levels`, with how many of them this call trained (not adopted: an IMP
    run's level 0 is its dense run's)."""
    return RunResult(str(run.dir), [run.summary(level) for level in levels],
                     sum((run.hash, level) in trained for level in levels))
