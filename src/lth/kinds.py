"""Every kind of run, registered once: its mask, its starting weights, where its training starts,
which levels it trains, how the report draws and names it. Adding a branch kind that combines
these is one record here: branches.branch_planner builds any kind's levels from its record, and the
CLI's choices, config validation, the study plan, the claims and the figures read this table."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from .steps import Step


class MaskSource(enum.Enum):
    """Where a kind's mask comes from."""

    TICKET = "ticket"  # its parent's IMP mask at the level
    RANDOM = "random"  # a random one with the ticket's per-layer counts
    METHOD = "method"  # found by a pruning-at-init method (Kind.method)


class WeightSource(enum.Enum):
    """The weights a kind's levels start from."""

    REWIND = "rewind"  # W_k (with the optimizer state at k if the config rewinds it)
    INIT = "init"  # W0
    REINIT = "reinit"  # a fresh initialisation with reinit's seed


class SanityCheck(enum.Enum):
    """[PaI] §5: what a pruning-at-init method finds is per-layer sparsity, tested three ways."""

    SHUFFLE = "shuffle"  # its mask shuffled within each layer (same counts)
    REINIT = "reinit"  # its mask on freshly initialised weights
    INVERT = "invert"  # the weights the method would prune first kept instead


@dataclass(frozen=True)
class Kind:
    name: str
    label: str  # in claims and legends, e.g. "random reinitialisation"
    color: str  # one colour per kind, the same in every figure (sanity checks: their method's, dashed)
    starts_at_rewind: bool  # its pruned levels train from the rewind step k (False: from step 0)
    first_level: int = 1  # the first level a branch trains (0: it continues the dense network)
    baseline: bool = False  # a control that makes a ticket a ticket (lth reproduce trains it off each chain)
    is_ticket_at_reset: bool = False  # with k = 0 it is the IMP run itself (is_the_ticket_at)
    mask: MaskSource = MaskSource.TICKET
    weights: WeightSource = WeightSource.REWIND
    method: str | None = None  # pruning at initialization: the criterion (init_pruning.py)
    check: SanityCheck | None = None  # pruning at initialization: the [PaI] §5 sanity check of `method`

    def is_the_ticket_at(self, rewind: int | str) -> bool:
        """Whether this kind, off an IMP chain rewound to `rewind` (iterations, or a step such as "0it"),
        is that IMP run itself: reset-init at k = 0 has the ticket's mask, start and seeds, so it is
        adopted, not trained, planned nor claimed. The one test of it."""
        at_start = rewind == 0 if isinstance(rewind, int) else Step.parse(rewind).is_start
        return self.is_ticket_at_reset and at_start

    @property
    def dashed(self) -> bool:
        """Drawn dashed in figures: a sanity check, in its method's colour."""
        return self.check is not None


IMP, DENSE = "imp", "dense"
RESET_INIT, REINIT, RANDOM_PRUNE, DATA_ORDER = "reset-init", "reinit", "random-prune", "data-order"


def sanity_kind(method_kind: str, check: SanityCheck) -> str:
    """The kind of `check` applied to a pruning-at-init kind, e.g. "snip+shuffle" (named here only)."""
    return f"{method_kind}+{check.value}"


_PAI = (("magnitude-init", "magnitude", "#bcbd22"), ("snip", "snip", "#17becf"), ("grasp", "grasp", "#e377c2"),
        ("synflow", "synflow", "#8c564b"))

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind(IMP, "ticket", "#1f77b4", starts_at_rewind=True, first_level=0),
    Kind(DENSE, "dense", "#7f7f7f", starts_at_rewind=False, first_level=0),
    Kind(RESET_INIT, "reset to init", "#d62728", starts_at_rewind=False, baseline=True, is_ticket_at_reset=True,
         weights=WeightSource.INIT),
    Kind(REINIT, "random reinitialisation", "#2ca02c", starts_at_rewind=False, baseline=True,
         weights=WeightSource.REINIT),
    Kind(RANDOM_PRUNE, "random pruning", "#9467bd", starts_at_rewind=True, baseline=True, mask=MaskSource.RANDOM),
    Kind(DATA_ORDER, "another data order", "#1f77b4", starts_at_rewind=True, first_level=0),
    *(Kind(name, name, color, starts_at_rewind=True, mask=MaskSource.METHOD, method=method)
      for name, method, color in _PAI),
    *(Kind(sanity_kind(name, check), sanity_kind(name, check), color, starts_at_rewind=True, mask=MaskSource.METHOD,
           method=method, check=check,
           weights=WeightSource.REINIT if check is SanityCheck.REINIT else WeightSource.REWIND)
      for name, method, color in _PAI for check in SanityCheck),
)}

BASELINES = tuple(k.name for k in KINDS.values() if k.baseline)  # (reset-init, reinit, random-prune)
PRUNING_AT_INIT = {k.name: k.method for k in KINDS.values() if k.method and not k.check}  # kind: criterion
BRANCHES = tuple(name for name in KINDS if name not in (IMP, DENSE))  # what `lth branch KIND` trains
