"""The logistic-regression head shared by the TF-IDF and embedding learners.

MULTICLASS: one multinomial model over the labels present. MULTILABEL: one binary model per label
that varies in the training data; a label that is always (or never) present is a constant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier


class LinearHead:
    multilabel: bool

    def _fit_head(self, X: Any, Y: np.ndarray, **lr_params: Any) -> None:
        Y = np.asarray(Y)
        self.n_labels_ = Y.shape[1]
        lr = LogisticRegression(max_iter=3000, **lr_params)
        if self.multilabel:
            counts = Y.sum(axis=0)
            self.constant_ = (Y.mean(axis=0) > 0.5).astype(float)
            self.varying_ = (counts > 0) & (counts < Y.shape[0])
            self.model_ = OneVsRestClassifier(lr).fit(X, Y[:, self.varying_]) if self.varying_.any() else None
        else:
            y = Y.argmax(axis=1)
            self.classes_ = np.unique(y)
            self.model_ = lr.fit(X, y) if len(self.classes_) > 1 else None

    def _predict_head(self, X: Any, n: int) -> np.ndarray:
        out = np.zeros((n, self.n_labels_), dtype=float)
        if self.multilabel:
            out[:, :] = self.constant_
            if self.model_ is not None:
                out[:, self.varying_] = self.model_.predict_proba(X)
        elif self.model_ is None:
            out[:, self.classes_[0]] = 1.0
        else:
            out[:, self.model_.classes_] = self.model_.predict_proba(X)
        return out
