"""Baselines and copies built on an IMP run, each trained by the one loop as its own stored run.

    reset-init    the ticket's masks, survivors reset to their initial values W0 ([LTH]), from step 0
                  (with rewind 0 that is the IMP run itself: its levels are adopted, not retrained)
    reinit        the ticket's masks, survivors freshly initialised with another init seed, from step 0
    random-prune  a random mask with the ticket's per-layer counts, weights rewound to W_k, from step k
    data-order    the ticket itself (mask and W_k) retrained with another data order: the second
                  copy for stability to data order and linear mode connectivity (levels from 0)

A branch's config is its parent's with `kind` set (and, for data-order, another data seed), so it
is content-addressed like everything else and never trained twice.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .config import ExperimentConfig
from .errors import ConfigError
from .experiment import Setup, module_config
from .imp import Adopted, Chain, ImpResult, LevelPlan, load_optimizer_state, rewind_state, run_chains, run_imp_many
from .masks import Mask, random_prune
from .seeds import copy_data_seed, random_prune_seed, reinit_seed
from .store import MASK_FILE, START_FILE, Run, Store, load_tensors, step_optimizer_file

BASELINES = ("reset-init", "reinit", "random-prune")  # the controls that make a ticket a ticket
BRANCHES = (*BASELINES, "data-order")


def branch_config(config: ExperimentConfig, kind: str, data_seed: int | None = None) -> ExperimentConfig:
    if kind not in BRANCHES:
        raise ConfigError(f"unknown branch {kind!r}; choose one of {', '.join(BRANCHES)}")
    if config.kind != "imp":
        raise ConfigError(f"a branch hangs off an IMP config, got kind {config.kind!r}")
    changes = {"kind": kind}
    if kind == "data-order":
        changes["data_seed"] = copy_data_seed(config.order_seed, config.train.streams) if data_seed is None else data_seed
    return config.override(changes)


def _planner(kind: str, parent: Run):
    def plan(run: Run, setup: Setup, level: int, model: nn.Module) -> LevelPlan | Adopted:
        if kind == "reset-init" and setup.rewind == 0:  # the ticket's own training: same mask, start, seeds
            return Adopted(parent, level, changes={"kind": kind})
        ticket = Mask.load(parent.level_dir(level) / MASK_FILE)
        if kind == "reset-init":
            init = load_tensors(parent.level_dir(0) / START_FILE, setup.device)
            return LevelPlan(ticket, init, 0)
        if kind == "reinit":
            fresh = setup.new_model(seed=reinit_seed(setup.config.seed, setup.config.train.streams))
            return LevelPlan(ticket, fresh.state_dict(), 0)
        state, optimizer_state = rewind_state(parent, setup)
        if kind == "random-prune":
            generator = torch.Generator().manual_seed(random_prune_seed(setup.config.seed, level, setup.config.train.streams))
            return LevelPlan(random_prune(ticket, generator), state, setup.rewind, optimizer_state)
        if level == 0:  # the dense network continued from step k with another order: keep its optimizer
            opt = load_optimizer_state(parent.level_dir(0) / step_optimizer_file(setup.rewind),
                                       setup.device) if setup.rewind > 0 else None
            return LevelPlan(ticket, state, setup.rewind, opt)
        return LevelPlan(ticket, state, setup.rewind, optimizer_state)
    return plan


def run_branch(kind: str, config: ExperimentConfig, levels: int, store: Store | str | Path = "lth_runs",
               data_seed: int | None = None, only: list[int] | None = None, **options) -> ImpResult:
    """Run the IMP chain of `config` to `levels` (or read it), then the branch `kind` at each level
    (or only at the levels in `only`: each branch level depends on the IMP chain alone).

    The result lists level 0 too: the dense network of the parent (or, for data-order, the dense
    network continued from the rewind step with the other data order)."""
    return run_branch_many(kind, [config], levels, store, data_seed, only, **options)[0]


def run_branch_many(kind: str, configs: list[ExperimentConfig], levels: int, store: Store | str | Path = "lth_runs",
                    data_seed: int | None = None, only: list[int] | None = None, **options) -> list[ImpResult]:
    """run_branch for several configs (e.g. seeds); small models train stacked as replicas."""
    store = store if isinstance(store, Store) else Store(store)
    if options.get("model") is not None:
        configs = [module_config(c, options["model"]) for c in configs]
    parents = run_imp_many(configs, levels, store, **options)
    branches = [branch_config(c, kind, data_seed) for c in configs]
    first = 0 if kind == "data-order" else 1
    wanted = list(range(first, levels + 1)) if only is None else sorted(set(only))
    if any(not first <= level <= levels for level in wanted):
        raise ConfigError(f"branch {kind} levels must lie in {first}..{levels}, got {wanted}")
    chains = [Chain(b, _planner(kind, store.run(c)), {"parent": Path(p.run_dir).name})
              for b, c, p in zip(branches, configs, parents)]
    results = run_chains(chains, wanted, store, **options)
    if first == 1 and only is None:
        for result, parent in zip(results, parents):
            result.levels = [parent.levels[0], *result.levels]
    return results
