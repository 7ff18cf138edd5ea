"""Iterative magnitude pruning with rewinding ([SCALE] Algorithm 1), the algorithm in `imp_level`:

    level 0      train the dense network from W0, saving W_k on the way     (dense.py: one shared run)
    level L >= 1 prune the lowest-magnitude surviving weights of level L-1's final weights,
                 rewind the survivors to W_k (k = 0: the initialisation, the original LTH),
                 train from iteration k to the end, continuing the schedule and data order

A chain's levels are jobs (jobs.py), each trained by levels.train_level with this planner, so
finished levels are read and a killed one resumes; `lth.run_imp` runs them (api.py).
"""
from __future__ import annotations

from torch import nn

from .dense import dense_config
from .experiment import Setup
from .levels import Adopted, LevelPlan, rewind_state
from .masks import Mask, empty_layer_error, layer_fractions, magnitude_prune
from .store import FINAL_FILE, MASK_FILE, Run, load_tensors, step_file, step_optimizer_file


def imp_level(run: Run, setup: Setup, level: int, model: nn.Module) -> LevelPlan | Adopted:
    """How level `level` of the IMP chain `run` starts."""
    if level == 0:  # the dense network: the shared dense run, with this chain's W_k (its job trained it)
        k = setup.rewind_iteration
        return Adopted(Run(run.dir.parent, dense_config(setup.config)), 0,
                       Adopted.files + ((step_file(k), step_optimizer_file(k)) if k > 0 else ()),
                       {"kind": setup.config.kind, "rewind": setup.config.rewind})
    mask = pruned_mask(run, setup, level, model)  # prune level L-1's final weights by magnitude
    weights, optimizer_state = rewind_state(run, setup)  # rewind the survivors to W_k
    return LevelPlan(mask, weights, setup.rewind_iteration, optimizer_state)  # and train from k to the end


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
