"""The one training loop. Every experiment (dense network, ticket, baseline, stability copy) is a
call of `train()` with a different start state, mask and seeds.

Training is counted in iterations. The learning-rate schedule and the data order are functions
of the iteration number, so training from step k to the end continues exactly where a run from
0 would be at step k. The hot path stays on the device: batches are gathered by index, the mask
is re-applied with one fused multiply after each optimizer step (so momentum and weight decay
cannot revive a pruned weight), and loss/accuracy accumulate on the device until an evaluation
reads them.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .config import TrainConfig
from .errors import ConfigError, StepError, TrainingDiverged
from .masks import Mask
from .data.loader import Dataset, Loader
from .replicas import FP16_REFUSAL, ReplicaBatches, repeated, stacks_precision
from .seeds import stream_seed
from .steps import Step, to_iterations


@dataclass(frozen=True)
class Schedule:
    """Iteration-based lr schedule: linear warm-up from 0, then step drops."""

    lr: float
    total: int
    warmup: int
    drops: tuple[int, ...]
    gamma: float
    eval_every: int

    @classmethod
    def from_config(cls, config: TrainConfig, iterations_per_epoch: int) -> Schedule:
        it = lambda s: to_iterations(s, iterations_per_epoch)  # noqa: E731
        return cls(config.lr, it(config.iterations), it(config.warmup),
                   tuple(sorted(it(d) for d in config.lr_drops)), config.lr_gamma, max(1, it(config.eval_every)))

    def lr_at(self, iteration: int) -> float:
        lr = self.lr * self.gamma ** sum(iteration >= d for d in self.drops)
        if iteration < self.warmup:
            lr *= (iteration + 1) / self.warmup
        return lr


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               nesterov=config.nesterov, foreach=True)
    # fused Adam is ~1.5x faster than the default on CPU and exact to float rounding.
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str):
    """Mixed precision for the forward pass and loss (weights and optimizer stay in fp32)."""
    dtype = PRECISIONS[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def compile_mode(device: torch.device) -> str:
    """torch.compile's mode for `--compile`: on one GPU "reduce-overhead", which replays each step
    as CUDA graphs (ResNet-20 at batch 128 on an H200: 2.5x eager; the default mode was no faster
    than eager, since small networks are bound by kernel launches); elsewhere the default mode
    (DDP's gradient hooks cannot be captured in a graph)."""
    return "reduce-overhead" if device.type == "cuda" and distributed.world_size() == 1 else "default"


def _channels_last(model: nn.Module, device: torch.device) -> bool:
    """On a GPU, convolutions run faster on NHWC tensors (cuDNN); elsewhere keep the default."""
    return device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """(mean loss, accuracy) over the batches, with the model in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum: float | torch.Tensor = 0.0  # tensors on the batches' device after the first batch:
    correct: int | torch.Tensor = 0         # one host synchronisation per evaluation, not per batch
    count = 0
    for x, y in batches:
        out = model(x)
        loss_sum = loss_sum + F.cross_entropy(out.float(), y, reduction="sum").double()
        correct = correct + (out.argmax(1) == y).sum()
        count += len(y)
    model.train(was_training)
    return float(loss_sum) / max(count, 1), int(correct) / max(count, 1)


@dataclass
class TrainResult:
    metrics: list[dict] = field(default_factory=list)  # one record per evaluation
    failure: str | None = None  # a stacked replica whose loss became NaN/inf: why (the others train on)

    @property
    def final(self) -> dict:
        return self.metrics[-1]


Checkpoint = Callable[[int, nn.Module, torch.optim.Optimizer], None]


@dataclass(frozen=True)
class ResumeCadence:
    """How often train() saves its resume file: every `iterations` steps and/or every `seconds` of
    training (checked between steps). Where the saves fall never changes the result."""

    iterations: int = 0
    seconds: float = 0.0

    def due(self, iteration: int, since_last_save: float) -> bool:
        return bool(self.iterations and iteration % self.iterations == 0) or \
            bool(self.seconds and since_last_save >= self.seconds)


def train(model: nn.Module, data: Dataset, config: TrainConfig, *, mask: Mask | None = None, start: Step | str | int = 0,
          stop: Step | str | int | None = None, data_seed: int = 0, augment: bool = False,
          device: torch.device | str = "cpu", checkpoints: Mapping[int, Checkpoint] | None = None,
          optimizer_state: dict | None = None, resume_path: str | Path | None = None,
          resume_every: ResumeCadence | int = 0,
          quiet: bool = False, description: str = "train", compile: bool | str = False) -> TrainResult:
    """Train `model` in place from iteration `start` to `stop` (default: the end of the schedule).

    data: a dataset with `train_loader()` and `test_batches()` (see `lth.data`).
    mask: pruned weights are zeroed before the first step and after every optimizer step.
    start, stop: steps ("500it", "2ep") or numbers of iterations.
    data_seed: the seed of the data order.
    compile: run the forward and backward passes through `torch.compile` (same weights and
        checkpoints; float results may differ in the last bits): a mode name, or True for
        `compile_mode`'s choice (CUDA graphs on one GPU).
    config.precision: "bf16"/"fp16" autocast the forward pass and loss (fp16 with a gradient scaler);
        weights, optimizer and evaluation stay fp32.
    checkpoints: {iteration: callback(iteration, model, optimizer)} called when the weights are those
        after `iteration` steps (the rewind checkpoint among them).
    optimizer_state: start from this optimizer state (rewinding the optimizer) instead of a fresh one.
    resume_path: if given, the full training state is saved there at the `resume_every` cadence (a
        ResumeCadence, or a number of steps) and training resumes from it when it exists; the result
        is bit-identical on CPU.

    To train the K replicas of a stacked model (replicas.py), each with its own data order, call
    `train_replicas` with K data seeds.
    """
    if not isinstance(data_seed, int):  # (lth <= 0.1's way to train stacked replicas, deprecated then removed)
        raise ConfigError("train() trains one model from one data seed; for K stacked replicas call "
                          "train_replicas(model, data, config, data_seeds, ...)")
    return train_replicas(model, data, config, [data_seed], mask=mask, start=start, stop=stop, augment=augment,
                          device=device, checkpoints=checkpoints, optimizer_state=optimizer_state,
                          resume_path=resume_path, resume_every=resume_every, quiet=quiet,
                          description=description, compile=compile)[0]


def train_replicas(model: nn.Module, data: Dataset, config: TrainConfig, data_seeds: Sequence[int], *, mask: Mask | None = None,
                   start: Step | str | int = 0, stop: Step | str | int | None = None, augment: bool = False,
                   device: torch.device | str = "cpu", checkpoints: Mapping[int, Checkpoint] | None = None,
                   optimizer_state: dict | None = None, resume_path: str | Path | None = None,
                   resume_every: ResumeCadence | int = 0, quiet: bool = False, description: str = "train",
                   compile: bool | str = False) -> list[TrainResult]:
    """`train()` for a model of len(data_seeds) stacked replicas (replicas.stack_models; one seed: a
    plain model), each replica with its own data order: one TrainResult per replica. A mask is the
    stacked masks (replicas.stack_masks); the resume file holds every replica's state."""
    if not data_seeds:
        raise ConfigError("train_replicas needs at least one data seed")
    device = torch.device(device)
    seeds = list(data_seeds)
    loader = _loader(data, config, seeds, device, augment)
    schedule = Schedule.from_config(config, loader.iterations_per_epoch)
    start, stop = _span(start, stop, schedule, loader.iterations_per_epoch)  # (checked before the model changes)
    loop = _Loop.set_up(model, config, loader, schedule, seeds, device, mask, optimizer_state, compile)
    checkpoints = dict(checkpoints or {})
    cadence = resume_every if isinstance(resume_every, ResumeCadence) else ResumeCadence(iterations=resume_every)
    saves = resume_path is not None and (cadence.iterations or cadence.seconds)
    results = [TrainResult() for _ in seeds]
    interval = _Interval.empty(loop.replicas, start, device)
    iteration = start
    if resume_path is not None and Path(resume_path).exists():
        iteration, interval = _resume(resume_path, device, model, loop.optimizer, loop.scaler, results)

    # The model's own randomness (dropout, a user's torch.rand) draws from the global generators,
    # seeded at each step by (data seeds, iteration): reproducible, and a resumed run draws what an
    # uninterrupted one does. The caller gets its generators' states back at the end.
    callers_states = [generator.get_state() for generator in loop.step_generators]
    bar = tqdm(total=stop - start, initial=iteration - start, desc=description, disable=quiet,
               leave=False, mininterval=0.5, dynamic_ncols=True)
    last_save = time.monotonic()
    while True:
        if iteration in checkpoints:
            checkpoints[iteration](iteration, model, loop.optimizer)
        if iteration > start and (iteration % loop.schedule.eval_every == 0 or iteration == stop) \
                and iteration > interval.start:
            records = _record(model, data, device, iteration, interval, loop.replicas)
            for r, record in zip(results, records):
                if r.failure is None:
                    r.metrics.append(record)
                    r.failure = _divergence(record, interval.start)
            if all(r.failure for r in results):  # (alone: at once, the last resume file is the last good state)
                raise TrainingDiverged(str(results[0].failure) + ("" if loop.replicas == 1 else
                                                             f" (in all {loop.replicas} stacked replicas)"))
            bar.set_postfix(loss=f"{records[0]['train_loss']:.3f}", test_acc=f"{records[0]['test_accuracy']:.3f}")
            interval.reset(iteration)
        if iteration >= stop:
            break
        if saves and iteration > start and cadence.due(iteration, time.monotonic() - last_save):
            _save_resume(resume_path, model, loop.optimizer, loop.scaler, iteration, interval, results)
            last_save = time.monotonic()
        loop.step(iteration, interval)
        iteration += 1
        bar.update(1)
    bar.close()
    for generator, state in zip(loop.step_generators, callers_states):
        generator.set_state(state)
    if resume_path is not None:
        Path(resume_path).unlink(missing_ok=True)
    return results


def step_seconds(model: nn.Module, data: Dataset, config: TrainConfig, data_seeds: Sequence[int], device: torch.device,
                 steps: int = 5, warmup: int = 2) -> float:
    """Median wall seconds of one optimizer step of `model` (K stacked replicas for K data seeds) on
    its real batches, after `warmup` steps; `model` is trained by it (pass a throwaway copy). What
    `--replicas auto` measures."""
    device = torch.device(device)
    loader = _loader(data, config, list(data_seeds), device, False)
    schedule = Schedule.from_config(config, loader.iterations_per_epoch)
    loop = _Loop.set_up(model, config, loader, schedule, list(data_seeds), device, None, None, False)
    interval = _Interval.empty(loop.replicas, 0, device)
    times = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for iteration in range(warmup + steps):
            began = time.perf_counter()
            loop.step(iteration, interval)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - began)
    return sorted(times[warmup:])[steps // 2]


def _span(start: Step | str | int, stop: Step | str | int | None, schedule: Schedule, ipe: int) -> tuple[int, int]:
    """`start` and `stop` in iterations (stop: the end of the schedule by default)."""
    start = to_iterations(start, ipe)
    stop = schedule.total if stop is None else to_iterations(stop, ipe)
    if not 0 <= start <= stop:
        raise StepError(f"cannot train from iteration {start} to {stop}: the schedule has {schedule.total} iterations")
    return start, stop


@dataclass
class _Loop:
    """What every step of one training uses, set up once: the model's forward (DDP, compiled), the
    optimizer and its scaler, the mask's parameter pairs, the batches and the schedule."""

    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    precision: contextlib.AbstractContextManager
    pairs: tuple[list, list] | None
    loader: Loader
    schedule: Schedule
    seeds: list[int]
    channels_last: bool
    graphs: bool
    step_generators: list[torch.Generator]
    current_lr: float | None = None

    @property
    def replicas(self) -> int:
        return len(self.seeds)

    @classmethod
    def set_up(cls, model: nn.Module, config: TrainConfig, loader: Loader, schedule: Schedule, seeds: list[int],
               device: torch.device, mask: Mask | None, optimizer_state: dict | None, compile: bool | str) -> _Loop:
        model.to(device).train()
        channels_last = _channels_last(model, device)
        if channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # (Module.to takes it; the stubs do not say)
        forward: Callable[[torch.Tensor], torch.Tensor] = distributed.wrap(model)  # DDP under torchrun, else the model
        mode = compile_mode(device) if compile is True else compile
        if mode:
            forward = torch.compile(forward, mode=mode)
        optimizer = make_optimizer(model, config)
        # fp16 needs loss scaling; for fp32/bf16 the scaler is disabled (and bypassed in the loop)
        scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
        pairs = _mask_pairs(model, mask, device)
        if pairs:
            with torch.no_grad():
                torch._foreach_mul_(pairs[0], pairs[1])
        return cls(model, forward, optimizer, scaler, autocast(device, config.precision), pairs, loader, schedule,
                   seeds, channels_last, mode == "reduce-overhead", _global_generators(device))

    def step(self, iteration: int, interval: _Interval) -> None:
        """One optimizer step on the batch of `iteration`, the mask re-applied after it."""
        x, y = self.loader.batch(iteration)
        for generator in self.step_generators:
            generator.manual_seed(stream_seed("step", *self.seeds, iteration))
        lr = self.schedule.lr_at(iteration)
        if lr != self.current_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.current_lr = lr
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.graphs:  # a new training step: the last step's graph outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        with self.precision:
            out = self.forward(x)
            loss, losses = _loss(out, y, self.replicas)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:  # (the disabled scaler's pass-through calls are measurable on a small model)
            loss.backward()
            self.optimizer.step()
        if self.pairs:
            with torch.no_grad():
                torch._foreach_mul_(self.pairs[0], self.pairs[1])
        interval.add(losses, out, y, self.replicas)


def _loader(data: Dataset, config: TrainConfig, seeds: list[int], device: torch.device, augment: bool) -> Loader:
    """The batches of each data seed; for several (stacked replicas), all of them at once."""
    if len(seeds) > 1 and distributed.world_size() > 1:
        raise ConfigError("stacked replicas train in one process")
    if len(seeds) > 1 and not stacks_precision(config.precision):
        raise ConfigError(f"fp16 cannot train stacked replicas: {FP16_REFUSAL}; train them one by one")
    # (a dataset of the user's own without `streams` draws its order as it likes)
    streams = {"streams": config.streams} if "streams" in inspect.signature(data.train_loader).parameters else {}
    loaders = [data.train_loader(config.batch_size, seed, device, augment, **streams) for seed in seeds]
    return loaders[0] if len(loaders) == 1 else ReplicaBatches(loaders)


def _loss(out: torch.Tensor, y: torch.Tensor, replicas: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the loss to differentiate, the per-replica losses to record). Stacked: the sum of the
    replicas' mean losses, so each replica gets exactly its own gradient."""
    if replicas == 1:
        loss = F.cross_entropy(out, y)
        return loss, loss
    losses = F.cross_entropy(out, y, reduction="none").view(replicas, -1).mean(1)
    return losses.sum(), losses


@dataclass
class _Interval:
    """The training loss and accuracy summed on the device since the last evaluation (per replica)."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    seen: int
    start: int

    @classmethod
    def empty(cls, replicas: int, start: int, device: torch.device) -> _Interval:
        shape = () if replicas == 1 else (replicas,)
        return cls(torch.zeros(shape, device=device), torch.zeros(shape, dtype=torch.long, device=device), 0, start)

    def add(self, losses: torch.Tensor, out: torch.Tensor, y: torch.Tensor, replicas: int) -> None:
        self.loss_sum += losses.detach()
        hits = out.detach().argmax(1).eq_(y)  # (in place: one allocation fewer per step)
        self.correct += hits.sum() if replicas == 1 else hits.view(replicas, -1).sum(1)
        self.seen += len(y) // replicas

    def reset(self, iteration: int) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()
        self.seen, self.start = 0, iteration


def _global_generators(device: torch.device) -> list[torch.Generator]:
    """The default generators a model's random ops use on `device` (the CPU's always: CPU ops run
    too). Seeded directly: torch.manual_seed costs ~130 us, generator.manual_seed ~2 us."""
    generators = [torch.random.default_generator]
    if device.type == "cuda":
        generators.append(torch.cuda.default_generators[device.index if device.index is not None
                                                        else torch.cuda.current_device()])
    return generators


def _mask_pairs(model: nn.Module, mask: Mask | None, device: torch.device):
    if mask is None:
        return None
    params = dict(model.named_parameters())
    mask.to(device).apply_(model)  # also checks that the mask fits the model
    names = [n for n in mask if not mask[n].all()]  # all-ones masks (a dense level) have nothing to zero
    if not names:
        return None
    return [params[n] for n in names], [mask[n].to(device, params[n].dtype) for n in names]


def _record(model: nn.Module, data: Dataset, device: torch.device, iteration: int, interval: _Interval,
            replicas: int = 1) -> list[dict]:
    """One metrics record per replica."""
    loss_sum, correct, seen, interval_start = interval.loss_sum, interval.correct, interval.seen, interval.start
    if distributed.world_size() > 1:  # metrics over the global batch, as in one process
        totals = torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=device)])
        distributed.sum_across_ranks(totals)
        loss_sum, correct, seen = totals[0] / distributed.world_size(), totals[1], int(totals[2])
    train_losses = [value / max(iteration - interval_start, 1) for value in loss_sum.reshape(-1).tolist()]
    accuracies = [value / max(seen, 1) for value in correct.reshape(-1).tolist()]
    if replicas == 1 and not math.isfinite(train_losses[0]):  # (no evaluation of a diverged model)
        return [{"iteration": iteration, "train_loss": train_losses[0]}]
    tests = [evaluate(model, data.test_batches(device))] if replicas == 1 else \
        evaluate_replicas(model, data.test_batches(device), replicas)
    return [{"iteration": iteration, "train_loss": train_loss, "train_accuracy": accuracy, "test_loss": test_loss,
             "test_accuracy": test_accuracy}
            for train_loss, accuracy, (test_loss, test_accuracy) in zip(train_losses, accuracies, tests)]


def _divergence(record: dict, interval_start: int) -> str | None:
    """Why a training failed, if its training loss is no longer finite."""
    if math.isfinite(record["train_loss"]):
        return None
    return (f"the training loss became {record['train_loss']} between iterations {interval_start} and "
            f"{record['iteration']}; lower the learning rate or add warm-up")


@torch.no_grad()
def evaluate_replicas(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], replicas: int) -> list[tuple[float, float]]:
    """evaluate() for each replica of a stacked model (all see the same batches)."""
    was_training = model.training
    model.eval()
    loss_sum: float | torch.Tensor = 0.0  # on the batches' device: one synchronisation at the end
    correct: int | torch.Tensor = 0
    count = 0
    for x, y in repeated(batches, replicas):
        out = model(x).float().view(replicas, len(y), -1)
        targets = y.expand(replicas, -1)
        loss_sum = loss_sum + F.cross_entropy(out.transpose(1, 2), targets, reduction="none").sum(1).double()
        correct = correct + (out.argmax(2) == targets).sum(1)
        count += len(y)
    model.train(was_training)
    if count == 0:
        return [(0.0, 0.0)] * replicas
    losses, hits = torch.as_tensor(loss_sum).tolist(), torch.as_tensor(correct).tolist()
    return [(loss / count, c / count) for loss, c in zip(losses, hits)]


def _save_resume(path, model, optimizer, scaler, iteration: int, interval: _Interval, results: list[TrainResult]) -> None:
    """The full training state (of every replica) at `iteration`; _resume reads it back."""
    import io

    from .store import save_checked

    buffer = io.BytesIO()
    metrics = results[0].metrics if len(results) == 1 else [r.metrics for r in results]
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": iteration,
             "loss_sum": interval.loss_sum, "correct": interval.correct, "seen": interval.seen,
             "interval_start": interval.start, "metrics": metrics}
    if any(r.failure for r in results):
        state["failures"] = [r.failure for r in results]
    if scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    torch.save(state, buffer)
    save_checked(path, buffer.getvalue())


def _resume(path, device, model, optimizer, scaler, results: list[TrainResult]) -> tuple[int, _Interval]:
    """Load a resume file into the model, optimizer, scaler and results; the iteration and interval."""
    state = _load_resume(path, device)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    for result, metrics in zip(results, state["metrics"] if len(results) > 1 else [state["metrics"]]):
        result.metrics = metrics
    for result, failure in zip(results, state.get("failures", [])):
        result.failure = failure
    return state["iteration"], _Interval(state["loss_sum"], state["correct"], state["seen"], state["interval_start"])


def _load_resume(path, device) -> dict:
    from .store import load_torch_checked

    return load_torch_checked(path, device, "delete it to restart that training")
