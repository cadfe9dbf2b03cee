"""TF-IDF features + a linear model: the fast, strong text-classification baseline.

Estimator contract: ``__init__`` stores params, ``fit(texts, Y, *, deadline)`` returns self,
``predict_proba`` raises NotFittedError before fit. Y is an (n, k) 0/1 indicator matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from automill.core.deadline import BudgetExhausted, Deadline
from automill.learners.linear_head import LinearHead

#: The search space, as data: the engine tries these configurations in order of expected value.
SEARCH_SPACE: list[dict[str, Any]] = [
    {"word_ngrams": (1, 2), "char_ngrams": None, "C": 10.0},
    {"word_ngrams": (1, 2), "char_ngrams": (2, 5), "C": 10.0},
    {"word_ngrams": (1, 2), "char_ngrams": (2, 5), "C": 30.0},
    {"word_ngrams": (1, 1), "char_ngrams": None, "C": 3.0},
    {"word_ngrams": (1, 2), "char_ngrams": (2, 5), "C": 3.0},
    {"word_ngrams": (1, 2), "char_ngrams": (2, 5), "C": 10.0, "sublinear_tf": True},
    {"word_ngrams": (1, 3), "char_ngrams": (1, 4), "C": 10.0, "sublinear_tf": True},
]


class TfidfLinearClassifier(LinearHead):
    family = "tfidf_linear"

    def __init__(
        self,
        *,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = None,
        C: float = 10.0,
        sublinear_tf: bool = False,
        multilabel: bool = False,
        max_features: int = 200_000,
    ) -> None:
        self.word_ngrams = word_ngrams
        self.sublinear_tf = sublinear_tf
        self.char_ngrams = char_ngrams
        self.C = C
        self.multilabel = multilabel
        self.max_features = max_features

    def get_params(self) -> dict[str, Any]:
        return {
            "word_ngrams": self.word_ngrams,
            "char_ngrams": self.char_ngrams,
            "C": self.C,
            "sublinear_tf": self.sublinear_tf,
            "multilabel": self.multilabel,
        }

    def _features(self) -> FeatureUnion:
        parts: list[tuple[str, Any]] = [
            (
                "word",
                TfidfVectorizer(
                    ngram_range=tuple(self.word_ngrams),
                    min_df=1,
                    max_features=self.max_features,
                    token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - a regex for words, not a password
                    lowercase=True,
                    sublinear_tf=self.sublinear_tf,
                ),
            )
        ]
        if self.char_ngrams:
            parts.append(
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=tuple(self.char_ngrams),
                        min_df=2,
                        max_features=self.max_features,
                        lowercase=True,
                        sublinear_tf=self.sublinear_tf,
                    ),
                )
            )
        return FeatureUnion(parts)

    def fit(self, texts: Sequence[str], Y: np.ndarray, *, deadline: Deadline | None = None) -> TfidfLinearClassifier:
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[0] != len(texts):
            raise ValueError(f"Y must be (n_texts, n_labels), got {Y.shape} for {len(texts)} texts")
        if deadline is not None and deadline.expired():
            raise BudgetExhausted("no time left to fit TF-IDF + linear")
        features = self._features()
        X = features.fit_transform(list(texts))
        self._fit_head(X, Y, C=self.C, class_weight="balanced")
        self.features_ = features
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not hasattr(self, "features_"):
            raise NotFittedError("TfidfLinearClassifier is not fitted yet")
        return self._predict_head(self.features_.transform(list(texts)), len(texts))
