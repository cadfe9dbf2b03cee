"""A linear head on MiniLM sentence embeddings. Estimator contract as in tfidf_linear."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from automill.core.deadline import BudgetExhausted, Deadline
from automill.learners import minilm

#: Search space, as data (C of the logistic regression on normalised embeddings).
SEARCH_SPACE: list[dict[str, Any]] = [{"C": 3.0}, {"C": 10.0}, {"C": 1.0}, {"C": 30.0}]


class EmbeddingLinearClassifier:
    family = "minilm_linear"

    def __init__(self, *, C: float = 3.0, multilabel: bool = False) -> None:
        self.C = C
        self.multilabel = multilabel

    def get_params(self) -> dict[str, Any]:
        return {"C": self.C}

    def fit(self, texts: Sequence[str], Y: np.ndarray, *, deadline: Deadline | None = None) -> "EmbeddingLinearClassifier":
        if deadline is not None and deadline.expired():
            raise BudgetExhausted("no time left to fit the embedding head")
        X = minilm.embed(texts, deadline=deadline)
        Y = np.asarray(Y)
        self.n_labels_ = Y.shape[1]
        lr = LogisticRegression(C=self.C, max_iter=3000)
        if self.multilabel:
            self.constant_ = (Y.mean(axis=0) > 0.5).astype(float)
            self.varying_ = (Y.sum(axis=0) > 0) & (Y.sum(axis=0) < Y.shape[0])
            self.model_ = OneVsRestClassifier(lr).fit(X, Y[:, self.varying_]) if self.varying_.any() else None
        else:
            y = Y.argmax(axis=1)
            self.classes_ = np.unique(y)
            self.model_ = lr.fit(X, y) if len(self.classes_) > 1 else None
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "n_labels_"):
            raise NotFittedError("EmbeddingLinearClassifier is not fitted yet")
        X = minilm.embed(texts)
        out = np.zeros((len(texts), self.n_labels_))
        if self.multilabel:
            out[:, :] = self.constant_
            if self.model_ is not None:
                out[:, self.varying_] = self.model_.predict_proba(X)
        elif self.model_ is None:
            out[:, self.classes_[0]] = 1.0
        else:
            out[:, self.model_.classes_] = self.model_.predict_proba(X)
        return out
