"""A point in training: "500it" (iterations) or "2ep" (epochs), resolved with iterations per epoch."""
from __future__ import annotations

import re
from dataclasses import dataclass

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

    def iterations(self, iterations_per_epoch: int) -> int:
        if self.unit == "it":
            return self.amount
        return self.amount * iterations_per_epoch

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def to_iterations(text: str | Step, iterations_per_epoch: int) -> int:
    return Step.parse(text).iterations(iterations_per_epoch)
