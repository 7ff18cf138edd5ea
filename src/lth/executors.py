"""Run a graph of jobs (jobs.py) with submitit: as local processes or as SLURM jobs, on one store.

The driver keeps no state of its own. Each round it reads from the store which jobs are done,
submits those whose needs are done (never one that is done, or that another process is training
now), and polls. Stop it at any time; run the same command again and it carries on from the store.
A job the scheduler preempts or times out is requeued by submitit (the `checkpoint` hook below) and
resumes from its last checkpoint in the store, ending bit-identical to an uninterrupted run.

The driver's stdout is for results (`--json`): submitit's own logging goes to stderr. On a cluster
without an accounting database (sacct fails), job states come from squeue (`_SlurmWatcher`).
"""
from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import submitit
from submitit.slurm.slurm import SlurmInfoWatcher
from tqdm.auto import tqdm

from .jobs import Job
from .options import LOCAL_TIMEOUT_MIN, SLURM_TIMEOUT_MIN, Executor, ExecutorOptions, RunOptions  # (ExecutorOptions: in options.py, read by `lth --help` without submitit)
from .store import JOBS_DIR, Store


class StoreJob(submitit.helpers.Checkpointable):
    """What runs inside a submitted job. On preemption or time-out submitit calls `checkpoint`,
    which (inherited) resubmits this same call: it resumes from the store's last checkpoint."""

    def __init__(self, job: Job, store_root: str, options: RunOptions, threads: int) -> None:
        self.job, self.store_root, self.options, self.threads = job, store_root, options, threads

    def __call__(self) -> str:
        import torch

        from .distributed import init_from_env

        if self.threads:
            torch.set_num_threads(self.threads)
        options = self.options
        if submitit.JobEnvironment().num_tasks > 1:  # several GPUs: one DDP rank per task, like torchrun
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
            options = options.replace(device=init_from_env(options.device))
        self.job.execute(Store(self.store_root), options)
        return self.job.key


class _SlurmWatcher(SlurmInfoWatcher):
    """The states of submitted SLURM jobs, for `SlurmJob.done()` when a job ended without writing its
    result (cancelled, killed for memory, node failure). submitit asks sacct, which needs SLURM's
    accounting database: without one (many small clusters, every fresh one) it fails at every poll,
    the state stays UNKNOWN and the driver would wait forever. Then squeue answers instead: it lists
    finished jobs with their state for MinJobAge (5 min by default), and a job it no longer lists has
    ended. Jobs that wrote their result are done without asking either (submitit reads the file)."""

    FINISHED = "ENDED"  # a job squeue no longer lists

    def __init__(self, delay_s: int, log: Callable[[str], None]) -> None:
        super().__init__(delay_s=delay_s)
        self.log = log
        self.sacct: bool | None = None  # unknown until the first call; False: squeue from then on

    def update(self) -> None:  # as submitit's, with squeue when sacct fails
        ids = sorted({job_id.split("_")[0] for job_id in self._registered - self._finished})
        if not ids:
            return
        self._num_calls += 1
        self._info_dict.update(self._states(ids))
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def _states(self, ids: list[str]) -> dict[str, dict[str, str]]:
        if self.sacct is not False:
            sacct = _call(self._make_command() or [])
            if sacct is not None:
                self.sacct = True
                return self.read_info(sacct.stdout)
            if self.sacct is None:
                self.sacct = False
                self.log("sacct does not answer (no accounting database?): job states come from squeue")
        squeue = _call(["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T", f"--jobs={','.join(ids)}"],
                       ok=lambda result: "Invalid job id" in result.stderr)  # none of them is listed any more
        if squeue is None:
            return {}  # the controller did not answer: ask again at the next poll
        states = {}
        for line in squeue.stdout.splitlines():
            job_id, _, state = line.strip().partition("|")
            states[job_id] = {"JobID": job_id, "State": state}
        for job_id in self._registered - self._finished:
            if job_id.split("_")[0] in ids and job_id not in states:
                states[job_id] = {"JobID": job_id, "State": self.FINISHED}
        return states


def _call(command: list[str], ok: Callable[[subprocess.CompletedProcess], bool] = lambda _: False
          ) -> subprocess.CompletedProcess | None:
    """Run a SLURM command quietly (its complaints would only fill the driver's stderr); None if it failed."""
    if not command:
        return None
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return result if result.returncode == 0 or ok(result) else None


def _submitit_logs_to_stderr() -> None:
    """submitit logs to stdout as well as stderr; in the driver, stdout is for results (`--json`)."""
    logger = logging.getLogger("submitit")
    for handler in list(logger.handlers):
        if handler.name == "submitit_out" or getattr(handler, "stream", None) in (sys.stdout, sys.__stdout__):
            logger.removeHandler(handler)


def make_executor(options: ExecutorOptions, folder: Path,
                  log: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> submitit.Executor:
    _submitit_logs_to_stderr()
    tasks = max(1, options.gpus_per_job)
    if options.executor is Executor.LOCAL:
        local = submitit.LocalExecutor(folder=folder, max_num_timeout=options.max_requeues)
        local.update_parameters(timeout_min=options.timeout_min or LOCAL_TIMEOUT_MIN, tasks_per_node=tasks,
                                gpus_per_node=options.gpus_per_job)
        return local
    if not isinstance(submitit.SlurmJob.watcher, _SlurmWatcher):  # one watcher for all of submitit's SLURM jobs
        submitit.SlurmJob.watcher = _SlurmWatcher(delay_s=60, log=log)
    submitit.SlurmJob.watcher.log = log
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=options.max_requeues)
    parameters: dict[str, Any] = {"job_name": "lth", "time": options.timeout_min or SLURM_TIMEOUT_MIN, "ntasks_per_node": tasks,
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
    error: BaseException | None
    try:
        error = submitted.exception()
    except Exception as exc:  # noqa: BLE001 - e.g. UncompletedJobError: killed before writing a result
        error = exc
    if error is None:
        return "the job finished without storing its result"
    if type(error) is submitit.core.utils.UncompletedJobError:  # no result: cancelled, killed, node lost, ...
        state = re.search(r"\(state: ([^)]*)\)", str(error))
        return f"the job ended without storing its result (state {state[1] if state else 'unknown'})"
    parts = str(error).split("-" * 22)  # submitit frames the remote traceback with dashes
    lines = [line.strip() for line in (parts[1] if len(parts) > 2 else parts[0]).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    kind, sep, message = lines[-1].partition(": ")
    return message if sep and kind.startswith("lth.errors.") else lines[-1]  # our errors read as the CLI's do


class _Progress:
    """A bar with done/running/queued/failed counts; with `quiet`, a log line whenever they change."""

    def __init__(self, total: int, quiet: bool, log: Callable[[str], None]) -> None:
        self.total, self.log = total, log
        self.last: tuple[int, str] | None = None
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


def run_jobs(jobs: list[Job], store: Store | str | Path, options: ExecutorOptions, run_options: RunOptions,
             log: Callable[[str], None] = print, quiet: bool = False,
             executor: submitit.Executor | None = None) -> Outcome:
    """Run `jobs` (in an order where needs come first) until each is done, failed or blocked."""
    store = Store.of(store)
    executor = executor or make_executor(options, store.root / JOBS_DIR, log)
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
                    job = by_key[key]
                    if key not in done and job.done(store):  # it finished after `done` was read
                        done.add(key)
                    elif key not in done:
                        error, log_path = _error_line(handle), str(handle.paths.stderr)
                        outcome.failed[key] = {"label": job.label, "error": error, "log": log_path}
                        job.mark_failed(store, error, log_path)
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
            room = options.workers - len(submitted) if options.executor is Executor.LOCAL else len(ready)
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
            run_options: RunOptions, submitted: dict[str, submitit.Job], gpu_slots: dict[str, int]) -> None:
    if not ready:
        return
    run_options = run_options.replace(quiet=True, wait=True)  # progress bars would only fill the logs
    calls = [StoreJob(job, str(store.root), run_options, options.threads) for job in ready]
    if options.executor is Executor.LOCAL:
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
