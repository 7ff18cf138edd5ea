"""K copies of a small network trained as one batched computation.

Small networks leave the hardware idle: one MLP step is a few small matrix products. K copies that
share a shape (different seeds; a ticket and its data-order copy; baselines at one level) are
stacked into one model whose every `nn.Linear` holds weights of shape [K, out, in] and multiplies
with one `torch.baddbmm`. A batch is the K replicas' batches one after another ([K * B, ...]), so
the model's own forward code (flatten, ReLU, residual additions) runs unchanged, and each replica
sees only its own rows. The loss is the sum of the K per-replica mean losses, so each replica's
gradient is exactly the one it would get alone; SGD and Adam update elementwise, so each replica
follows its own training (equal to training it alone up to float rounding, tested).

Only models whose parameters all live in `nn.Linear` layers are stacked (batch norm would mix
replicas' statistics; convolutions would need grouped kernels); everything else trains one by one.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import torch
from torch import nn

from .config import section_key
from .data.loader import gather
from .distributed import world_size
from .masks import Mask
from .models import MODELS
from .store import RESUME_FILE

if TYPE_CHECKING:
    from .levels import Training

MAX_AUTO_REPLICAS = 8


class StackedLinear(nn.Module):
    """K independent linear layers applied to K consecutive blocks of rows of the input."""

    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.replicas = len(layers)
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers])) \
            if layers[0].bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(self.replicas, -1, x.shape[-1])  # [K, B, in]
        if torch.is_autocast_enabled(x.device.type):  # autograd's own backward handles the casts
            out = _stacked_linear(rows, self.weight, self.bias)
        else:
            out = _StackedLinearFunction.apply(rows, self.weight, self.bias)
        return out.reshape(-1, out.shape[-1])


def _stacked_linear(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if bias is None:
        return torch.bmm(rows, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))


class _StackedLinearFunction(torch.autograd.Function):
    """_stacked_linear with the weight gradient computed straight in the weight's [K, out, in]
    layout: autograd's bmm backward yields it transposed, and copying it back took ~10% of a
    stacked step on CPU."""

    @staticmethod
    def forward(ctx, rows, weight, bias):
        ctx.save_for_backward(rows, weight)
        ctx.has_bias = bias is not None
        return _stacked_linear(rows, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        rows, weight = ctx.saved_tensors
        grad_rows = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = torch.bmm(grad.transpose(1, 2), rows) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_rows, grad_weight, grad_bias


def stackable(model: nn.Module) -> bool:
    """Whether every parameter of `model` belongs to an nn.Linear (then it can be stacked)."""
    owners = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    return bool(owners) and all(type(m) is nn.Linear for m in owners)


def stack_models(models: Sequence[nn.Module]) -> nn.Module:
    """One model computing all of `models` (same architecture) on [K * B, ...] inputs."""
    stacked = copy.deepcopy(models[0])
    for name, module in list(models[0].named_modules()):
        if isinstance(module, nn.Linear):
            layers = [dict(m.named_modules())[name] for m in models]
            parent, _, leaf = name.rpartition(".")
            setattr(stacked.get_submodule(parent) if parent else stacked, leaf, StackedLinear(layers))
    return stacked


def replica_state(stacked_state: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
    """Replica `index`'s state_dict (the original model's keys and shapes) from the stacked one."""
    return {name: tensor[index].clone() for name, tensor in stacked_state.items()}


def stack_masks(masks: Sequence[Mask]) -> Mask:
    return Mask({name: torch.stack([m[name] for m in masks]) for name in masks[0]})


def replica_optimizer_state(state: dict[str, Any], index: int, replicas: int) -> dict[str, Any]:
    """Replica `index`'s optimizer state_dict: per-parameter tensors sliced, scalars (Adam's step) kept."""
    def part(value):
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == replicas:
            return value[index].clone()
        return value.clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
    return {"state": {key: {k: part(v) for k, v in slot.items()} for key, slot in state["state"].items()},
            "param_groups": copy.deepcopy(state["param_groups"])}


class ReplicaBatches:
    """The K replicas' own batches (each with its own data order) as one [K * B, ...] batch."""

    def __init__(self, loaders: Sequence[Any]):
        self.loaders = list(loaders)
        self.iterations_per_epoch = self.loaders[0].iterations_per_epoch

    def batch(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.loaders[0]
        if first.augment is None:  # one gather for all replicas
            index = torch.cat([loader.indices(iteration) for loader in self.loaders])
            return gather(first.x, index), gather(first.y, index)
        parts = [loader.batch(iteration) for loader in self.loaders]
        return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def repeated(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], replicas: int):
    """Evaluation batches fed to every replica at once."""
    for x, y in batches:
        yield torch.cat([x] * replicas), y


def group_size(replicas: str | int, model: nn.Module, registered: bool = True) -> int:
    """How many copies to stack: `--replicas off` 1, K, or auto (up to 8 for a stackable model).

    auto stacks only the registry's models, whose forward code is known to call its nn.Linear
    layers on [rows, features] inputs; a user's model (registered=False) is stacked only when K is
    asked for explicitly, since a forward that uses `layer.weight` directly would break."""
    if replicas in ("off", 1, "1"):
        return 1
    if not stackable(model):
        return 1
    if replicas == "auto":
        return MAX_AUTO_REPLICAS if registered else 1
    return int(replicas)


def replica_groups(trainings: list[Training], replicas: str | int = "auto") -> list[list[Training]]:
    """Split one level's trainings into groups trained together: same model, data and training
    config, same start and checkpoints, no optimizer state to restore, no half-done resume file."""
    if not trainings:
        return []
    registered = trainings[0].setup.config.model.name in MODELS
    size = group_size(replicas, trainings[0].model, registered) if world_size() == 1 else 1
    groups: dict[Any, list[Training]] = {}
    alone = []
    for t in trainings:
        c = t.setup.config
        if size == 1 or t.plan.optimizer_state is not None or (t.directory / RESUME_FILE).exists() \
                or c.train.precision == "fp16":  # one GradScaler for K copies: one's overflow would skip all steps
            alone.append([t])
            continue
        key = (section_key(c.model), section_key(c.data), c.train, t.plan.start_iteration, t.plan.checkpoint_steps)
        groups.setdefault(key, []).append(t)
    chunks = [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]
    return chunks + alone
