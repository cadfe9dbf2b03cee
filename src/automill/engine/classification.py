"""The AutoML facade for classification of text: search, refit, score. No DB, no HTTP, no jobs.

    result = fit_text_classifier(texts, Y, multilabel=False, deadline=Deadline(60))
    scores = result.model.predict_proba(["free prize!!"])
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from automill.core.deadline import BudgetExhausted, Deadline
from automill.learners.tfidf_linear import SEARCH_SPACE, TfidfLinearClassifier
from automill.search.trials import BUDGET_REACHED, SearchOutcome, run_trials


@dataclass
class FitResult:
    model: TfidfLinearClassifier
    params: dict[str, Any]
    stop_reason: str
    trials: list[dict[str, Any]] = field(default_factory=list)


def _holdout_mask(texts: Sequence[str], fraction: float = 0.15) -> np.ndarray:
    """Deterministic validation split by content hash."""
    vals = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "big") / 2**32 for t in texts]
    return np.array(vals) < fraction


def fit_text_classifier(texts: Sequence[str], Y: np.ndarray, *, multilabel: bool, deadline: Deadline,
                        progress: Callable[[float], None] | None = None,
                        search_space: Sequence[dict[str, Any]] = SEARCH_SPACE) -> FitResult:
    texts = list(texts)
    Y = np.asarray(Y, dtype=float)
    val = _holdout_mask(texts)
    if val.sum() < 5 or (~val).sum() < 5:
        val = np.zeros(len(texts), dtype=bool)

    def evaluate(config: dict[str, Any]) -> float:
        if not val.any():
            return 0.0
        learner = TfidfLinearClassifier(**config, multilabel=multilabel)
        learner.fit([t for t, v in zip(texts, val) if not v], Y[~val], deadline=deadline)
        scores = learner.predict_proba([t for t, v in zip(texts, val) if v])
        y_true = Y[val].ravel()
        return float(average_precision_score(y_true, scores.ravel())) if y_true.any() else 0.0

    space = list(search_space) if val.any() else list(search_space)[:1]
    outcome: SearchOutcome = run_trials(
        space, evaluate, deadline,
        on_trial=(lambda done, total: progress(80.0 * done / total)) if progress else None)
    best = outcome.best.config if outcome.best else dict(space[0])
    if outcome.best is None and deadline.expired():
        raise BudgetExhausted("the training budget ran out before a single model could be fitted")
    model = TfidfLinearClassifier(**best, multilabel=multilabel).fit(texts, Y)
    if progress:
        progress(90.0)
    stop = outcome.stop_reason if outcome.best else BUDGET_REACHED
    return FitResult(model=model, params=best, stop_reason=stop,
                     trials=[{"config": t.config, "score": t.score, "seconds": round(t.seconds, 3)}
                             for t in outcome.trials])
