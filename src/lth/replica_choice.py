"""How many trainings of one shape stack into one computation: `--replicas off | K | auto`.

auto measures rather than assumes: the step time of K = 1, 2, 4, ... stacked replicas of the network
on its real batches, doubling K while the time per replica falls by at least MIN_GAIN (on a GPU a
small network's step is launch-bound and K copies cost little more than one; on a CPU a convolution
already keeps the cores busy and stacking can be slower, so auto keeps K = 1 there). What it measured
is kept in the store (REPLICA_PROBES_FILE), per network, batch, precision, device and hardware, so
every later choice in that store, in any process, is the same one: runs stay functions of their
config on one machine. The choice and why go into each level's execution record (`lth ls`).
A user's model stacks through torch.func where `replicas.functional_check` finds that its forward
allows it, else trains one by one, and the record says which.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from filelock import FileLock
from torch import nn

from .config import section_key
from .distributed import world_size
from .experiment import Setup
from .hardware import hardware
from .replicas import FP16_REFUSAL, functional_check, stack_layout, stack_models, stacks_precision
from .store import REPLICA_PROBES_FILE, Store, read_json, write_json
from .train import step_seconds

MAX_REPLICAS = 16  # the largest K auto tries
MIN_GAIN = 0.10  # doubling K must cut the time per replica by this fraction


@dataclass(frozen=True)
class ReplicaChoice:
    size: int  # K: trainings per stacked computation (1: one by one)
    why: str  # for people: the flag, or what auto measured

    def record(self) -> dict[str, Any]:
        return {"replicas": self.size, "replicas_why": self.why}


def choose_replicas(replicas: str | int, setup: Setup, trainings: int, store: Store | None) -> ReplicaChoice:
    """K for `trainings` trainings of `setup`'s network (never more than there are)."""
    config = setup.config
    unstacked = without_network(replicas, trainings)
    if unstacked is not None:
        return unstacked
    if not stacks_precision(config.train.precision):
        return ReplicaChoice(1, f"one by one: {FP16_REFUSAL}")
    if world_size() > 1:
        return ReplicaChoice(1, "one by one: data-parallel processes train one model")
    how = ""
    if setup.registered:
        if stack_layout(setup.new_model()) is None:
            return ReplicaChoice(1, "one by one: the network has layers that cannot be stacked (replicas.stack_layout)")
    else:  # a user's model: through torch.func, if its forward allows it
        reason = functional_check([setup.new_model(seed) for seed in (0, 1)], _a_batch(setup))
        if reason:
            return ReplicaChoice(1, f"one by one: {reason}")
        how = " (torch.func)"
    if replicas != "auto":
        return ReplicaChoice(min(int(replicas), trainings), f"--replicas {replicas}{how}")
    curve = measured_curve(setup, min(trainings, MAX_REPLICAS), store)
    size = best_size(curve, trainings)
    shown = ", ".join(f"K={k} {1000 * s:.3g} ms" for k, s in sorted(curve.items()))
    return ReplicaChoice(size, f"auto{how}: step time per replica {shown}")


def without_network(replicas: str | int, trainings: int) -> ReplicaChoice | None:
    """The choice when it needs no look at the network: --replicas off, or a single training."""
    if replicas in ("off", 1, "1") or trainings <= 1:
        return ReplicaChoice(1, "--replicas off" if replicas in ("off", 1, "1") else "one training")
    return None


def _a_batch(setup: Setup) -> torch.Tensor:
    """A few of the run's real training inputs (for the torch.func check)."""
    return setup.data.train_loader(min(8, setup.config.train.batch_size), 0, setup.device).batch(0)[0]


def best_size(curve: dict[int, float], trainings: int) -> int:
    """Double K while the time per replica falls by MIN_GAIN (and K stays within `trainings`)."""
    size = 1
    while 2 * size in curve and size < trainings and curve[2 * size] <= (1 - MIN_GAIN) * curve[size]:
        size *= 2
    return min(size, trainings)


def measured_curve(setup: Setup, up_to: int, store: Store | None) -> dict[int, float]:
    """Seconds per replica per step at K = 1, 2, 4, ... (stopping where stacking stops paying, memory
    runs short or K reaches `up_to`), read from the store when measured before."""
    key = probe_key(setup)
    path = None if store is None else store.root / REPLICA_PROBES_FILE
    if path is None:
        return _measure(setup, up_to, {})
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        probes = read_json(path) if path.exists() else {}
        known = {int(k): v for k, v in probes.get(key, {}).items()}
        curve = _measure(setup, up_to, known)
        if curve != known:
            write_json(path, {**probes, key: {str(k): v for k, v in curve.items()}})
    return curve


def probe_key(setup: Setup) -> str:
    """What a measurement depends on: the network, its input, the batch, precision, device, hardware."""
    c = setup.config
    return " | ".join([section_key(c.model), section_key(c.data), f"batch {c.train.batch_size}", c.train.precision,
                       f"{c.train.optimizer}", str(setup.device.type), hardware(setup.device),
                       f"{torch.get_num_threads()} threads"])


def _measure(setup: Setup, up_to: int, known: dict[int, float]) -> dict[int, float]:
    curve = dict(known)
    size = 1
    while size <= up_to:
        if size not in curve:
            seconds = _time(setup, size)
            if seconds is None:  # out of memory: K stops below this
                break
            curve[size] = seconds
        if size > 1 and curve[size] > (1 - MIN_GAIN) * curve[size // 2]:
            break  # stacking stopped paying: larger K is not tried
        size *= 2
    return curve


def _time(setup: Setup, size: int) -> float | None:
    """Seconds per replica of one step of `size` stacked fresh copies (None: they do not fit)."""
    models: list[nn.Module] = [setup.new_model(seed) for seed in range(size)]
    model = models[0] if size == 1 else stack_models(models, setup.registered)
    try:
        return step_seconds(model, setup.data, setup.config.train, list(range(size)), setup.device) / size
    except torch.OutOfMemoryError:
        return None
    finally:
        del model, models
        if setup.device.type == "cuda":
            torch.cuda.empty_cache()

