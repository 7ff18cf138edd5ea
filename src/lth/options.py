"""How runs are executed, defined once. None of it changes what a run computes, so none of it is in
the config or its address. The library's run functions take it as one record,
`run_imp(config, 3, store, options=RunOptions(quiet=True))`; the CLI's "running" flags are generated
from the fields' metadata, as the config's are."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any


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
    """A field of RunOptions: its default, `help`, and the CLI `flag` that sets it (None: library only)."""
    return field(default=default, metadata={"help": help, "flag": flag, "argparse": argparse_keywords})


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




def add_run_flags(group: argparse._ArgumentGroup) -> None:
    """The CLI flags of RunOptions' fields that have one (a True default is turned off by its --no- flag)."""
    for f in fields(RunOptions):
        flag = f.metadata["flag"]
        if flag is None:
            continue
        if f.default is True:
            group.add_argument(flag, dest=f.name, action="store_false", help=f.metadata["help"])
        elif f.default is False:
            group.add_argument(flag, dest=f.name, action="store_true", help=f.metadata["help"])
        else:
            group.add_argument(flag, dest=f.name, default=f.default, help=f.metadata["help"], **f.metadata["argparse"])


def from_args(args: argparse.Namespace, **changes: Any) -> RunOptions:
    """RunOptions from parsed flags (the fields without a flag keep their defaults)."""
    return RunOptions(**{**{f.name: getattr(args, f.name) for f in fields(RunOptions) if f.metadata["flag"]}, **changes})
