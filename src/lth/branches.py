"""Baselines and copies built on an IMP run, each trained by the one loop as its own stored run.

    reset-init    the ticket's masks, survivors reset to their initial values W0 ([LTH]), from step 0
                  (with rewind 0 that is the IMP run itself: its levels are adopted, not retrained)
    reinit        the ticket's masks, survivors freshly initialised with another init seed, from step 0
    random-prune  a random mask with the ticket's per-layer counts, weights rewound to W_k, from step k
    data-order    the ticket itself (mask and W_k) retrained with another data order: the second
                  copy for stability to data order and linear mode connectivity (levels from 0)

Pruning at initialization ([PaI]: Frankle, Dziugaite, Roy & Carbin 2021), one shot from W_k (the
initialisation at k = 0) to the ticket's count of weights, then trained from step k like
random-prune (init_pruning.py has the criteria, their scopes and sources):

    magnitude-init, snip, grasp, synflow          the method's mask
    <method>+shuffle                              its mask shuffled within each layer (same counts)
    <method>+reinit                               its mask on freshly initialised weights (reinit's seed)
    <method>+invert                               the weights the method would prune first kept instead

A branch's config is its parent's with `kind` set (and, for data-order, another data seed), so it
is content-addressed like everything else and never trained twice.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import ExperimentConfig
from .errors import ConfigError
from .experiment import Setup
from .levels import Adopted, Chain, LevelPlan, Planner, load_optimizer_state, rewind_state
from .kinds import BRANCHES, DATA_ORDER, IMP, KINDS, Kind, MaskSource, SanityCheck, WeightSource
from .masks import Mask, random_prune
from .seeds import copy_data_seed, random_prune_seed, reinit_seed
from .store import MASK_FILE, START_FILE, Run, Store, load_tensors, step_optimizer_file


def branch_config(config: ExperimentConfig, kind: str, data_seed: int | None = None) -> ExperimentConfig:
    if kind not in BRANCHES:
        raise ConfigError(f"unknown branch {kind!r}; choose one of {', '.join(BRANCHES)}")
    if config.kind != IMP:
        raise ConfigError(f"a branch hangs off an IMP config, got kind {config.kind!r}")
    changes: dict[str, Any] = {"kind": kind}
    if kind == DATA_ORDER:
        changes["data_seed"] = copy_data_seed(config.order_seed, config.train.streams) if data_seed is None else data_seed
    return config.override(changes)


def branch_planner(kind: str, parent: Run) -> Planner:
    """Level L of a branch, from its record (kinds.py): its mask, its starting weights, its start."""
    spec = KINDS[kind]

    def plan(run: Run, setup: Setup, level: int, model: nn.Module) -> LevelPlan | Adopted:
        if spec.is_the_ticket_at(setup.rewind_iteration):  # the ticket's own training: same mask, start, seeds
            return Adopted(parent, level, changes={"kind": kind})
        ticket = Mask.load(parent.level_dir(level) / MASK_FILE)
        mask = _mask(spec, ticket, parent, setup, level, model)
        weights, optimizer_state = _weights(spec, parent, setup)
        if spec.mask is MaskSource.METHOD:
            optimizer_state = None  # a mask found afresh at k: a fresh optimizer
        if level == 0 and setup.rewind_iteration > 0:  # the dense network continued from step k: keep its optimizer
            optimizer_state = load_optimizer_state(parent.level_dir(0) / step_optimizer_file(setup.rewind_iteration), setup.device)
        return LevelPlan(mask, weights, setup.rewind_iteration if spec.starts_at_rewind else 0, optimizer_state)
    return plan


def _mask(spec: Kind, ticket: Mask, parent: Run, setup: Setup, level: int, model: nn.Module) -> Mask:
    config = setup.config
    if spec.mask is MaskSource.TICKET:
        return ticket
    if spec.mask is MaskSource.RANDOM:
        return random_prune(ticket, torch.Generator().manual_seed(random_prune_seed(config.seed, level,
                                                                                    config.train.streams)))
    # pruning at initialization: `model` set to W_k, scored by the method down to exactly the ticket's count
    # of weights (so its x value is the ticket's)
    from .init_pruning import prune_at_init, pruned_layers
    from .seeds import stream_seed

    model.load_state_dict(rewind_state(parent, setup)[0])
    # SNIP and GraSP score on the first batch the dense network trained on (any dataset has one)
    loader = setup.data.train_loader(config.train.batch_size, config.order_seed, setup.device, False,
                                     streams=config.train.streams)
    generator = torch.Generator().manual_seed(stream_seed("pai-shuffle", config.seed, level))
    counts = [ticket.per_layer()[name] for name in pruned_layers(model, config.prune.ignore)]  # (kept, size)
    fraction = sum(kept for kept, _ in counts) / sum(size for _, size in counts)  # of the layers it prunes
    assert spec.method is not None  # (a kind whose mask is "method" names one: kinds.py)
    return prune_at_init(spec.method, model, fraction, loader.batch(0), generator, invert=spec.check is SanityCheck.INVERT,
                         shuffle=spec.check is SanityCheck.SHUFFLE, ignore=config.prune.ignore)


def _weights(spec: Kind, parent: Run, setup: Setup) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The weights a branch level starts from, and the optimizer state to restore (None: a fresh one)."""
    if spec.weights is WeightSource.INIT:
        return load_tensors(parent.level_dir(0) / START_FILE, setup.device), None
    if spec.weights is WeightSource.REINIT:
        return setup.new_model(seed=reinit_seed(setup.config.seed, setup.config.train.streams)).state_dict(), None
    return rewind_state(parent, setup)


def branch_levels(kind: str, levels: int, only: list[int] | None = None) -> list[int]:
    """The levels a branch trains on a chain to `levels`: `only`, or all of them -- from 0 for the
    data-order copy (the dense network continued), from 1 for the baselines (level 0 is dense)."""
    first = KINDS[kind].first_level
    wanted = list(range(first, levels + 1)) if only is None else sorted(set(only))
    if any(not first <= level <= levels for level in wanted):
        raise ConfigError(f"branch {kind} levels must lie in {first}..{levels}, got {wanted}")
    return wanted


def branch_chains(kind: str, configs: list[ExperimentConfig], store: Store, data_seed: int | None = None) -> list[Chain]:
    """The branch `kind` of each IMP config as a chain of levels over its parent IMP run."""
    return [Chain(branch_config(c, kind, data_seed), branch_planner(kind, store.run(c)), {"parent": store.run(c).hash})
            for c in configs]
