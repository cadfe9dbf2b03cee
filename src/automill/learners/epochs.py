"""The epoch loop shared by the image learners: a deadline-fitted warm-up + cosine learning-rate
schedule, early stopping on a validation score, and the best epoch's weights kept.

After the first epoch the planned epochs shrink to what the deadline allows (the schedule follows),
so training ends with ``BUDGET_REACHED`` having decayed the rate instead of being cut off at its
peak; ``MODEL_CONVERGED`` when the validation score stops improving for ``patience`` epochs or
after ``max_epochs``. If the deadline passes mid-epoch, that epoch still counts and is validated.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from automill.core.deadline import BudgetExhausted, Deadline


class Progress(Protocol):
    """``progress(fraction)`` or ``progress(fraction, stage)``: how far a fit is (0..1) and, when it
    changed, what it is doing now."""

    def __call__(self, fraction: float, stage: str | None = None, /) -> None: ...


@dataclass
class EpochResult:
    stop_reason: str
    epochs: int
    best_epoch: int
    best_score: float


def train_epochs(
    model: Any,
    *,
    n: int,
    batch_size: int,
    max_epochs: int,
    patience: int,
    rng: np.random.Generator,
    step: Callable[[np.ndarray, float], None],
    validate: Callable[[int], float],
    start_epoch: Callable[[], None],
    deadline: Deadline | None = None,
    warmup_epochs: float = 0.5,
    progress: Progress | None = None,
    on_best: Callable[[dict[str, Any], int, float], None] | None = None,
    best_score: float | None = None,
) -> EpochResult:
    """Run ``step(batch_indices, lr_scale)`` over shuffled batches epoch by epoch; ``validate(epoch)``
    returns a score (lower is better); ``model`` (a torch module) ends with the best epoch's weights.

    ``on_best(weights, epoch, score)`` hears each new best (a copy: a checkpoint for a later attempt).
    ``best_score``: the validation score of the weights ``model`` starts from (an earlier attempt's
    best); an epoch must beat it to be kept, and if none does, ``model`` keeps its starting weights."""
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    warm = max(1, int(steps_per_epoch * warmup_epochs))
    plan, stop = max_epochs, "MODEL_CONVERGED"
    best: tuple[float, Any, int] = (float("inf"), None, 0)
    if best_score is not None:
        best = (best_score, copy.deepcopy(model.state_dict()), 0)
    stale, epoch, done = 0, 0, 0
    started = time.monotonic()
    while epoch < plan:
        start_epoch()
        perm = rng.permutation(n)
        cut_short = False
        for b in range(steps_per_epoch):
            if deadline is not None and deadline.expired() and (epoch > 0 or done >= 5):
                cut_short = True
                break
            scale = (
                min(1.0, (done + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, done / (plan * steps_per_epoch))))
            )
            step(perm[b * batch_size : (b + 1) * batch_size], scale)
            done += 1
        epoch += 1
        score = validate(epoch)
        if score < best[0] - 1e-4:
            best, stale = (score, copy.deepcopy(model.state_dict()), epoch), 0
            if on_best is not None:
                on_best(best[1], epoch, score)
        else:
            stale += 1
        if progress:  # progress(fraction, stage)
            progress(
                0.2 + 0.8 * min(1.0, epoch / plan),
                f"epoch {epoch} of {plan} done: validation score {score:.4f}, best {min(score, best[0]):.4f}",
            )
        if cut_short:
            stop = "BUDGET_REACHED"
            break
        if stale >= patience:
            stop = "MODEL_CONVERGED"  # more epochs stopped helping, even if the deadline had shortened the plan
            break
        if epoch == 1 and deadline is not None:
            per_epoch = time.monotonic() - started
            fits = epoch + int(deadline.remaining() / max(per_epoch * 1.05, 1e-3))
            if fits < plan:
                plan, stop = max(1, fits), "BUDGET_REACHED"
    if best[1] is None:
        raise BudgetExhausted("the budget ran out before the model trained")
    model.load_state_dict(best[1])
    return EpochResult(stop, epoch, best[2], best[0])
