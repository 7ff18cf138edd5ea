"""A point in training: "500it" (iterations) or "2ep" (epochs), resolved with iterations per epoch.

Steps are parsed here only: `Step.parse` reads one, `check_steps` checks a list the user gave, and
`to_iterations` resolves one (a plain int is already a number of iterations).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from .errors import StepError

_PATTERN = re.compile(r"^\s*(\d+)\s*(it|ep)\s*$")


@dataclass(frozen=True)
class Step:
    amount: int
    unit: str  # "it" or "ep"

    @classmethod
    def parse(cls, text: str | Step) -> Step:
        if isinstance(text, Step):
            return text
        match = _PATTERN.match(str(text))
        if not match:
            raise StepError(f"bad step {text!r}: write '<n>it' for iterations or '<n>ep' for epochs, e.g. '500it' or '2ep'")
        return cls(int(match.group(1)), match.group(2))

    @property
    def is_start(self) -> bool:
        """Whether this is the start of training ("0it" or "0ep")."""
        return self.amount == 0

    def iterations(self, iterations_per_epoch: int) -> int:
        if self.unit == "it":
            return self.amount
        return self.amount * iterations_per_epoch

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def check_steps(steps: Iterable[str]) -> tuple[str, ...]:
    """The steps as given, each checked (a bad one raises StepError naming it)."""
    steps = tuple(steps)
    for step in steps:
        Step.parse(step)
    return steps


def to_iterations(step: str | Step | int, iterations_per_epoch: int) -> int:
    if isinstance(step, (str, Step)):
        return Step.parse(step).iterations(iterations_per_epoch)
    return int(step)
