"""Pruning at initialization: one registry of criteria that prune a network once, from its state at
a step (the initialisation, or rewind step k), to an exact `lth.masks.Mask`.

Frankle, Dziugaite, Roy & Carbin, "Pruning Neural Networks at Initialization: Why Are We Missing
the Mark?" (ICLR 2021) compare these against IMP; their sanity checks are `shuffle_within_layers`,
`invert=True` and `reinitialize`.

| method      | score (per prunable weight w)              | kept     | scope  | rounds | data  |
|-------------|--------------------------------------------|----------|--------|--------|-------|
| `magnitude` | |w|                                        | highest  | global | 1      | none  |
| `snip`      | |w * dL/dw|                                | highest  | global | 1      | batch |
| `grasp`     | -w * (H g),  g = dL/dw, H = d2L/dw2        | LOWEST   | global | 1      | batch |
| `grasp_abs` | |w * (H g)|                                | highest  | global | 1      | batch |
| `synflow`   | |w * dR/dw|, R = sum(f_|w|(ones))          | highest  | global | 100    | shape |

Choices and their sources:

- magnitude at init: global, one ranking over all prunable layers, as open_lth's `sparse_global`
  (its default strategy; facebookresearch/open_lth pruning/sparse_global.py) and as Synaptic-Flow's
  `Mag` pruner with its global scope. (lth's IMP presets prune layer-wise; pass `scope="layerwise"`
  to match them.)
- SNIP (Lee, Ajanthan & Torr, ICLR 2019): connection sensitivity |dL/dc| at c = 1 for a mask c on
  the weights, which is |w * dL/dw|, on a batch of training data; the top kappa kept over the whole
  network (global). The paper's normalisation by the sum of scores does not change the ranking and
  is left out. Several batches: their gradients are summed (Synaptic-Flow's SNIP).
- GraSP (Wang, Zhang & Grosse, ICLR 2020): S(-w) = -w * Hg; the paper removes the top p fraction of
  S over the whole network, so the weights with the LOWEST -w*Hg are kept. The reference
  implementation (alecwangcq/GraSP pruner/GraSP.py) does the same: scores -w * Hg, `topk` of them
  are removed, the rest (score <= threshold) kept; Synaptic-Flow (ganguli-lab/Synaptic-Flow
  Pruners/pruners.py) stores w * Hg and keeps the highest, the same mask. We keep the paper's sign
  in `score()` and record the direction in `Method.keep = "lowest"`. Hg is the derivative of
  g_stopped . g(w) (a Hessian-gradient product by double backward), with the logits divided by a
  temperature of 200 as both reference implementations do (`GRASP_TEMPERATURE`). H is the block of
  the prunable weights only (biases and batch norm fixed), as in both references.
- grasp_abs: |w * Hg|, highest kept: the magnitude variant of GraSP that Frankle et al. (2021) also
  evaluate (Lubana & Dick 2021); an extra, not required by the issue.
- SynFlow (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020, Algorithm 1): data-free; the network is
  linearised (every floating-point parameter and buffer replaced by its absolute value), batch
  norm in eval mode, input a single example of ones, R = sum of the outputs, score |w * dR/dw|;
  100 rounds, after round k of n the kept fraction is f**(k/n) (exponential schedule), each round
  rescored with the pruned weights zeroed; global. Computed in float64 (the paper's code has
  `model.double()` as an option) because R is a product over layers of sums of |w| and overflows
  or underflows float32 in deep networks. Only the input *shape* comes from data.
- SNIP and GraSP score the model in train mode (batch-norm batch statistics), as the reference
  implementations do (GraSP: a deepcopy without .eval()); the copy's running statistics are
  thrown away. lth's models have no dropout, so the scores are deterministic.

Exact counts, ties: over the pruned layers (prunable = `masks.layer_kinds`, less `ignore`),
exactly round(fraction_remaining x their total) weights are kept (halves up, `masks.rounded`);
layer-wise: round(fraction x layer size) per layer. The weights are ranked with a stable sort, so
among equal scores the weight that comes first (layer order, then row-major) is pruned first, in
both directions (inverted too), like `masks._prune_lowest`. Scores are ranked in float64 on the CPU.
Layers may end up empty (layer collapse is one of the things these methods are compared on).

Operates on a deep copy: the caller's model (weights, dtype, mode, grads) is never modified.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError, LthError
from .masks import Mask, layer_keys, layer_kinds, rounded

GRASP_TEMPERATURE = 200.0  # logits / T before the loss, as alecwangcq/GraSP and Synaptic-Flow
SYNFLOW_ROUNDS = 100  # Tanaka et al. 2020: 100 pruning iterations

Batch = tuple[torch.Tensor, torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Inputs:
    """What a scorer may use, besides the prepared model copy."""
    batches: list[Batch]
    loss: Loss
    input_shape: tuple[int, ...] | None
    temperature: float


@dataclass(frozen=True)
class Method:
    """A pruning criterion. `scores(model, names, everything, inputs)` gets the prepared copy (see
    `prepare`) with the current mask applied and returns {name: score} for the pruned layers
    `names` (`everything`: all prunable weights, e.g. GraSP's Hessian block); `keep` says which end
    of the scores survives in the method's paper."""
    name: str
    scores: Callable[[nn.Module, list[str], list[str], _Inputs], dict[str, torch.Tensor]]
    keep: str  # "highest" or "lowest"
    scope: str  # "global" or "layerwise"
    rounds: int  # 1: one shot; SynFlow 100, exponential schedule
    data: str  # "none", "batch" (inputs and labels) or "shape" (only the input shape)
    prepare: Callable[[nn.Module], nn.Module]  # in place on the copy: mode, dtype, linearisation
    source: str


def _train_mode(model: nn.Module) -> nn.Module:
    return model.train()


def _eval_mode(model: nn.Module) -> nn.Module:
    return model.eval()


@torch.no_grad()
def _linearise(model: nn.Module) -> nn.Module:
    """SynFlow's network: float64, eval mode, every floating-point parameter and buffer -> |.|."""
    model.double().eval()
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.abs_()
    return model


def _weights(model: nn.Module, names: Sequence[str]) -> list[torch.Tensor]:
    params = dict(model.named_parameters())
    return [params[n] for n in names]


def _magnitude(model, names, everything, inputs):
    return {n: w.detach().abs() for n, w in zip(names, _weights(model, names))}


def _loss_gradients(model, weights, inputs: _Inputs, temperature: float = 1.0, create_graph: bool = False):
    total = None
    for x, y in inputs.batches:
        loss = inputs.loss(model(x) / temperature if temperature != 1.0 else model(x), y)
        grads = torch.autograd.grad(loss, weights, create_graph=create_graph)
        total = list(grads) if total is None else [t + g for t, g in zip(total, grads)]
    return total


def _snip(model, names, everything, inputs):
    weights = _weights(model, names)
    grads = _loss_gradients(model, weights, inputs)
    return {n: (w.detach() * g).abs() for n, w, g in zip(names, weights, grads)}


def _hessian_gradient(model, everything, inputs) -> list[torch.Tensor]:
    """H g over the prunable weights `everything`: d/dw (g_stopped . g(w)), summed over batches."""
    weights = _weights(model, everything)
    stopped = [g.detach() for g in _loss_gradients(model, weights, inputs, inputs.temperature)]
    product: list[torch.Tensor] | None = None
    for batch in inputs.batches:
        one = _Inputs([batch], inputs.loss, inputs.input_shape, inputs.temperature)
        grads = _loss_gradients(model, weights, one, inputs.temperature, create_graph=True)
        flow = sum((s * g).sum() for s, g in zip(stopped, grads))
        hg = torch.autograd.grad(flow, weights)
        product = list(hg) if product is None else [p + h for p, h in zip(product, hg)]
    return product or []  # (no batch: no curvature)


def _grasp(model, names, everything, inputs):
    hg = dict(zip(everything, _hessian_gradient(model, everything, inputs)))
    params = dict(model.named_parameters())
    return {n: -params[n].detach() * hg[n] for n in names}


def _grasp_abs(model, names, everything, inputs):
    return {n: s.abs() for n, s in _grasp(model, names, everything, inputs).items()}


def _synflow(model, names, everything, inputs):
    weights = _weights(model, names)
    dtype, device = weights[0].dtype, weights[0].device
    flow = model(torch.ones((1, *inputs.input_shape), dtype=dtype, device=device)).sum()
    grads = torch.autograd.grad(flow, weights)
    return {n: (w.detach() * g).abs() for n, w, g in zip(names, weights, grads)}


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("magnitude", _magnitude, "highest", "global", 1, "none", _eval_mode,
           "magnitude at init, global as open_lth sparse_global"),
    Method("snip", _snip, "highest", "global", 1, "batch", _train_mode, "Lee et al. 2019 (SNIP)"),
    Method("grasp", _grasp, "lowest", "global", 1, "batch", _train_mode, "Wang et al. 2020 (GraSP)"),
    Method("grasp_abs", _grasp_abs, "highest", "global", 1, "batch", _train_mode,
           "|GraSP| (Lubana & Dick 2021; Frankle et al. 2021)"),
    Method("synflow", _synflow, "highest", "global", SYNFLOW_ROUNDS, "shape", _linearise,
           "Tanaka et al. 2020 (SynFlow)"),
)}


def get_method(method: str | Method) -> Method:
    if isinstance(method, Method):
        return method
    if method not in METHODS:
        raise ConfigError(f"unknown pruning-at-init method {method!r}; known: {', '.join(METHODS)}")
    return METHODS[method]


def pruned_layers(model: nn.Module, ignore: Iterable[str] = ()) -> list[str]:
    """The prunable weights (masks.layer_kinds) less `ignore`: parameter names, "output" (the last
    prunable layer), "conv" or "linear" -- the same keys as PruneConfig.ignore."""
    ignore = set(ignore)
    names = [name for name, keys in layer_keys(model, sorted(ignore)).items() if not ignore & set(keys)]
    if not names:
        raise ConfigError("every prunable layer is ignored: nothing to prune")
    return names


def _batches(batch: Batch | Sequence[Batch] | None, device: torch.device) -> list[Batch]:
    if batch is None:
        return []
    if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[0], torch.Tensor):
        batch = [batch]
    return [(x.to(device), y.to(device)) for x, y in batch]


def _inputs(method: Method, model: nn.Module, batch, loss, input_shape, temperature) -> _Inputs:
    device = next(model.parameters()).device
    batches = _batches(batch, device)
    if method.data == "batch" and not batches:
        raise ConfigError(f"{method.name} scores weights on training data: pass batch=(inputs, labels)")
    if input_shape is None and batches:
        input_shape = tuple(batches[0][0].shape[1:])
    if method.data == "shape" and input_shape is None:
        raise ConfigError(f"{method.name} needs the input shape: pass input_shape=(...) or a batch")
    return _Inputs(batches, loss or F.cross_entropy, tuple(input_shape) if input_shape else None, temperature)


class _Workspace:
    """A prepared copy of the caller's model whose prunable weights can be reset to their prepared
    values times a mask before each round of scoring."""

    def __init__(self, model: nn.Module, method: Method):
        self.model = method.prepare(copy.deepcopy(model))
        for p in self.model.parameters():
            p.grad = None
            p.requires_grad_(False)
        self.everything = list(layer_kinds(self.model))
        self.start = {n: w.detach().clone() for n, w in zip(self.everything, _weights(self.model, self.everything))}
        for w in _weights(self.model, self.everything):
            w.requires_grad_(True)

    @torch.no_grad()
    def masked(self, mask: Mapping[str, torch.Tensor]) -> nn.Module:
        for name, weight in zip(self.everything, _weights(self.model, self.everything)):
            keep = mask.get(name)
            weight.copy_(self.start[name] if keep is None else self.start[name] * keep.to(weight.device, weight.dtype))
        return self.model


def score(method: str | Method, model: nn.Module, batch: Batch | Sequence[Batch] | None = None, *,
          loss: Loss | None = None, mask: Mask | None = None, input_shape: Sequence[int] | None = None,
          ignore: Iterable[str] = (), temperature: float = GRASP_TEMPERATURE) -> dict[str, torch.Tensor]:
    """One round of `method`'s scores for the pruned layers of `model` (its current weights: the
    initialisation, or the state at a rewind step), with `mask`'s pruned weights zeroed first.

    batch: (inputs, labels) or a list of them (SNIP, GraSP); loss: default cross-entropy;
    input_shape: SynFlow's input shape without the batch dimension (default: the batch's);
    temperature: GraSP's logit temperature. Scores have the paper's sign; `METHODS[m].keep` says
    which end survives. SynFlow's scores are float64.
    """
    method = get_method(method)
    names = pruned_layers(model, ignore)
    inputs = _inputs(method, model, batch, loss, input_shape, temperature)
    work = _Workspace(model, method)
    return method.scores(work.masked(mask.tensors if mask is not None else {}), names, work.everything, inputs)


def prune_at_init(method: str | Method, model: nn.Module, fraction_remaining: float,
                  batch: Batch | Sequence[Batch] | None = None, generator: torch.Generator | None = None, *,
                  invert: bool = False, shuffle: bool = False, loss: Loss | None = None,
                  input_shape: Sequence[int] | None = None, ignore: Iterable[str] = (),
                  scope: str | None = None, rounds: int | None = None,
                  temperature: float = GRASP_TEMPERATURE) -> Mask:
    """The mask that keeps `fraction_remaining` of the pruned layers' weights by `method`'s scores
    on `model`'s current weights, in one shot (SynFlow: `rounds`, default 100, exponential schedule).

    invert: keep the weights the method would prune first (Frankle et al. 2021's inversion).
    shuffle: then shuffle the kept positions within each layer with `generator` (same counts).
    ignore: layers never pruned (kept whole). scope: "global" / "layerwise", default the method's.
    The mask covers every prunable layer (ignored ones all True), on the CPU.
    """
    method = get_method(method)
    if isinstance(fraction_remaining, bool) or not (isinstance(fraction_remaining, (int, float))
                                                    and 0.0 < fraction_remaining <= 1.0):
        raise ConfigError(f"fraction of weights remaining must be in (0, 1], got {fraction_remaining!r}")
    scope = scope or method.scope
    if scope not in ("global", "layerwise"):
        raise ConfigError(f"unknown pruning scope {scope!r}: use 'global' or 'layerwise'")
    rounds = method.rounds if rounds is None else rounds
    if not (isinstance(rounds, int) and rounds >= 1):
        raise ConfigError(f"rounds must be a positive integer, got {rounds!r}")
    if shuffle and generator is None:
        raise ConfigError("shuffle needs a seeded torch.Generator (generator=...)")
    names = pruned_layers(model, ignore)
    inputs = _inputs(method, model, batch, loss, input_shape, temperature)
    kinds = layer_kinds(model)
    sizes = {n: p.numel() for n, p in model.named_parameters() if n in kinds}
    groups = [names] if scope == "global" else [[n] for n in names]
    final = [rounded(fraction_remaining * sum(sizes[n] for n in g)) for g in groups]
    if sum(final) == 0:
        raise ConfigError(f"keeping {fraction_remaining:.4g} of {sum(sizes[n] for n in names)} weights rounds to "
                          "no weight at all; ask for a larger fraction")

    params = dict(model.named_parameters())
    alive = {n: torch.ones(params[n].shape, dtype=torch.bool) for n in sizes}
    keep_highest = (method.keep == "highest") != invert
    work = _Workspace(model, method)
    totals = [sum(sizes[n] for n in g) for g in groups]
    counts = totals
    for k in range(1, rounds + 1):  # after round k of n, f ** (k / n) kept (one shot: n = 1)
        targets = final if k == rounds else [max(f, min(c, rounded(fraction_remaining ** (k / rounds) * t)))
                                             for f, c, t in zip(final, counts, totals)]
        if targets == counts:
            continue
        scores = method.scores(work.masked(alive), names, work.everything, inputs)
        for group, target in zip(groups, targets):
            _keep(alive, scores, group, target, keep_highest, method.name)
        counts = targets
    mask = Mask(alive)
    if not shuffle:
        return mask
    assert generator is not None  # (refused at the top otherwise)
    return shuffle_within_layers(mask, generator, names)


def _keep(alive: dict[str, torch.Tensor], scores: Mapping[str, torch.Tensor], names: list[str], count: int,
          highest: bool, method: str) -> None:
    """Prune the surviving weights of `names` down to `count` by score, in place on `alive`;
    stable: among equal scores the first (layer order, then row-major) goes first."""
    flat_alive = [alive[n].flatten() for n in names]
    values = torch.cat([scores[n].detach().flatten().to("cpu", torch.float64)[a] for n, a in zip(names, flat_alive)])
    if torch.isnan(values).any():
        raise LthError(f"{method} scores contain NaN (a diverged model, or float overflow); "
                       "check the model's weights at this step")
    drop = values.numel() - count
    if drop <= 0:
        return
    order = torch.sort(values if highest else -values, stable=True).indices[:drop]
    positions = torch.cat([a.nonzero().flatten() for a in flat_alive])
    layer_of = torch.cat([torch.full((int(a.sum()),), i) for i, a in enumerate(flat_alive)])
    for i, name in enumerate(names):
        flat = flat_alive[i].clone()
        flat[positions[order[layer_of[order] == i]]] = False
        alive[name] = flat.view_as(alive[name])


def shuffle_within_layers(mask: Mask, generator: torch.Generator, names: Iterable[str] | None = None) -> Mask:
    """Frankle et al. 2021's layer-wise shuffle: each layer's mask permuted uniformly at random
    (same count per layer, new positions). `names`: the layers to shuffle (default all); layers
    are visited in sorted order, so the result depends only on the generator's state."""
    names = set(mask.tensors if names is None else names)
    tensors = dict(mask.tensors)
    for name in sorted(names):
        keep = tensors[name]
        order = torch.randperm(keep.numel(), generator=generator)
        tensors[name] = keep.flatten()[order.to(keep.device)].view_as(keep)
    return Mask(tensors)


def reinitialize(model_name: str, options: Mapping[str, Any] | None, seed: int, mask: Mask) -> nn.Module:
    """Frankle et al. 2021's reinitialisation check: the same mask on freshly drawn weights from the
    model's own initialisation (`build_model` with another seed), pruned weights zeroed. The
    check is a choice of start weights, not of mask; a branch can equally build the model itself."""
    from .models import build_model

    return mask.apply_(build_model(model_name, options, seed))


def class_balanced_batch(x: torch.Tensor, y: torch.Tensor, per_class: int) -> Batch:
    """The first `per_class` examples of each class (in dataset order), grouped by class: the batch
    GraSP's reference implementation scores on (`GraSP_fetch_data`, samples_per_class)."""
    picks = [torch.nonzero(y == c).flatten()[:per_class] for c in torch.unique(y)]
    if any(len(p) < per_class for p in picks):
        raise ConfigError(f"some class has fewer than {per_class} examples")
    index = torch.cat(picks)
    return x[index], y[index]


__all__ = ["METHODS", "Method", "GRASP_TEMPERATURE", "SYNFLOW_ROUNDS", "get_method", "pruned_layers", "score",
           "prune_at_init", "shuffle_within_layers", "reinitialize", "class_balanced_batch"]
