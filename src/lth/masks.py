"""Masks: which weights of a network survive. One type for everything: `Mask`, a dict of
parameter name -> bool tensor over the prunable weights (conv and linear weights; never biases
or batch norm).

Pruning removes exactly round(fraction x remaining) weights per round (halves rounded up), the
smallest by magnitude. Ties are broken explicitly: magnitudes are sorted with a stable sort, so
among equal magnitudes the weight that comes first (layer order, then row-major) goes first. A
`kthvalue` threshold would over-prune whenever values tie.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from .config import PruneConfig
from .errors import ConfigError
from .model_check import check_parameters

_PRUNABLE = (nn.Linear, nn.modules.conv._ConvNd)


def layer_kinds(model: nn.Module) -> dict[str, str]:
    """Prunable parameter names, in model order, with their kind: 'conv' or 'linear'."""
    kinds = {}
    for module_name, module in model.named_modules():
        if isinstance(module, _PRUNABLE):
            kinds[f"{module_name}.weight" if module_name else "weight"] = "linear" if isinstance(module, nn.Linear) else "conv"
    return kinds


def layer_keys(model: nn.Module, used: Iterable[str] = ()) -> dict[str, tuple[str, ...]]:
    """Per prunable weight, the keys that name it in a pruning config (prune.layer_fractions,
    prune.ignore): its parameter name, "output" for the last one, and its kind ("conv"/"linear").
    A key in `used` that names no layer is refused in one line."""
    kinds = layer_kinds(model)
    if not kinds:
        raise ConfigError("the model has no prunable (linear or convolutional) layers")
    output = list(kinds)[-1]
    keys = {name: (name, *(("output",) if name == output else ()), kind) for name, kind in kinds.items()}
    known = {key for names in keys.values() for key in names} | {"output", "conv", "linear"}
    for key in used:
        if key not in known:
            raise ConfigError(f"unknown layer {key!r} in the pruning config; prunable layers: {', '.join(kinds)}")
    return keys


def layer_fractions(model: nn.Module, prune: PruneConfig) -> dict[str, float | None]:
    """Per prunable layer, the fraction pruned per round, or None when the layer is ignored."""
    fractions: dict[str, float | None] = {}
    for name, keys in layer_keys(model, (*prune.layer_fractions, *prune.ignore)).items():
        if any(k in prune.ignore for k in keys):
            fractions[name] = None
            continue
        fractions[name] = next((prune.layer_fractions[k] for k in keys if k in prune.layer_fractions), prune.fraction)
    return fractions


def planned_counts(model: nn.Module, prune: PruneConfig) -> Iterator[dict[str, int]]:
    """The weights left per prunable layer after level 1, 2, ... (endless). Exact for layer-wise
    pruning; for global pruning only the total is known in advance (the ranking decides which
    layers lose them), so the removal is booked on the first pruned layer."""
    fractions = layer_fractions(model, prune)
    params = dict(model.named_parameters())
    counts = {n: params[n].numel() for n in fractions}  # from shapes: works on the meta device
    while True:
        if prune.strategy == "global":
            pool = sum(c for n, c in counts.items() if fractions[n] is not None)
            first = next((n for n in counts if fractions[n] is not None), None)
            if first is not None:
                counts = {**counts, first: counts[first] - rounded(prune.fraction * pool)}
        else:
            counts = {n: c - rounded(f * c) if (f := fractions[n]) is not None else c for n, c in counts.items()}
        yield counts


def levels_for_target(model: nn.Module, prune: PruneConfig, target: float, max_levels: int = 1000) -> int:
    """The fewest pruning levels after which at most `target` of the prunable weights remain."""
    if not 0.0 < target < 1.0:
        raise ConfigError(f"--target-weights must be in (0, 1), got {target}")
    total = sum(p.numel() for n, p in model.named_parameters() if n in layer_kinds(model))
    before = total
    for level, counts in zip(range(1, max_levels + 1), planned_counts(model, prune)):
        left = sum(counts.values())
        if left / total <= target:
            return level
        if left == before:
            break
        before = left
    raise ConfigError(f"{target:.4g} of the weights cannot be reached with this pruning config "
                      f"(ignored layers alone keep more, or the fraction rounds to nothing)")


def check_levels(model: nn.Module, prune: PruneConfig, levels: int) -> None:
    """Stop before any training if a level up to `levels` would prune no weight (the fractions round
    to nothing), leave a layer with no weights, or (layer-wise) prune nothing of a layer whose few
    weights left round its fraction to zero; for global pruning the layers are checked when each
    level is pruned (empty_layer_error)."""
    check_parameters(model, type(model).__name__)  # (tied or lazy weights cannot be counted, stored or pruned)
    fractions = layer_fractions(model, prune)
    before = {n: p.numel() for n, p in model.named_parameters() if n in fractions}
    for level, counts in zip(range(1, levels + 1), planned_counts(model, prune)):
        empty = [n for n, c in counts.items() if c <= 0 and fractions[n] is not None]
        if empty and prune.strategy == "layerwise":
            raise empty_layer_error(empty[0], level)
        if counts == before:
            raise ConfigError(f"level {level} would prune no weight: the prune fractions of the few weights left "
                              f"round to zero in every layer; ask for at most {level - 1} levels")
        # layer-wise, a layer whose fraction of its few weights rounds to nothing stops shrinking while the
        # others go on: the level would not prune what was asked (a layer kept alive by rounding)
        stuck = [n for n, c in counts.items() if fractions[n] and c == before[n]]
        if stuck and prune.strategy == "layerwise":
            raise ConfigError(f"level {level} would prune no weight of layer {stuck[0]!r} ({before[stuck[0]]} left: "
                              f"{fractions[stuck[0]]:g} of them rounds to none) while the other layers shrink; ask for "
                              f"at most {level - 1} levels, a larger fraction for that layer, or ignore it (prune.ignore)")
        before = counts


def empty_layer_error(layer: str, level: int) -> ConfigError:
    return ConfigError(f"level {level} would leave layer {layer!r} with no weights; ask for at most {level - 1} "
                       "levels, a smaller prune fraction, or ignore that layer (prune.ignore)")


def rounded(x: float) -> int:
    return int(math.floor(x + 0.5))


class Mask:
    """Parameter name -> bool tensor; True marks a surviving weight."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self.tensors = {name: t.to(torch.bool) for name, t in tensors.items()}

    @classmethod
    def ones(cls, model: nn.Module) -> Mask:
        params = dict(model.named_parameters())
        return cls({name: torch.ones_like(params[name], dtype=torch.bool) for name in layer_kinds(model)})

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Mask) and set(self.tensors) == set(other.tensors)
                and all(torch.equal(self[n], other[n].to(self[n].device)) for n in self))

    def to(self, device: torch.device | str) -> Mask:
        return Mask({n: t.to(device) for n, t in self.tensors.items()})

    def remaining(self) -> int:
        return sum(int(t.sum()) for t in self.tensors.values())

    def total(self) -> int:
        return sum(t.numel() for t in self.tensors.values())

    def fraction_remaining(self) -> float:
        return self.remaining() / self.total()

    def per_layer(self) -> dict[str, tuple[int, int]]:
        """name -> (remaining, total)."""
        return {n: (int(t.sum()), t.numel()) for n, t in self.tensors.items()}

    @torch.no_grad()
    def apply_(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of `model` in place."""
        params = dict(model.named_parameters())
        missing = [n for n in self if n not in params or params[n].shape != self[n].shape]
        if missing:
            raise ConfigError(f"mask does not fit the model: no parameter of matching shape for {', '.join(missing)}")
        for name, keep in self.tensors.items():
            params[name].mul_(keep.to(params[name].device, params[name].dtype))
        return model

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.contiguous() for n, t in self.tensors.items()}

    def save(self, path: str | Path) -> None:
        from .store import save_tensors

        save_tensors(path, self.state_dict())

    @classmethod
    def load(cls, path: str | Path) -> Mask:
        from .store import load_tensors

        return cls(load_tensors(path))


def magnitude_prune(mask: Mask, weights: Mapping[str, torch.Tensor], fractions: Mapping[str, float | None],
                    strategy: str, fraction: float) -> Mask:
    """Prune the smallest-magnitude surviving weights of `weights` (e.g. a trained state_dict).

    layer-wise: each layer loses round(its fraction x its remaining weights).
    global: one ranking over all non-ignored layers; round(fraction x their remaining) go.
    """
    pruned = {n: t.clone() for n, t in mask.tensors.items()}
    if strategy == "layerwise":
        for name, layer_fraction in fractions.items():
            if layer_fraction is not None:
                _prune_lowest(pruned, [name], weights, layer_fraction)
    elif strategy == "global":
        _prune_lowest(pruned, [n for n, f in fractions.items() if f is not None], weights, fraction)
    else:
        raise ConfigError(f"unknown pruning strategy {strategy!r}: use 'layerwise' or 'global'")
    return Mask(pruned)


def _prune_lowest(masks: dict[str, torch.Tensor], names: list[str], weights: Mapping[str, torch.Tensor], fraction: float) -> None:
    if not names:
        return
    alive = [masks[n].flatten().cpu() for n in names]
    scores = torch.cat([weights[n].detach().flatten().abs().float().cpu()[a] for n, a in zip(names, alive)])
    count = rounded(fraction * scores.numel())
    if count == 0:
        return
    order = torch.sort(scores, stable=True).indices[:count]  # stable: ties go in position order
    # Map positions among the survivors back to (layer, flat index).
    positions = torch.cat([a.nonzero().flatten() for a in alive])
    layer_of = torch.cat([torch.full((int(a.sum()),), i) for i, a in enumerate(alive)])
    for i, name in enumerate(names):
        chosen = positions[order[layer_of[order] == i]]
        flat = masks[name].flatten().clone()
        flat[chosen.to(flat.device)] = False
        masks[name] = flat.view_as(masks[name])


def random_prune(reference: Mask, generator: torch.Generator) -> Mask:
    """A uniformly random mask with exactly the reference's surviving count in every layer."""
    tensors = {}
    for name in sorted(reference.tensors):  # a fixed order, whatever order the mask was built in
        keep = reference.tensors[name]
        order = torch.randperm(keep.numel(), generator=generator)
        flat = torch.zeros(keep.numel(), dtype=torch.bool)
        flat[order[:int(keep.sum())]] = True
        tensors[name] = flat.view_as(keep).to(keep.device)
    return Mask(tensors)
