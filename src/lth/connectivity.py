"""Linear mode connectivity and distances between trained networks ([SCALE] §2, [LMC] §2-3): the maths
that stability.py applies to a ticket and its copies.

Distances are over the mask's coordinates of the prunable weights: L2, L2 normalised by the mean
norm of the two vectors (comparable across networks and sparsities), and the angle in degrees
(about 90 = unrelated). The barrier on the straight line between two networks is the maximum over
alpha of error(alpha W1 + (1 - alpha) W2) minus the mean of the two end errors.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from .data.loader import Dataset
from .errors import ConfigError
from .experiment import Setup
from .masks import Mask
from .replicas import Layout, repeated, stack_layout, stack_models
from .train import evaluate, evaluate_replicas

# The defaults of a stability measurement, defined here only ([LMC]: 30 points; see docs/science.md).
POINTS = 30  # evenly spaced α on the line between the two copies
BATCH_NORM_MODES = ("recompute", "interpolate")  # BN statistics recomputed on training data at each α, or not
BATCH_NORM = "recompute"
TRAIN_EXAMPLES = 5000  # training examples for the train error and the recomputed BN statistics


State = Mapping[str, torch.Tensor]


def masked_vector(state: State, mask: Mask) -> torch.Tensor:
    return torch.cat([state[name][mask[name].to(state[name].device)].double().flatten() for name in sorted(mask)])


def distances(a: State, b: State, mask: Mask) -> dict[str, float]:
    """L2 distance, L2 normalised by the mean norm, and angle (degrees) between m*a and m*b."""
    va, vb = masked_vector(a, mask), masked_vector(b, mask)
    l2 = float(torch.linalg.vector_norm(va - vb))
    na, nb = float(torch.linalg.vector_norm(va)), float(torch.linalg.vector_norm(vb))
    cosine = float(va @ vb) / (na * nb) if na > 0 and nb > 0 else 1.0
    return {"l2": l2, "l2_normalized": l2 / ((na + nb) / 2) if na + nb > 0 else 0.0,
            "angle": math.degrees(math.acos(max(-1.0, min(1.0, cosine))))}


def interpolate_states(a: State, b: State, alpha: float) -> dict[str, torch.Tensor]:
    """alpha * a + (1 - alpha) * b for float tensors; integer buffers (BN's batch count) from a."""
    return {k: (alpha * a[k] + (1 - alpha) * b[k]) if a[k].is_floating_point() else a[k].clone() for k in a}


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def recompute_batch_norm(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Replace BN running statistics by their exact average over `batches` (train mode, no grad)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was_training = model.training
    model.train()
    for x, _ in batches:
        model(x)
    model.train(was_training)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum


def train_evaluation_sample(data: Dataset, device: torch.device, examples: int
                            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The training examples that stability evaluates on: the dataset's own seeded sample where it
    has one (image folders, stored class by class), else the first `examples` (in-memory datasets
    are stored in a random order)."""
    if hasattr(data, "train_eval_sample"):
        return data.train_eval_sample(device, examples)
    return _limited(data.train_eval_batches(device), examples)


def _limited(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], max_examples: int
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    seen = 0
    for x, y in batches:
        if seen >= max_examples:
            return
        yield x[:max_examples - seen], y[:max_examples - seen]
        seen += len(y)


def interpolation_curve(model: nn.Module, setup: Setup, a: State, b: State, points: int = POINTS,
                        batch_norm: str = BATCH_NORM, train_examples: int = TRAIN_EXAMPLES,
                        per_pass: int | None = None) -> list[dict[str, float]]:
    """Test and train error at `points` evenly spaced alphas in [0, 1] (alpha = 1 is `a`).

    per_pass > 1 evaluates that many points in one pass, as one stacked model (replicas.py) of the
    interpolated networks (all-linear models only); default: points_per_pass."""
    if points < 2:
        raise ConfigError(f"--interpolation-points must be at least 2, got {points}")
    alphas = torch.linspace(0, 1, points).tolist()
    if per_pass is None:  # a user's model is never stacked unasked: its forward code is unknown
        per_pass = points_per_pass(model, points, setup.device) if setup.registered else 1
    curve = []
    for first in range(0, points, per_pass):
        chunk = alphas[first:first + per_pass]
        network = _interpolated(model, a, b, chunk)
        if batch_norm == "recompute" and has_batch_norm(model):
            sample = train_evaluation_sample(setup.data, setup.device, train_examples)
            recompute_batch_norm(network, sample if len(chunk) == 1 else repeated(sample, len(chunk)))
        test = _errors(network, setup.data.test_batches(setup.device), len(chunk))
        train = _errors(network, train_evaluation_sample(setup.data, setup.device, train_examples), len(chunk))
        curve += [{"alpha": alpha, "test_error": t, "train_error": r} for alpha, t, r in zip(chunk, test, train)]
    return curve


def points_per_pass(model: nn.Module, points: int, device: torch.device | str = "cpu",
                    budget_bytes: int = 512 * 2 ** 20) -> int:
    """How many interpolated copies of `model` to evaluate in one pass. One unless the model can be
    stacked and runs on a GPU: on CPU the stacked pass measured slower (benchmarks/interpolation.py:
    0.53-0.67x), since one point's 2048-example batch already keeps the cores busy; on a GPU a
    small model's pass is launch-bound. Then as many as fit the budget with their weights and a
    2048-example batch's activations."""
    if torch.device(device).type != "cuda" or stack_layout(model) is not Layout.ROWS:
        return 1  # (conv nets: one point's 2048-example pass already fills a GPU; not measured stacked)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    activations = 2 * 2048 * max(max(m.in_features, m.out_features) for m in layers) * 4
    return max(1, min(points, budget_bytes // (weights + activations)))


def _interpolated(model: nn.Module, a: State, b: State, alphas: list[float]) -> nn.Module:
    """`model` loaded with the network at alphas[0], or a stacked model of the networks at all alphas."""
    states = [interpolate_states(a, b, alpha) for alpha in alphas]
    if len(alphas) == 1:
        model.load_state_dict(states[0])
        return model
    stacked = stack_models([model] * len(alphas))
    stacked.load_state_dict({name: torch.stack([state[name] for state in states]) for name in states[0]})
    return stacked


def _errors(network: nn.Module, batches, points: int) -> list[float]:
    if points == 1:
        return [1 - evaluate(network, batches)[1]]
    return [1 - accuracy for _, accuracy in evaluate_replicas(network, batches, points)]


def barrier(errors: list[float]) -> float:
    return max(errors) - (errors[0] + errors[-1]) / 2
