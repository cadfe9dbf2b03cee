"""TextSentimentEvaluationMetrics from ordinal predictions (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from google.cloud import automl_v1
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support


def _kappa(y_true: np.ndarray, y_pred: np.ndarray, weights: str) -> float:
    if len(set(y_true.tolist()) | set(y_pred.tolist())) < 2:
        return 1.0 if np.array_equal(y_true, y_pred) else 0.0
    value = cohen_kappa_score(y_true, y_pred, weights=weights)
    return float(value) if np.isfinite(value) else 0.0


def sentiment_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    sentiment_max: int,
    annotation_spec_ids: Sequence[str],
    display_names: Sequence[str],
    label: int | None = None,
) -> automl_v1.TextSentimentEvaluationMetrics:
    """Overall (label None): macro precision/recall/F1 over the sentiment values, MAE, MSE, linear and
    quadratic kappa and the confusion matrix. Per value (label=k): precision/recall/F1 of k vs rest."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    values = list(range(sentiment_max + 1))
    if label is not None:
        p, r, f, _ = precision_recall_fscore_support(
            y_true == label, y_pred == label, average="binary", zero_division=0
        )
        return automl_v1.TextSentimentEvaluationMetrics(precision=float(p), recall=float(r), f1_score=float(f))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=values, average="macro", zero_division=0)
    matrix = np.zeros((len(values), len(values)), dtype=int)
    for t, q in zip(y_true, y_pred, strict=True):
        matrix[t, q] += 1
    cm = automl_v1.ClassificationEvaluationMetrics.ConfusionMatrix(
        annotation_spec_id=list(annotation_spec_ids),
        display_name=list(display_names),
        row=[
            automl_v1.ClassificationEvaluationMetrics.ConfusionMatrix.Row(example_count=[int(x) for x in row])
            for row in matrix
        ],
    )
    diff = (y_true - y_pred).astype(float)
    return automl_v1.TextSentimentEvaluationMetrics(
        precision=float(p),
        recall=float(r),
        f1_score=float(f),
        mean_absolute_error=float(np.abs(diff).mean()) if len(diff) else 0.0,
        mean_squared_error=float((diff**2).mean()) if len(diff) else 0.0,
        linear_kappa=_kappa(y_true, y_pred, "linear"),
        quadratic_kappa=_kappa(y_true, y_pred, "quadratic"),
        confusion_matrix=cm,
    )
