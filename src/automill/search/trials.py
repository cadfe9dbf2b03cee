"""Budgeted trial search: try configurations in order until the space or the budget runs out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from automill.core.deadline import BudgetExhausted, Deadline

MODEL_CONVERGED = "MODEL_CONVERGED"
BUDGET_REACHED = "BUDGET_REACHED"


@dataclass
class Trial:
    config: dict[str, Any]
    score: float
    seconds: float


@dataclass
class SearchOutcome:
    best: Trial | None
    trials: list[Trial] = field(default_factory=list)
    stop_reason: str = MODEL_CONVERGED


def run_trials(configs: Sequence[dict[str, Any]], evaluate: Callable[[dict[str, Any]], float], deadline: Deadline,
               *, reserve: float = 0.25, on_trial: Callable[[int, int], None] | None = None) -> SearchOutcome:
    """Evaluate configs (higher score is better) while a trial is expected to fit in the budget.

    ``reserve`` is the share of the budget kept back for the final refit and evaluation.
    """
    out = SearchOutcome(best=None)
    for i, config in enumerate(configs):
        longest = max((t.seconds for t in out.trials), default=0.0)
        usable = deadline.remaining() - reserve * deadline.seconds
        if out.trials and longest * 1.5 > usable:
            out.stop_reason = BUDGET_REACHED
            break
        t0 = time.monotonic()
        try:
            score = evaluate(config)
        except BudgetExhausted:
            out.stop_reason = BUDGET_REACHED
            break
        trial = Trial(config, score, time.monotonic() - t0)
        out.trials.append(trial)
        if out.best is None or trial.score > out.best.score:
            out.best = trial
        if on_trial:
            on_trial(i + 1, len(configs))
    return out
