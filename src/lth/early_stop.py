"""[LTH]'s "learns faster": a training's early-stopping iteration, read off its stored evaluations.

[LTH] stops at the iteration of minimum validation loss (examples held out of the training set) and
reports the test accuracy there. lth holds no validation split out, so the early-stopping iteration
here is that of the minimum **test** loss over the evaluations the run made (every `train.eval_every`
iterations, and at the end): a resolution of one evaluation interval, and, because the iteration is
chosen on the test set, an accuracy there that is optimistic -- it compares trainings, it is not a
held-out estimate. `SPLIT` names the split in every table, claim and figure that uses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

SPLIT = "test"  # the split whose loss picks the iteration (no validation split is configured in lth)


@dataclass(frozen=True)
class EarlyStop:
    iteration: int  # the evaluation with the lowest loss (the first such, on ties)
    accuracy: float  # the test accuracy at that evaluation
    loss: float
    split: str = SPLIT


def early_stop(records: Sequence[Mapping[str, Any]]) -> EarlyStop | None:
    """The early-stopping point of one training from its metrics records (None without any record)."""
    scored = [r for r in records if "test_loss" in r and "iteration" in r]
    if not scored:
        return None
    best = min(scored, key=lambda r: (r["test_loss"], r["iteration"]))
    return EarlyStop(int(best["iteration"]), float(best["test_accuracy"]), float(best["test_loss"]))
