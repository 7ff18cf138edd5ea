"""Iterative magnitude pruning with rewinding ([SCALE] Algorithm 1), the algorithm in `imp_level`:

    level 0      train the dense network from W0, saving W_k on the way     (dense.py: one shared run)
    level L >= 1 prune the lowest-magnitude surviving weights of level L-1's final weights,
                 rewind the survivors to W_k (k = 0: the initialisation, the original LTH),
                 train from iteration k to the end, continuing the schedule and data order

`run_imp_many` runs it for several configs (seeds), level by level; levels.py trains the levels
(store, locks, resume, stacked replicas), so finished levels are read and a killed one resumes.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from .config import ExperimentConfig, section_key
from .dense import dense_config, run_dense_many
from .errors import ConfigError
from .experiment import Setup, canonical, module_config
from .kinds import IMP
from .levels import Adopted, Chain, ImpResult, LevelPlan, rewind_state, run_chains, shape_model
from .options import RunOptions
from .masks import Mask, check_levels, empty_layer_error, layer_fractions, magnitude_prune
from .store import DEFAULT_STORE, FINAL_FILE, MASK_FILE, Run, Store, load_tensors, step_file, step_optimizer_file


def imp_level(run: Run, setup: Setup, level: int, model: nn.Module) -> LevelPlan | Adopted:
    """How level `level` of the IMP chain `run` starts."""
    if level == 0:  # the dense network: the shared dense run, with this chain's W_k (run_imp_many trained it)
        k = setup.rewind
        return Adopted(Run(run.dir.parent, dense_config(setup.config)), 0,
                       Adopted.files + ((step_file(k), step_optimizer_file(k)) if k > 0 else ()),
                       {"kind": setup.config.kind, "rewind": setup.config.rewind})
    mask = pruned_mask(run, setup, level, model)  # prune level L-1's final weights by magnitude
    weights, optimizer_state = rewind_state(run, setup)  # rewind the survivors to W_k
    return LevelPlan(mask, weights, setup.rewind, optimizer_state)  # and train from k to the end


def pruned_mask(run: Run, setup: Setup, level: int, model: nn.Module) -> Mask:
    """Magnitude-prune level-1's final weights of `run` (level >= 1)."""
    previous = run.level_dir(level - 1)
    prune = setup.config.prune
    fractions = layer_fractions(model, prune)
    mask = magnitude_prune(Mask.load(previous / MASK_FILE), load_tensors(previous / FINAL_FILE),
                           fractions, prune.strategy, prune.fraction)
    empty = [name for name, (left, _) in mask.per_layer().items() if left == 0 and fractions[name] is not None]
    if empty:  # (global pruning can empty a layer; check_levels rules it out for layer-wise in advance)
        raise empty_layer_error(empty[0], level)
    return mask


def run_imp(config: ExperimentConfig, levels: int, store: Store | str | Path = DEFAULT_STORE,
            options: RunOptions = RunOptions()) -> ImpResult:
    """Run (or read from the store) levels 0..`levels` of IMP for `config`. `options` (or its fields as
    keywords, e.g. quiet=True, data=dataset, model=my_net, replicas="off"): lth.options.RunOptions."""
    return run_imp_many([config], levels, store, options=options)[0]


def run_imp_many(configs: list[ExperimentConfig], levels: int, store: Store | str | Path = DEFAULT_STORE,
                 options: RunOptions = RunOptions()) -> list[ImpResult]:
    """run_imp for several configs (e.g. seeds), level by level, small models stacked as replicas."""
    if options.model is not None:
        configs = [module_config(c, options.model) for c in configs]
    if levels < 0:
        raise ConfigError(f"--levels must be 0 or more, got {levels}")
    if any(c.kind != IMP for c in configs):
        raise ConfigError("run_imp takes IMP configs, got kinds " + ", ".join(sorted({c.kind for c in configs})))
    # before any training: can the levels be reached?
    for c in {(section_key(c.model), section_key(c.prune)): c for c in configs}.values():
        check_levels(options.model if options.model is not None else shape_model(c), c.prune, levels)
    store = Store.of(store)
    configs = canonical(configs, store, options.data_root, options.data)
    pending = [c for c in configs if not store.run(c).level_done(0)]
    if pending:
        run_dense_many(pending, store, options=options)
    return run_chains([Chain(c, imp_level) for c in configs], list(range(levels + 1)), store, options)
