"""K copies of a network trained as one batched computation.

Small networks leave the hardware idle: one step is many small kernels. K copies that share a shape
(different seeds; a ticket and its data-order copy; baselines at one level) are stacked into one
model whose parameters have a leading replica axis [K, ...]. A batch enters as the K replicas'
batches one after another ([K * B, ...]) and the loss is the sum of the K per-replica mean losses,
so each replica's gradient is exactly the one it would get alone; SGD and Adam update elementwise,
so each replica follows its own training (equal to training it alone up to float rounding, tested).

Two layouts, one per kind of network (`stack_layout`):
- ROWS, for all-linear networks: activations stay [K * B, features] and every `nn.Linear` is one
  `torch.baddbmm` over [K, B, features]; the model's own forward code (flatten, ReLU, residual
  additions) runs unchanged.
- CHANNELS, for networks with convolutions: inside the model, activations are [B, K * C, ...] --
  replica k owns channels k*C .. (k+1)*C - 1 -- so each convolution is one grouped convolution
  (groups x K), each batch norm one batch norm over K * C channels (per channel, so every replica
  keeps exactly its own statistics and running averages), and ReLU, pooling, residual additions and
  flattening run unchanged (flattening [B, K * C, H, W] gives each replica's features contiguous, in
  the order the model alone has). Linear layers map [B, K * in] to [B, K * out]. A hook lays the
  [K * B, ...] input out as channels and the [B, K * classes] output back as rows, so the training
  loop never sees the layout.
A model of the user's (`module:factory`, or a module object) may do anything in its forward, so it
is never rewritten: FUNCTIONAL stacks its parameters and buffers with the same names ([K, ...]) and
runs its own forward once per replica under `torch.func.vmap` (`functional_call`), which batches the
K calls into one computation where its operations allow it (`functional_check` tries).
Stacked modules keep the original parameter names ([K, ...] shapes), so a replica's state_dict is
the stacked one indexed at k.
"""
from __future__ import annotations

import copy
import enum
from typing import Any, Callable, Hashable, Iterable, Iterator, Sequence, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from .data.loader import gather
from .errors import ConfigError
from .masks import Mask


FP16_REFUSAL = "stacked fp16 copies would share one gradient scaler, and an overflow in one would skip the step of all"


def stacks_precision(precision: str) -> bool:
    """Whether runs of this precision may stack (FP16_REFUSAL says why fp16 may not)."""
    return precision != "fp16"


def check_replicas(replicas: str | int, precision: str) -> None:
    """An explicit --replicas K with a precision that cannot stack is refused (auto and off train it one by one)."""
    if replicas not in ("auto", "off", 1, "1") and not stacks_precision(precision):
        raise ConfigError(f"--replicas {replicas} cannot stack {precision} runs: {FP16_REFUSAL}; use --replicas off or "
                          "auto (fp16 trains one by one), or --precision bf16")


class Layout(enum.Enum):
    ROWS = "rows"  # all-linear: [K * B, features] throughout
    CHANNELS = "channels"  # convolutional: [B, K * C, ...] inside the model
    FUNCTIONAL = "torch.func"  # a model of the user's: its own forward, vmapped over the replica axis


class StackedLinear(nn.Module):
    """K independent linear layers: on K consecutive blocks of rows (ROWS), or on K consecutive
    blocks of features of each row (CHANNELS)."""

    def __init__(self, layers: Sequence[nn.Linear], layout: Layout = Layout.ROWS):
        super().__init__()
        self.replicas = len(layers)
        self.channels = layout is Layout.CHANNELS
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers])) \
            if layers[0].bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels:  # [B, K * in] -> [K, B, in]
            rows = x.reshape(x.shape[0], self.replicas, -1).transpose(0, 1)
        else:  # [K * B, in] -> [K, B, in]
            rows = x.reshape(self.replicas, -1, x.shape[-1])
        if torch.is_autocast_enabled(x.device.type):  # autograd's own backward handles the casts
            out = _stacked_linear(rows, self.weight, self.bias)
        else:
            out = _StackedLinearFunction.apply(rows, self.weight, self.bias)
        if self.channels:
            return out.transpose(0, 1).reshape(x.shape[0], -1)
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


class StackedConv(nn.Module):
    """K convolutions (1-D or 2-D) as one convolution with K times the groups over [B, K * C, ...]."""

    def __init__(self, layers: Sequence[nn.Conv1d | nn.Conv2d]):
        super().__init__()
        first = layers[0]
        self.replicas = len(layers)
        self.function = F.conv1d if isinstance(first, nn.Conv1d) else F.conv2d
        self.stride, self.padding, self.dilation, self.groups = first.stride, first.padding, first.dilation, first.groups
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))  # [K, out, in/g, *kernel]
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers if layer.bias is not None])) \
            if first.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.reshape(-1, *self.weight.shape[2:])  # a view: [K * out, in/g, *kernel]
        bias = None if self.bias is None else self.bias.reshape(-1)
        return self.function(x, weight, bias, self.stride, self.padding, self.dilation, self.groups * self.replicas)


class StackedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """K batch norms as one over [B, K * C, ...]: statistics are per channel, so each replica's are
    exactly its own. Parameters and running averages are [K, C] (replica k's at index k), the batch
    count [K]; F.batch_norm updates the running averages through [K * C] views of them."""

    def __init__(self, norms: Sequence[nn.modules.batchnorm._BatchNorm]):
        first = norms[0]
        super().__init__(first.num_features, first.eps, first.momentum, first.affine, first.track_running_stats)
        self.replicas = len(norms)
        with torch.no_grad():
            for name in ("weight", "bias"):
                if getattr(first, name) is not None:
                    setattr(self, name, nn.Parameter(torch.stack([getattr(n, name).detach() for n in norms])))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if getattr(first, name) is not None:
                    setattr(self, name, torch.stack([getattr(n, name).clone() for n in norms]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # nn.BatchNorm's own logic, on the flattened [K * C] views (every replica has the same count)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked[0]) if self.momentum is None else self.momentum
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        use_running = not self.training or self.track_running_stats
        flat = lambda t: None if t is None else t.view(-1)  # noqa: E731
        return F.batch_norm(x, flat(self.running_mean) if use_running else None,
                            flat(self.running_var) if use_running else None, flat(self.weight), flat(self.bias),
                            batch_stats, factor, self.eps)


_LINEAR = (nn.Linear,)
_CONVS = (nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def stack_layout(model: nn.Module) -> Layout | None:
    """How `model` stacks: ROWS if every parameter lives in an nn.Linear, CHANNELS if every one lives
    in a linear, convolution (zero padding) or batch-norm layer and there is a convolution; None
    (it trains one by one) otherwise."""
    owners = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    if not owners:
        return None
    if all(type(m) in _LINEAR for m in owners):
        return Layout.ROWS
    known = all(type(m) in (*_LINEAR, *_CONVS, *_NORMS) for m in owners)
    zero_padded = all(m.padding_mode == "zeros" for m in owners if isinstance(m, _CONVS))
    has_conv = any(isinstance(m, _CONVS) for m in owners)
    # (a norm module's buffers but no parameters: BatchNorm(affine=False) still needs stacking)
    loose_norms = all(type(m) in _NORMS for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase))
    return Layout.CHANNELS if known and zero_padded and has_conv and loose_norms else None


def stackable(model: nn.Module) -> bool:
    """Whether K copies of `model` (a registry network) can train as one stacked model."""
    return stack_layout(model) is not None


def stack_models(models: Sequence[nn.Module], registered: bool = True) -> nn.Module:
    """One model computing all of `models` (same architecture) on [K * B, ...] inputs, giving [K * B, ...]
    outputs (replica k's rows at k*B .. (k+1)*B - 1). A registry network (`registered`) is rewritten
    into its layout; a user's model is stacked through torch.func (Layout.FUNCTIONAL)."""
    if not registered:
        return _functional_stack(models)
    layout = stack_layout(models[0])
    if layout is None:
        raise ValueError(f"{type(models[0]).__name__} cannot be stacked (see replicas.stack_layout)")
    stacked = copy.deepcopy(models[0])
    spatial = 0
    for name, module in list(models[0].named_modules()):
        parts: list[Any] = [m.get_submodule(name) for m in models]  # (of module's type)
        if isinstance(module, _LINEAR):
            replacement: nn.Module = StackedLinear(parts, layout)
        elif isinstance(module, _CONVS):
            replacement = StackedConv(parts)
            spatial = spatial or (1 if isinstance(module, nn.Conv1d) else 2)
        elif isinstance(module, _NORMS):
            replacement = StackedBatchNorm(parts)
        else:
            continue
        parent, _, leaf = name.rpartition(".")
        setattr(stacked.get_submodule(parent) if parent else stacked, leaf, replacement)
    if layout is Layout.CHANNELS:
        stacked.register_forward_pre_hook(_ChannelsIn(len(models), spatial))
        stacked.register_forward_hook(_RowsOut(len(models)))
    return stacked


def _functional_stack(models: Sequence[nn.Module]) -> nn.Module:
    """A copy of models[0] whose parameters and buffers hold all replicas' ([K, ...], same names) and
    whose forward runs the model's own forward per replica under torch.func.vmap."""
    stacked = copy.deepcopy(models[0])
    template = copy.deepcopy(models[0])  # the forward code to vmap (its own tensors are never used)
    for name, _ in list(models[0].named_parameters()):
        owner, _, leaf = name.rpartition(".")
        values = torch.stack([m.get_parameter(name).detach() for m in models])
        stacked.get_submodule(owner).register_parameter(leaf, nn.Parameter(values))
    for name, _ in list(models[0].named_buffers()):
        owner, _, leaf = name.rpartition(".")
        stacked.get_submodule(owner).register_buffer(leaf, torch.stack([m.get_buffer(name).clone() for m in models]))
    stacked.forward = _VmappedForward(stacked, template, len(models))  # (an instance attribute: this copy only)
    return stacked


class _VmappedForward:
    """The stacked model's forward: [K * B, ...] -> the template's forward per replica -> [K * B, ...]."""

    def __init__(self, stacked: nn.Module, template: nn.Module, replicas: int):
        self.stacked, self.replicas = [stacked], replicas  # (in a list: not a submodule, no reference cycle in modules)
        self.template = [template]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        stacked, template = self.stacked[0], self.template[0]
        template.train(stacked.training)
        state = {**dict(stacked.named_parameters()), **dict(stacked.named_buffers())}

        def one(replica_state: dict[str, torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
            return functional_call(template, replica_state, (rows,))

        out = vmap(one, randomness="different")(state, x.reshape(self.replicas, -1, *x.shape[1:]))
        return out.reshape(-1, *out.shape[2:])

    def __deepcopy__(self, memo: dict) -> _VmappedForward:  # a deepcopy of the stacked model points at the copy
        return _VmappedForward(copy.deepcopy(self.stacked[0], memo), copy.deepcopy(self.template[0], memo), self.replicas)


def functional_check(models: Sequence[nn.Module], x: torch.Tensor) -> str | None:
    """Why the user's `models` cannot train stacked through torch.func (None: they can): the stacked
    forward and backward must run on a batch `x` of each replica and give each replica's own output."""
    stacked = _functional_stack([copy.deepcopy(m) for m in models])
    alone = [copy.deepcopy(m).eval() for m in models]
    try:
        stacked(torch.cat([x] * len(models))).float().sum().backward()  # a training step's forward and backward
        with torch.no_grad():
            out = stacked.eval()(torch.cat([x] * len(models)))  # (eval: no dropout draws to compare)
            expected = torch.cat([m(x) for m in alone])
    except Exception as exc:  # noqa: BLE001 - any failure of vmap means: train one by one
        return f"torch.func cannot vmap its forward ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    if out.shape != expected.shape or not torch.allclose(out.float(), expected.float(), atol=1e-4, rtol=1e-3):
        return "its forward under torch.func.vmap does not give each replica's own output"
    return None


class _ChannelsIn:
    """Forward pre-hook: the [K * B, C, *spatial] input as [B, K * C, *spatial] (an input without a
    channel axis, e.g. MNIST-1D's [N, 40] sequences, gets one first, as the model itself would)."""

    def __init__(self, replicas: int, spatial: int):
        self.replicas, self.spatial = replicas, spatial

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        x, *rest = args
        if x.dim() == 1 + self.spatial:
            x = x.unsqueeze(1)
        if x.shape[0] % self.replicas:
            raise ValueError(f"a model of {self.replicas} stacked replicas takes their {self.replicas} batches one after "
                             f"another, got {x.shape[0]} rows")
        shape = x.shape
        grouped = x.reshape(self.replicas, -1, *shape[1:]).transpose(0, 1)  # [B, K, C, ...]
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):  # keep NHWC for cuDNN
            out = grouped.permute(0, 3, 4, 1, 2).reshape(grouped.shape[0], shape[2], shape[3], -1)
            return (out.permute(0, 3, 1, 2), *rest)
        return (grouped.reshape(grouped.shape[0], -1, *shape[2:]), *rest)


class _RowsOut:
    """Forward hook: the [B, K * classes] output as [K * B, classes]."""

    def __init__(self, replicas: int):
        self.replicas = replicas

    def __call__(self, module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        return out.reshape(out.shape[0], self.replicas, -1).transpose(0, 1).reshape(-1, out.shape[-1] // self.replicas)


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


def repeated(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], replicas: int
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Evaluation batches fed to every replica at once."""
    for x, y in batches:
        yield torch.cat([x] * replicas), y


Item = TypeVar("Item")


def stack_groups(items: Sequence[Item], size: int, key: Callable[[Item], Hashable | None]) -> list[list[Item]]:
    """The one rule for which trainings stack, used by every path (a level's trainings inline, a
    study's seed groups for executors): items of equal key, in order, `size` at a time; an item whose
    key is None trains alone. Groups come in the order of their first item, lone items last."""
    groups: dict[Hashable, list[Item]] = {}
    alone = []
    for item in items:
        k = key(item) if size > 1 else None
        if k is None:
            alone.append([item])
        else:
            groups.setdefault(k, []).append(item)
    return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)] + alone
