"""Time is an argument: a Deadline is passed down to the innermost training loop."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class BudgetExhausted(Exception):
    """Raised by a learner that has no time left to finish even one more step."""


@dataclass
class Deadline:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    @classmethod
    def from_milli_node_hours(cls, milli: int) -> Deadline:
        return cls(seconds=milli_node_hours_to_seconds(milli))

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def fraction_used(self) -> float:
        return min(1.0, self.elapsed() / self.seconds) if self.seconds > 0 else 1.0


def milli_node_hours_to_seconds(milli: int) -> float:
    """1000 milli node hours = one worker for one hour of wall clock."""
    return milli * 3.6


def seconds_to_milli_node_hours(seconds: float) -> int:
    """Cost as reported to users: rounded up, at least 1 for any work done."""
    import math

    return max(1, math.ceil(seconds / 3.6))
