"""Every kind of run, registered once: its mask, its starting weights, where its training starts,
which levels it trains, how the report draws and names it. Adding a branch kind that combines
these is one record here: branches._planner builds any kind's levels from its record, and the
CLI's choices, config validation, the study plan, the claims and the figures read this table."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    label: str  # in claims and legends, e.g. "random reinitialisation"
    color: str  # one colour per kind, the same in every figure (sanity checks: their method's, dashed)
    starts_at_rewind: bool  # its pruned levels train from the rewind step k (False: from step 0)
    first_level: int = 1  # the first level a branch trains (0: it continues the dense network)
    baseline: bool = False  # a control that makes a ticket a ticket (lth reproduce trains it off each chain)
    is_ticket_at_reset: bool = False  # with k = 0 it is the IMP run itself: adopted, not trained nor claimed
    mask: str = "ticket"  # "ticket": its parent's IMP mask at the level; "random": a random one with the
    #                       ticket's per-layer counts; "method": found by a pruning-at-init `method`
    weights: str = "rewind"  # "rewind": W_k (with the optimizer state at k if the config rewinds it); "init": W0;
    #                          "reinit": a fresh initialisation with reinit's seed
    method: str | None = None  # pruning at initialization: the criterion (init_pruning.py)
    check: str | None = None  # pruning at initialization: the [PaI] §5 sanity check


IMP, DENSE = "imp", "dense"
RESET_INIT, REINIT, RANDOM_PRUNE, DATA_ORDER = "reset-init", "reinit", "random-prune", "data-order"
SANITY_CHECKS = ("shuffle", "reinit", "invert")  # [PaI] §5: what the methods find is per-layer sparsity
_PAI = (("magnitude-init", "magnitude", "#bcbd22"), ("snip", "snip", "#17becf"), ("grasp", "grasp", "#e377c2"),
        ("synflow", "synflow", "#8c564b"))

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind(IMP, "ticket", "#1f77b4", starts_at_rewind=True, first_level=0),
    Kind(DENSE, "dense", "#7f7f7f", starts_at_rewind=False, first_level=0),
    Kind(RESET_INIT, "reset to init", "#d62728", starts_at_rewind=False, baseline=True, is_ticket_at_reset=True,
         weights="init"),
    Kind(REINIT, "random reinitialisation", "#2ca02c", starts_at_rewind=False, baseline=True, weights="reinit"),
    Kind(RANDOM_PRUNE, "random pruning", "#9467bd", starts_at_rewind=True, baseline=True, mask="random"),
    Kind(DATA_ORDER, "another data order", "#1f77b4", starts_at_rewind=True, first_level=0),
    *(Kind(name, name, color, starts_at_rewind=True, mask="method", method=method) for name, method, color in _PAI),
    *(Kind(f"{name}+{check}", f"{name}+{check}", color, starts_at_rewind=True, mask="method", method=method,
           check=check, weights="reinit" if check == "reinit" else "rewind")
      for name, method, color in _PAI for check in SANITY_CHECKS),
)}

BASELINES = tuple(k.name for k in KINDS.values() if k.baseline)  # (reset-init, reinit, random-prune)
PRUNING_AT_INIT = {k.name: k.method for k in KINDS.values() if k.method and not k.check}  # kind: criterion
BRANCHES = tuple(name for name in KINDS if name not in (IMP, DENSE))  # what `lth branch KIND` trains
