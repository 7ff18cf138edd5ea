"""Run a graph of jobs (jobs.py) with submitit: as local processes or as SLURM jobs, on one store.

The driver keeps no state of its own. Each round it reads from the store which jobs are done,
submits those whose needs are done (never one that is done, or that another process is training
now), and polls. Stop it at any time; run the same command again and it carries on from the store.
A job the scheduler preempts or times out is requeued by submitit (the `checkpoint` hook below) and
resumes from its last checkpoint in the store, ending bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import submitit
from tqdm.auto import tqdm

from .errors import ConfigError
from .jobs import Job
from .store import Store

EXECUTORS = ("inline", "local", "slurm")


@dataclass
class ExecutorOptions:
    """How jobs are run; the CLI's --executor flags."""

    kind: str = "local"
    workers: int = 2  # local: jobs at once
    gpus_per_job: int = 0  # > 1: one torch.distributed process per GPU inside the job
    cpus_per_job: int | None = None  # default: local, the machine's cores / workers; slurm, SLURM's default
    timeout_min: int | None = None  # a job's time limit (then it is requeued and resumes); default 3 days local, 4 h slurm
    slurm_partition: str | None = None
    slurm_array_parallelism: int = 256
    slurm_options: dict[str, str] = field(default_factory=dict)  # passed through as #SBATCH --KEY=VALUE
    max_requeues: int = 20  # preemptions/time-outs a job may take; each resumes from its checkpoint
    poll_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS[1:]:
            raise ConfigError(f"unknown executor {self.kind!r}; choose one of {', '.join(EXECUTORS)}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.gpus_per_job < 0 or (self.cpus_per_job is not None and self.cpus_per_job < 1):
            raise ConfigError("--gpus-per-job must be 0 or more and --cpus-per-job at least 1")
        missing = [tool for tool in ("sbatch", "srun") if self.kind == "slurm" and not shutil.which(tool)]
        if missing:
            raise ConfigError(f"--executor slurm needs SLURM's {' and '.join(missing)} on PATH; run the driver on a "
                              "login node of the cluster, or use --executor local")

    @property
    def threads(self) -> int:
        if self.cpus_per_job:
            return self.cpus_per_job
        return max(1, (os.cpu_count() or 1) // self.workers) if self.kind == "local" else 0


class StoreJob(submitit.helpers.Checkpointable):
    """What runs inside a submitted job. On preemption or time-out submitit calls `checkpoint`,
    which (inherited) resubmits this same call: it resumes from the store's last checkpoint."""

    def __init__(self, job: Job, store_root: str, options: dict[str, Any], threads: int) -> None:
        self.job, self.store_root, self.options, self.threads = job, store_root, options, threads

    def __call__(self) -> str:
        import torch

        from .distributed import init_from_env

        if self.threads:
            torch.set_num_threads(self.threads)
        options = dict(self.options)
        if submitit.JobEnvironment().num_tasks > 1:  # several GPUs: one DDP rank per task, like torchrun
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
            options["device"] = init_from_env(options.get("device", "auto"))
        self.job.execute(Store(self.store_root), **options)
        return self.job.key


def make_executor(options: ExecutorOptions, folder: Path) -> submitit.Executor:
    tasks = max(1, options.gpus_per_job)
    if options.kind == "local":
        executor = submitit.LocalExecutor(folder=folder, max_num_timeout=options.max_requeues)
        executor.update_parameters(timeout_min=options.timeout_min or 3 * 24 * 60, tasks_per_node=tasks,
                                   gpus_per_node=options.gpus_per_job)
        return executor
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=options.max_requeues)
    parameters: dict[str, Any] = {"job_name": "lth", "time": options.timeout_min or 240, "ntasks_per_node": tasks,
                                  "array_parallelism": options.slurm_array_parallelism,
                                  "additional_parameters": dict(options.slurm_options)}
    if options.slurm_partition:
        parameters["partition"] = options.slurm_partition
    if options.gpus_per_job:
        parameters["gpus_per_node"] = options.gpus_per_job
    if options.cpus_per_job:
        parameters["cpus_per_task"] = options.cpus_per_job
    executor.update_parameters(**parameters)
    return executor


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> label, error, log
    blocked: list[str] = field(default_factory=list)  # not run: something they need failed
    submitted: int = 0


def _error_line(submitted: submitit.Job) -> str:
    """The last line of the job's traceback (the exception itself), or why it has none."""
    try:
        error = submitted.exception()
    except Exception as exc:  # noqa: BLE001 - e.g. UncompletedJobError: killed before writing a result
        error = exc
    if error is None:
        return "the job finished without storing its result"
    parts = str(error).split("-" * 22)  # submitit frames the remote traceback with dashes
    lines = [line.strip() for line in (parts[1] if len(parts) > 2 else parts[0]).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    kind, sep, message = lines[-1].partition(": ")
    return message if sep and kind.startswith("lth.errors.") else lines[-1]  # our errors read as the CLI's do


class _Progress:
    """A bar with done/running/queued/failed counts; with `quiet`, a log line whenever they change."""

    def __init__(self, total: int, quiet: bool, log: Callable[[str], None]) -> None:
        self.total, self.log, self.last = total, log, None
        self.bar = None if quiet else tqdm(total=total, desc="jobs", unit="job", dynamic_ncols=True)

    def show(self, done: int, running: int, queued: int, failed: int) -> None:
        text = f"running {running} · queued {queued} · failed {failed}"
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(text, refresh=True)
        elif (done, text) != self.last:
            self.log(f"jobs: done {done}/{self.total} · {text}")
        self.last = (done, text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_jobs(jobs: list[Job], store: Store | str | Path, options: ExecutorOptions, run_options: dict[str, Any],
             log: Callable[[str], None] = print, quiet: bool = False,
             executor: submitit.Executor | None = None) -> Outcome:
    """Run `jobs` (in an order where needs come first) until each is done, failed or blocked."""
    store = store if isinstance(store, Store) else Store(store)
    executor = executor or make_executor(options, store.root / "_jobs")
    by_key = {job.key: job for job in jobs}
    outcome = Outcome()
    submitted: dict[str, submitit.Job] = {}
    gpu_slots: dict[str, int] = {}
    progress = _Progress(len(jobs), quiet, log)
    try:
        while True:
            done = {key for key, job in by_key.items() if job.done(store)}
            for key, handle in list(submitted.items()):
                if handle.done():
                    del submitted[key]
                    gpu_slots.pop(key, None)
                    if key not in done:
                        job = by_key[key]
                        error, log_path = _error_line(handle), str(handle.paths.stderr)
                        outcome.failed[key] = {"label": job.label, "error": error, "log": log_path}
                        if job.measure is None:
                            store.run(job.run_config).mark_failed(job.level, error, log_path)
                        log(f"job failed: {job.label}: {error} (log: {log_path})")
            blocked = set()
            for job in jobs:  # needs come first, so one pass carries a failure down the graph
                if job.key not in done and any(n in outcome.failed or n in blocked for n in job.needs):
                    blocked.add(job.key)
            elsewhere = {job.key for job in jobs if job.key not in done | submitted.keys() | outcome.failed.keys()
                         | blocked and job.running_elsewhere(store)}
            waiting = [job for job in jobs if job.key not in done | submitted.keys() | outcome.failed.keys() | blocked
                       | elsewhere]
            ready = [job for job in waiting if all(n in done for n in job.needs)]
            room = options.workers - len(submitted) if options.kind == "local" else len(ready)
            submit_ready(executor, ready[:max(0, room)], store, options, run_options, submitted, gpu_slots)
            outcome.submitted += min(len(ready), max(0, room))
            progress.show(len(done), len(submitted) + len(elsewhere), len(waiting) - min(len(ready), max(0, room)),
                          len(outcome.failed) + len(blocked))
            if not submitted and not elsewhere and not ready:
                outcome.done = sorted(done)
                outcome.blocked = sorted(blocked | {job.key for job in waiting})
                return outcome
            time.sleep(options.poll_seconds)
    finally:
        progress.close()


def submit_ready(executor: submitit.Executor, ready: list[Job], store: Store, options: ExecutorOptions,
            run_options: dict[str, Any], submitted: dict[str, submitit.Job], gpu_slots: dict[str, int]) -> None:
    if not ready:
        return
    run_options = {**run_options, "quiet": True, "wait": True}  # progress bars would only fill the logs
    calls = [StoreJob(job, str(store.root), run_options, options.threads) for job in ready]
    if options.kind == "local":
        for job, call in zip(ready, calls):
            if options.gpus_per_job:  # give each local job its own GPUs
                slot = min(set(range(options.workers)) - set(gpu_slots.values()))
                gpu_slots[job.key] = slot
                first = slot * options.gpus_per_job
                executor.update_parameters(visible_gpus=tuple(range(first, first + options.gpus_per_job)))
            submitted[job.key] = executor.submit(call)
        return
    with executor.batch():  # one SLURM array per round, at most --slurm-array-parallelism at once
        handles = [executor.submit(call) for call in calls]
    submitted.update(zip((job.key for job in ready), handles))
