"""Classification evaluation metrics in Google AutoML's ClassificationEvaluationMetrics shape.

Pure functions: callers pass ground truth and scores, and get back the proto message that
the ModelEvaluation API serves. Everything is guarded so no NaN/inf ever reaches the proto
(its JSON form must stay valid).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from google.cloud import automl_v1
from sklearn.metrics import average_precision_score, roc_auc_score

_Metrics = automl_v1.ClassificationEvaluationMetrics

# Google documents these thresholds: every 0.05 in [0, 0.95], then 0.96..0.99.
THRESHOLDS: tuple[float, ...] = tuple([round(i * 0.05, 2) for i in range(20)] + [0.96, 0.97, 0.98, 0.99])

INT32_MAX = 2147483647
_MAX_CONFUSION_LABELS = 10
_EPS = 1e-15


def evaluated_example_count(y_true: np.ndarray) -> int:
    """Number of evaluated examples (rows), as ModelEvaluation.evaluated_example_count."""
    return int(np.asarray(y_true).shape[0])


def _finite(x: float) -> float:
    """Map NaN/inf to 0.0 so the proto JSON stays valid."""
    x = float(x)
    return x if math.isfinite(x) else 0.0


def _ratio(num: float, den: float, empty: float) -> float:
    """num/den, or `empty` when den is 0 (the documented convention for empty sets)."""
    return float(num) / float(den) if den > 0 else empty


def _f1(p: float, r: float) -> float:
    return 2.0 * p * r / (p + r) if (p + r) > 0 else 0.0


def _rates(truth: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int, float, float, float, float]:
    """Binary counts and precision/recall/fpr/f1 for flat boolean arrays."""
    tp = int(np.count_nonzero(truth & pred))
    fp = int(np.count_nonzero(~truth & pred))
    fn = int(np.count_nonzero(truth & ~pred))
    tn = int(np.count_nonzero(~truth & ~pred))
    precision = _ratio(tp, tp + fp, 1.0)
    recall = _ratio(tp, tp + fn, 0.0)
    fpr = _ratio(fp, fp + tn, 0.0)
    return tp, fp, fn, tn, precision, recall, fpr, _f1(precision, recall)


def _top1_mask(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (n, k) mask of each row's top label (ties -> lowest column) and its score."""
    n, k = scores.shape
    top = np.argmax(scores, axis=1) if k else np.zeros(n, dtype=int)
    mask = np.zeros((n, k), dtype=bool)
    if n and k:
        mask[np.arange(n), top] = True
    top_score = scores[np.arange(n), top] if (n and k) else np.zeros(n)
    return mask, top_score


def _au_prc(truth: np.ndarray, score: np.ndarray) -> float:
    """Average precision; 0.0 when there are no positives (sklearn would warn / be undefined)."""
    if truth.size == 0 or not truth.any():
        return 0.0
    return _finite(average_precision_score(truth.astype(int), score))


def _au_roc(truth: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC; 0.0 when only one class is present instead of raising."""
    if truth.size == 0 or truth.all() or not truth.any():
        return 0.0
    return _finite(roc_auc_score(truth.astype(int), score))


def _log_loss(y_true: np.ndarray, scores: np.ndarray, multilabel: bool) -> float:
    """Multiclass: mean -log p(true class); multilabel/binary cells: mean binary cross-entropy."""
    if y_true.size == 0:
        return 0.0
    p = np.clip(scores, _EPS, 1.0 - _EPS)
    if multilabel:
        bce = -(y_true * np.log(p) + (1.0 - y_true) * np.log(1.0 - p))
        return _finite(bce.mean())
    p_true = np.clip(np.where(y_true > 0, scores, 0.0).max(axis=1), _EPS, 1.0)
    return _finite(-np.log(p_true).mean())


def _entries(
    truth: np.ndarray, score: np.ndarray, top_mask: np.ndarray, top_score: np.ndarray
) -> list[_Metrics.ConfidenceMetricsEntry]:
    """One ConfidenceMetricsEntry per threshold; arrays may be (n, k) or (n,) aligned."""
    entries = []
    for t in THRESHOLDS:
        tp, fp, fn, tn, p, r, fpr, f1 = _rates(truth, score >= t)
        above = top_score >= t
        if top_mask.ndim == 2:
            above = above[:, None]
        _, _, _, _, p1, r1, fpr1, f11 = _rates(truth, top_mask & above)
        entries.append(
            _Metrics.ConfidenceMetricsEntry(
                confidence_threshold=float(t),
                position_threshold=INT32_MAX,
                recall=r,
                precision=p,
                false_positive_rate=fpr,
                f1_score=f1,
                recall_at1=r1,
                precision_at1=p1,
                false_positive_rate_at1=fpr1,
                f1_score_at1=f11,
                true_positive_count=tp,
                false_positive_count=fp,
                false_negative_count=fn,
                true_negative_count=tn,
            )
        )
    return entries


def _confusion_matrix(
    y_true: np.ndarray, scores: np.ndarray, ids: Sequence[str], names: Sequence[str]
) -> _Metrics.ConfusionMatrix:
    """Rows = true label (argmax of y_true), columns = predicted top label (argmax of scores)."""
    k = scores.shape[1]
    counts = np.zeros((k, k), dtype=np.int64)
    has_label = y_true.any(axis=1)
    true_idx = np.argmax(y_true, axis=1)
    pred_idx = np.argmax(scores, axis=1)
    np.add.at(counts, (true_idx[has_label], pred_idx[has_label]), 1)
    return _Metrics.ConfusionMatrix(
        annotation_spec_id=list(ids),
        display_name=list(names),
        row=[_Metrics.ConfusionMatrix.Row(example_count=[int(c) for c in r]) for r in counts],
    )


def classification_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    multilabel: bool,
    annotation_spec_ids: Sequence[str],
    display_names: Sequence[str],
    label_index: int | None = None,
) -> automl_v1.ClassificationEvaluationMetrics:
    """Build ClassificationEvaluationMetrics: overall (micro over cells) or one-vs-rest for column j."""
    y = np.asarray(y_true, dtype=float)
    s = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0, posinf=1.0, neginf=0.0)
    s = np.clip(s, 0.0, 1.0)
    if y.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"y_true {y.shape} and scores {s.shape} must be equal (n, k) matrices")
    k = y.shape[1]
    if len(annotation_spec_ids) != k or len(display_names) != k:
        raise ValueError("annotation_spec_ids and display_names must have one entry per column")
    truth = y > 0.5
    top_mask, top_score = _top1_mask(s)

    if label_index is not None:
        j = int(label_index)
        if not 0 <= j < k:
            raise ValueError(f"label_index {j} out of range for {k} labels")
        col_t, col_s = truth[:, j], s[:, j]
        return _Metrics(
            au_prc=_au_prc(col_t, col_s),
            au_roc=_au_roc(col_t, col_s),
            log_loss=_log_loss(y[:, j : j + 1], s[:, j : j + 1], multilabel=True),
            confidence_metrics_entry=_entries(col_t, col_s, top_mask[:, j], top_score),
        )

    flat_t, flat_s = truth.ravel(), s.ravel()
    metrics = _Metrics(
        au_prc=_au_prc(flat_t, flat_s),
        au_roc=_au_roc(flat_t, flat_s),
        log_loss=_log_loss(y, s, multilabel),
        confidence_metrics_entry=_entries(truth, s, top_mask, top_score),
        annotation_spec_id=list(annotation_spec_ids),
    )
    if not multilabel and 0 < k <= _MAX_CONFUSION_LABELS:
        metrics.confusion_matrix = _confusion_matrix(truth, s, annotation_spec_ids, display_names)
    return metrics
