"""A linear head on MiniLM sentence embeddings. Estimator contract as in tfidf_linear."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from automill.core.deadline import BudgetExhausted, Deadline
from automill.learners import minilm
from automill.learners.linear_head import LinearHead

#: Search space, as data (C of the logistic regression on normalised embeddings).
SEARCH_SPACE: list[dict[str, Any]] = [{"C": 3.0}, {"C": 10.0}, {"C": 1.0}, {"C": 30.0}]


class EmbeddingLinearClassifier(LinearHead):
    family = "minilm_linear"

    def __init__(self, *, C: float = 3.0, multilabel: bool = False) -> None:
        self.C = C
        self.multilabel = multilabel

    def get_params(self) -> dict[str, Any]:
        return {"C": self.C}

    def fit(
        self, texts: Sequence[str], Y: np.ndarray, *, deadline: Deadline | None = None
    ) -> EmbeddingLinearClassifier:
        if deadline is not None and deadline.expired():
            raise BudgetExhausted("no time left to fit the embedding head")
        self._fit_head(minilm.embed(texts, deadline=deadline), Y, C=self.C)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "n_labels_"):
            raise NotFittedError("EmbeddingLinearClassifier is not fitted yet")
        return self._predict_head(minilm.embed(texts), len(texts))
