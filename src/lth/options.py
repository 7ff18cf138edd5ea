"""How runs are executed, defined once. None of it changes what a run computes, so none of it is in
the config or its address. The library's run functions take it as one record,
`run_imp(config, 3, store, options=RunOptions(quiet=True))`; the CLI's "running" flags are generated
from the fields' metadata, as the config's are. So are its "executor" flags, from ExecutorOptions (how
executors.run_jobs fans jobs out; here, not in executors.py, so that `lth --help` need not import submitit)."""
from __future__ import annotations

import argparse
import enum
import dataclasses
import os
import shutil
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigError

class Executor(enum.Enum):
    """Where a graph's jobs run when not inline (inline, --executor's default, is no executor: the
    trainings run in the calling process)."""

    LOCAL = "local"  # processes on this machine
    SLURM = "slurm"  # one SLURM job per job


EXECUTORS = ("inline", *(e.value for e in Executor))  # --executor's choices
LOCAL_TIMEOUT_MIN = 3 * 24 * 60  # a job's time limit where --timeout-min does not say
SLURM_TIMEOUT_MIN = 240


def parse_replicas(text: str) -> str | int:
    """--replicas: auto, off or a number K >= 1."""
    if text in ("auto", "off"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be auto, off or a number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _option(default: Any, help: str, flag: str | None = None, **argparse_keywords: Any) -> Any:
    """A field of RunOptions or ExecutorOptions: its default, `help`, the CLI `flag` that sets it (None:
    library only) and the flag's other argparse keywords. A mutable default (a dict) is given as its
    type: `_option(dict, ...)` is a field whose default is a new empty dict."""
    metadata = {"help": help, "flag": flag, "argparse": argparse_keywords}
    if default is dict:
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunOptions:
    data_root: str | None = _option(None, "directory holding the dataset files (not needed for mnist1d)", "--data-root",
                                    metavar="DIR")
    device: str = _option("auto", "default: cuda if available", "--device", choices=["auto", "cpu", "cuda"])
    checkpoint_every: str = _option("auto", "save the full training state this often so a killed run resumes, e.g. "
                                    "500it or 1ep (default auto: every 2 minutes of training)", "--checkpoint-every",
                                    metavar="STEP")
    wait: bool = _option(True, "if another process is training the same run, exit (code 2) naming it instead of "
                         "waiting for it and reading its result", "--no-wait")
    compile: bool | str = _option(False, "train through torch.compile: on one GPU in its reduce-overhead mode, "
                                  "replaying each step as CUDA graphs (ResNet-20: 2.5x eager on an H200), after a "
                                  "compilation of a minute or so; measured slower on CPU; last-bit float differences",
                                  "--compile")
    replicas: str | int = _option("auto", "train several runs of one network (seeds, baselines, stability copies) as K "
                                  "stacked replicas of one computation (default auto: K measured per network and "
                                  "device, kept in <store>/_replicas.json; off: one by one)", "--replicas",
                                  type=parse_replicas, metavar="auto|off|K")
    quiet: bool = _option(False, "no progress bars", "--quiet")
    data: Any = _option(None, "a dataset object to train on instead of loading config.data by name")
    model: Any = _option(None, "an nn.Module to prune instead of config.model (its current weights are the "
                         "initialisation; runs are addressed by a fingerprint of its weights)")

    def replace(self, **changes: Any) -> RunOptions:
        return dataclasses.replace(self, **changes)


@dataclass
class ExecutorOptions:
    """How executors.run_jobs runs jobs. Its flagged fields are the CLI's executor flags; `executor` is picked by
    --executor, whose default, inline, is no executor at all (the trainings run in the calling process)."""

    executor: Executor = _option(Executor.LOCAL, "local: processes on this machine; slurm: one SLURM job per job")
    workers: int = _option(2, "local: trainings at once (default %(default)s)", "--workers", type=int)
    gpus_per_job: int = _option(0, "GPUs per training; N > 1 runs it data-parallel, one process per GPU (default "
                                "%(default)s)", "--gpus-per-job", type=int, metavar="N")
    cpus_per_job: int | None = _option(None, "CPU threads per training (default: local, cores / workers; slurm, the "
                                       "cluster's default)", "--cpus-per-job", type=int, metavar="N")
    timeout_min: int | None = _option(None, "a job's time limit; a job that reaches it is requeued and resumes from its "
                                      f"last checkpoint (default {LOCAL_TIMEOUT_MIN} local, {SLURM_TIMEOUT_MIN} slurm)",
                                      "--timeout-min", type=int, metavar="MIN")
    slurm_partition: str | None = _option(None, "", "--slurm-partition", metavar="NAME")  # (default: the cluster's)
    slurm_array_parallelism: int = _option(256, "most jobs of one submitted array running at once (default "
                                           "%(default)s)", "--slurm-array-parallelism", type=int, metavar="N")
    slurm_options: dict[str, str] = _option(dict, "any other sbatch option, e.g. --slurm-option account=proj "
                                            "--slurm-option qos=high (repeatable)", "--slurm-option",
                                            action="append", metavar="KEY=VALUE")  # passed as #SBATCH --KEY=VALUE
    max_requeues: int = _option(20, "preemptions/time-outs a job may take; each resumes from its checkpoint")
    poll_seconds: float = _option(1.0, "how often the driver reads the store and the jobs' states")

    def __post_init__(self) -> None:
        try:  # (a name is taken for its member: ExecutorOptions("slurm"))
            self.executor = Executor(self.executor)
        except ValueError:
            raise ConfigError(f"unknown executor {self.executor!r}; choose one of {', '.join(EXECUTORS)}") from None
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.gpus_per_job < 0 or (self.cpus_per_job is not None and self.cpus_per_job < 1):
            raise ConfigError("--gpus-per-job must be 0 or more and --cpus-per-job at least 1")
        missing = [tool for tool in ("sbatch", "srun") if self.executor is Executor.SLURM and not shutil.which(tool)]
        if missing:
            raise ConfigError(f"--executor slurm needs SLURM's {' and '.join(missing)} on PATH; run the driver on a "
                              "login node of the cluster, or use --executor local")

    @property
    def threads(self) -> int:
        if self.cpus_per_job:
            return self.cpus_per_job
        return max(1, (os.cpu_count() or 1) // self.workers) if self.executor is Executor.LOCAL else 0


def _add_flags(cls: type, group: argparse._ArgumentGroup) -> None:
    """The CLI flags of `cls`' fields that have one: a True default is turned off by its --no- flag; a
    repeatable flag (action append) gathers a list, read into its field by the from_args function."""
    for f in fields(cls):
        flag = f.metadata["flag"]
        if flag is None:
            continue
        if f.default is True:
            group.add_argument(flag, dest=f.name, action="store_false", help=f.metadata["help"])
        elif f.default is False:
            group.add_argument(flag, dest=f.name, action="store_true", help=f.metadata["help"])
        else:
            group.add_argument(flag, dest=f.name, default=_flag_default(f), help=f.metadata["help"] or None,
                               **f.metadata["argparse"])


def _flag_default(f: dataclasses.Field) -> Any:
    """What the parser holds for a field's flag when it is not given."""
    return [] if f.metadata["argparse"].get("action") == "append" else f.default


def add_run_flags(group: argparse._ArgumentGroup) -> None:
    """The CLI flags of RunOptions' fields that have one: --data-root, --device, --checkpoint-every, ..."""
    _add_flags(RunOptions, group)


def from_args(args: argparse.Namespace, **changes: Any) -> RunOptions:
    """RunOptions from parsed flags (the fields without a flag keep their defaults)."""
    return RunOptions(**{**{f.name: getattr(args, f.name) for f in fields(RunOptions) if f.metadata["flag"]}, **changes})


def add_executor_flags(group: argparse._ArgumentGroup) -> None:
    """--executor, which picks ExecutorOptions.executor or inline, then the flags of ExecutorOptions' fields."""
    group.add_argument("--executor", choices=EXECUTORS, default=EXECUTORS[0],
                       help="inline: one training after another in this process (default); local: --workers parallel "
                       "processes on this machine; slurm: one SLURM job per training")
    _add_flags(ExecutorOptions, group)


def executor_flag_defaults() -> dict[str, tuple[str, Any]]:
    """ExecutorOptions' flags as {dest: (flag, its parsed default)}: --executor inline refuses any of them
    set to another value, as nothing would use it."""
    return {f.name: (f.metadata["flag"], _flag_default(f)) for f in fields(ExecutorOptions) if f.metadata["flag"]}


def executor_options_from_args(args: argparse.Namespace) -> ExecutorOptions:
    """ExecutorOptions from parsed flags, --executor local or slurm (the fields without a flag keep their defaults)."""
    values = {name: getattr(args, name) for name in executor_flag_defaults()}
    values["slurm_options"] = _key_values(values["slurm_options"])
    return ExecutorOptions(args.executor, **values)


def _key_values(items: list[str]) -> dict[str, str]:
    """--slurm-option KEY=VALUE, repeated, as {KEY: VALUE} (a leading -- of KEY dropped)."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm-option takes KEY=VALUE, got {item!r}")
        pairs[key.strip().lstrip("-")] = value
    return pairs
