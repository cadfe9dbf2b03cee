"""Entity-extraction evaluation metrics in Google AutoML's TextExtractionEvaluationMetrics shape.

Pure functions over per-document spans. Gold spans are ``(start, end, type)``; predicted spans
are ``(start, end, type, score)`` with score in [0, 1]. A prediction is a true positive only
when start, end and type all equal a gold span's (exact match; a wrong type or a wrong
boundary is one false positive, and the gold span stays a false negative). Within a document,
repeated gold spans count once and a repeated predicted span keeps its highest score. No
NaN/inf ever reaches the proto.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from google.cloud import automl_v1

from automill.core.errors import InvalidArgument

_Metrics = automl_v1.TextExtractionEvaluationMetrics

# Google reports every 0.05 in [0, 0.95] for entity extraction.
THRESHOLDS: tuple[float, ...] = tuple(round(i * 0.05, 2) for i in range(20))

Gold = Sequence[Sequence[tuple[int, int, str]]]
Predicted = Sequence[Sequence[tuple[int, int, str, float]]]


def _ratio(num: float, den: float, empty: float) -> float:
    return float(num) / float(den) if den > 0 else empty


def _f1(p: float, r: float) -> float:
    return 2.0 * p * r / (p + r) if (p + r) > 0 else 0.0


def _scored(gold: Gold, predicted: Predicted, label: str | None) -> tuple[list[tuple[float, bool]], int]:
    """All distinct predictions as (score, is_true_positive), and the number of gold spans."""
    if len(gold) != len(predicted):
        raise InvalidArgument(f"gold has {len(gold)} documents, predicted {len(predicted)}")
    scored: list[tuple[float, bool]] = []
    n_gold = 0
    for doc_gold, doc_pred in zip(gold, predicted, strict=True):
        truth = {(int(s), int(e), t) for s, e, t in doc_gold if label is None or t == label}
        n_gold += len(truth)
        best: dict[tuple[int, int, str], float] = {}
        for s, e, t, score in doc_pred:
            if label is not None and t != label:
                continue
            score = float(score)
            if not (math.isfinite(score) and 0.0 <= score <= 1.0):
                raise InvalidArgument(f"prediction score {score} is not in [0, 1]")
            key = (int(s), int(e), t)
            best[key] = max(score, best.get(key, 0.0))
        scored += [(score, key in truth) for key, score in best.items()]
    return scored, n_gold


def _counts(scored: list[tuple[float, bool]], n_gold: int, t: float) -> tuple[int, int, int]:
    tp = sum(1 for score, hit in scored if hit and score >= t)
    fp = sum(1 for score, hit in scored if not hit and score >= t)
    return tp, fp, n_gold - tp


def entity_counts(
    gold: Gold, predicted: Predicted, *, threshold: float = 0.5, label: str | None = None
) -> tuple[int, int, int]:
    """(tp, fp, fn) counting predictions with score >= threshold; only ``label`` if given."""
    scored, n_gold = _scored(gold, predicted, label)
    return _counts(scored, n_gold, threshold)


def entity_f1(gold: Gold, predicted: Predicted, *, threshold: float = 0.5) -> float:
    """Micro entity F1 (exact span and type) of the predictions scoring at least ``threshold``."""
    tp, fp, fn = entity_counts(gold, predicted, threshold=threshold)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _average_precision(scored: list[tuple[float, bool]], n_gold: int) -> float:
    """Sum over true positives of the precision at their rank, over the gold count.

    Predictions with equal scores form one step (all taken together), so the result does not
    depend on the order of ties.
    """
    if n_gold == 0:
        return 0.0
    ordered = sorted(scored, key=lambda x: -x[0])
    total, tp, i = 0.0, 0, 0
    while i < len(ordered):
        j = i
        group_tp = 0
        while j < len(ordered) and ordered[j][0] == ordered[i][0]:
            group_tp += ordered[j][1]
            j += 1
        tp += group_tp
        total += group_tp * tp / j
        i = j
    result = total / n_gold
    return result if math.isfinite(result) else 0.0


def extraction_metrics(
    gold: Gold, predicted: Predicted, *, label: str | None = None
) -> automl_v1.TextExtractionEvaluationMetrics:
    """au_prc plus one ConfidenceMetricsEntry per threshold (0.0, 0.05, …, 0.95).

    Precision is 1.0 when nothing is predicted at a threshold; recall is 0.0 when there is no
    gold span; F1 is 0.0 when both are 0.
    """
    scored, n_gold = _scored(gold, predicted, label)
    entries = []
    for t in THRESHOLDS:
        tp, fp, fn = _counts(scored, n_gold, t)
        p = _ratio(tp, tp + fp, 1.0)
        r = _ratio(tp, tp + fn, 0.0)
        entries.append(
            _Metrics.ConfidenceMetricsEntry(confidence_threshold=float(t), recall=r, precision=p, f1_score=_f1(p, r))
        )
    return _Metrics(au_prc=_average_precision(scored, n_gold), confidence_metrics_entries=entries)
