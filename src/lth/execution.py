"""How a level was executed -- what can change its numbers without changing its config (docs/store.md,
"What changes the numbers"): recorded beside each level, shown by `lth ls` and the report, and
warned about when a run mixes executions."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from .distributed import is_main, world_size
from .hardware import hardware
from .errors import StoreError
from .store import EXECUTION_FILE, Run, read_json
from .train import compile_mode


def execution(device: torch.device, precision: str, replicas: int, compile: bool | str,
              replicas_why: str | None = None) -> dict[str, Any]:
    """How a level was executed: what can change its numbers without changing its config (docs/store.md,
    "What changes the numbers"), recorded in each level's summary (compile: False or the mode)."""
    from . import __version__  # (lth/__init__ imports the library: not at module load)

    name = device.type if device.type != "cuda" else f"cuda:{torch.cuda.get_device_name(device)}"
    compile = compile_mode(device) if compile is True else compile
    return {"processes": world_size(), "device": name, "precision": precision, "replicas": replicas,
            "threads": torch.get_num_threads(), "compile": compile, "torch": torch.__version__, "lth": __version__,
            "hardware": hardware(device), **({"replicas_why": replicas_why} if replicas_why else {})}


def describe_execution(how: dict[str, Any]) -> str:
    """A compact label, e.g. "cpu 2thr fp32 torch 2.13.0 lth 0.1.0 on AMD EPYC (AVX512, mkl)"."""
    return " ".join([how["device"] + (f" x{how['processes']}" if how["processes"] > 1 else ""), f"{how['threads']}thr",
                     how["precision"], *([f"K{how['replicas']}"] if how["replicas"] > 1 else []),
                     *(["(K by auto)"] if str(how.get("replicas_why", "")).startswith("auto:") else []),
                     *([f"compiled {how['compile']}" if isinstance(how["compile"], str) else "compiled"]
                       if how["compile"] else []), f"torch {how['torch']}", f"lth {how['lth']}",
                     *([f"on {how['hardware']}"] if how.get("hardware") else [])])


def warn_if_executed_differently(run: Run, level: int, how: dict[str, Any], resuming: bool) -> None:
    """One line on stderr when a level resumes, or a run is extended, with other execution settings
    than its earlier work: the result then mixes them (and differs from a run made in one go)."""
    earlier: list[tuple[str, dict[str, Any] | None]] = []
    record = run.level_dir(level) / EXECUTION_FILE
    if resuming and record.exists():
        earlier.append((f"level {level} before it was interrupted", _read_quietly(record)))
    done = [earlier_level for earlier_level in run.levels_done() if earlier_level < level]
    if done:
        earlier.append((f"level {done[-1]}", run.summary(done[-1]).get("execution")))  # (verified: store.read_json)
    for where, before in earlier:
        if not before or not is_main():
            continue
        # (a key the earlier record lacks was not recorded then: an older lth, not a change)
        changed = [f"{key} {before[key]} -> {value}" for key, value in how.items() if key in before and before[key] != value and key != "replicas_why"]
        if changed:
            print(f"lth: warning: run {run.hash} level {level} runs with other settings than {where} "
                  f"({', '.join(changed)}); its numbers may differ from a run made in one go (docs/store.md: "
                  "What changes the numbers)", file=sys.stderr)


def _read_quietly(path: Path) -> dict[str, Any]:
    """An interrupted level's record, checksum verified; a damaged one is not trusted, and the level resumes."""
    try:
        record = read_json(path)
    except StoreError:
        return {}
    return record if isinstance(record, dict) else {}
