from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from google.cloud import automl_v1
from sklearn.metrics import average_precision_score, roc_auc_score

from automill.metrics.classification import (
    THRESHOLDS,
    classification_metrics,
    evaluated_example_count,
)

M = automl_v1.ClassificationEvaluationMetrics


def approx(x: Any) -> Any:
    return pytest.approx(x, rel=1e-6, abs=1e-6)


# 4 examples, 3 classes (multiclass); example 2 is misclassified as class 0.
Y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
S = np.array(
    [
        [0.70, 0.20, 0.10],
        [0.30, 0.60, 0.10],
        [0.50, 0.40, 0.10],
        [0.40, 0.35, 0.25],
    ]
)
IDS = ["a", "b", "c"]
NAMES = ["cat", "dog", "owl"]


def _metrics(y=Y, s=S, multilabel=False, label_index=None, k=None):
    k = y.shape[1] if k is None else k
    return classification_metrics(
        y,
        s,
        multilabel=multilabel,
        annotation_spec_ids=[f"id{i}" for i in range(k)] if y is not Y else IDS,
        display_names=[f"n{i}" for i in range(k)] if y is not Y else NAMES,
        label_index=label_index,
    )


def _entry(m, t):
    (e,) = [e for e in m.confidence_metrics_entry if e.confidence_threshold == pytest.approx(t)]
    return e


def _counts(e):
    return (e.true_positive_count, e.false_positive_count, e.false_negative_count, e.true_negative_count)


def _assert_no_nan(m):
    text = M.to_json(m)
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)  # must stay strictly valid JSON
    assert M.from_json(text) == m


def test_thresholds_are_the_24_documented_values():
    expected = (
        0.0,
        0.05,
        0.1,
        0.15,
        0.2,
        0.25,
        0.3,
        0.35,
        0.4,
        0.45,
        0.5,
        0.55,
        0.6,
        0.65,
        0.7,
        0.75,
        0.8,
        0.85,
        0.9,
        0.95,
        0.96,
        0.97,
        0.98,
        0.99,
    )
    assert expected == THRESHOLDS
    m = _metrics()
    assert [round(e.confidence_threshold, 2) for e in m.confidence_metrics_entry] == list(expected)
    assert all(e.position_threshold == 2147483647 for e in m.confidence_metrics_entry)


def test_evaluated_example_count():
    assert evaluated_example_count(Y) == 4
    assert evaluated_example_count(np.zeros((0, 3))) == 0


def test_perfect_classifier():
    y = np.eye(3, dtype=int)[[0, 1, 2, 0, 1, 2]]
    s = np.where(y == 1, 0.9, 0.05)
    m = _metrics(y, s)
    assert m.au_prc == approx(1.0)
    assert m.au_roc == approx(1.0)
    e = _entry(m, 0.5)
    assert e.precision == approx(1.0) and e.recall == approx(1.0) and e.f1_score == approx(1.0)
    assert e.false_positive_rate == approx(0.0)
    assert e.precision_at1 == approx(1.0) and e.recall_at1 == approx(1.0)
    assert _counts(e) == (6, 0, 0, 12)


def test_hand_computed_counts_threshold_0():
    e = _entry(_metrics(), 0.0)
    # every one of the 12 cells is predicted positive; 4 are true.
    assert _counts(e) == (4, 8, 0, 0)
    assert e.precision == approx(1 / 3)
    assert e.recall == approx(1.0)
    assert e.false_positive_rate == approx(1.0)
    assert e.f1_score == approx(0.5)
    # top-1 cells: (0,0) T, (1,1) T, (2,0) F, (3,0) T -> tp 3, fp 1, fn 1, tn 7
    assert e.precision_at1 == approx(0.75)
    assert e.recall_at1 == approx(0.75)
    assert e.false_positive_rate_at1 == approx(1 / 8)
    assert e.f1_score_at1 == approx(0.75)


def test_hand_computed_counts_threshold_05():
    e = _entry(_metrics(), 0.5)
    # cells >= 0.5: (0,0)=0.7 T, (1,1)=0.6 T, (2,0)=0.5 F (>= is inclusive)
    assert _counts(e) == (2, 1, 2, 7)
    assert e.precision == approx(2 / 3)
    assert e.recall == approx(0.5)
    assert e.false_positive_rate == approx(1 / 8)
    assert e.f1_score == approx(4 / 7)
    # top-1 restricted to top score >= 0.5: example 3 (top 0.4) drops out
    assert e.precision_at1 == approx(2 / 3)
    assert e.recall_at1 == approx(0.5)
    assert e.false_positive_rate_at1 == approx(1 / 8)


def test_empty_prediction_set_has_precision_one():
    e = _entry(_metrics(), 0.99)
    assert _counts(e) == (0, 0, 4, 8)
    assert e.precision == approx(1.0) and e.recall == approx(0.0) and e.f1_score == approx(0.0)
    assert e.precision_at1 == approx(1.0) and e.recall_at1 == approx(0.0)


def test_overall_curves_and_log_loss():
    m = _metrics()
    assert m.au_prc == approx(average_precision_score(Y.ravel(), S.ravel()))
    assert m.au_roc == approx(roc_auc_score(Y.ravel(), S.ravel()))
    assert m.log_loss == approx(-np.mean(np.log([0.7, 0.6, 0.1, 0.4])))
    assert list(m.annotation_spec_id) == IDS


def test_multilabel_log_loss_is_mean_bce():
    y = np.array([[1, 1, 0], [0, 1, 1]])
    s = np.array([[0.9, 0.6, 0.2], [0.1, 0.8, 0.7]])
    m = _metrics(y, s, multilabel=True)
    bce = -(y * np.log(s) + (1 - y) * np.log(1 - s))
    assert m.log_loss == approx(bce.mean())


def test_confusion_matrix_rows():
    cm = _metrics().confusion_matrix
    assert list(cm.annotation_spec_id) == IDS
    assert list(cm.display_name) == NAMES
    assert [list(r.example_count) for r in cm.row] == [[2, 0, 0], [0, 1, 0], [1, 0, 0]]


def test_no_confusion_matrix_for_multilabel_or_many_labels():
    assert "confusion_matrix" not in _metrics(multilabel=True)
    rng = np.random.default_rng(0)
    y11 = np.eye(11, dtype=int)[rng.integers(0, 11, 30)]
    s11 = rng.random((30, 11))
    assert "confusion_matrix" not in _metrics(y11, s11)
    y10 = np.eye(10, dtype=int)[rng.integers(0, 10, 30)]
    assert "confusion_matrix" in _metrics(y10, rng.random((30, 10)))


def _reference_one_vs_rest(y, s, j, t):
    """Brute-force per-cell counts for column j at threshold t: (plain, at1)."""
    plain, at1 = [0, 0, 0, 0], [0, 0, 0, 0]
    for i in range(len(y)):
        truth = bool(y[i, j])
        top = int(np.argmax(s[i]))
        for counts, pred in ((plain, s[i, j] >= t), (at1, top == j and s[i, top] >= t)):
            idx = {(True, True): 0, (False, True): 1, (True, False): 2, (False, False): 3}[(truth, pred)]
            counts[idx] += 1
    return tuple(plain), tuple(at1)


@pytest.mark.parametrize("j", [0, 1, 2])
def test_per_label_matches_one_vs_rest(j):
    m = _metrics(label_index=j)
    assert "confusion_matrix" not in m
    assert list(m.annotation_spec_id) == []
    assert m.au_prc == approx(average_precision_score(Y[:, j], S[:, j]))
    assert m.au_roc == approx(roc_auc_score(Y[:, j], S[:, j]))
    assert len(m.confidence_metrics_entry) == 24
    for t, e in zip(THRESHOLDS, m.confidence_metrics_entry, strict=True):  # proto stores float32 thresholds
        plain, at1 = _reference_one_vs_rest(Y, S, j, t)
        assert _counts(e) == plain
        tp, fp, fn, tn = at1
        assert e.precision_at1 == approx(tp / (tp + fp) if tp + fp else 1.0)
        assert e.recall_at1 == approx(tp / (tp + fn) if tp + fn else 0.0)
        assert e.false_positive_rate_at1 == approx(fp / (fp + tn) if fp + tn else 0.0)


def test_per_label_at1_differs_from_plain():
    # column 1 at 0.3: cells 1 (0.6), 2 (0.4), 3 (0.35) pass, but only example 1 has it as top.
    e = _entry(_metrics(label_index=1), 0.3)
    assert _counts(e) == (1, 2, 0, 1)
    assert e.precision == approx(1 / 3)
    assert e.precision_at1 == approx(1.0) and e.false_positive_rate_at1 == approx(0.0)


def test_label_without_positives_yields_no_nan():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    s = np.array([[0.9, 0.1, 0.3], [0.8, 0.7, 0.2], [0.2, 0.9, 0.6]])
    for label_index in (None, 0, 1, 2):
        m = _metrics(y, s, multilabel=True, label_index=label_index)
        _assert_no_nan(m)
    m2 = _metrics(y, s, multilabel=True, label_index=2)
    assert m2.au_prc == 0.0 and m2.au_roc == 0.0
    assert all(e.recall == 0.0 for e in m2.confidence_metrics_entry)
    assert all(math.isfinite(v) for v in (m2.log_loss, m2.au_prc, m2.au_roc))


def test_extreme_scores_stay_finite_and_round_trip():
    y = np.array([[1, 0], [0, 1]])
    s = np.array([[0.0, 1.0], [1.0, 0.0]])  # confidently wrong: log(0) must be clipped
    for multilabel in (False, True):
        m = _metrics(y, s, multilabel=multilabel)
        assert math.isfinite(m.log_loss) and m.log_loss > 30
        _assert_no_nan(m)
    _assert_no_nan(_metrics())


def test_ties_break_to_lowest_column():
    y = np.array([[0, 1]])
    s = np.array([[0.5, 0.5]])
    m = _metrics(y, s)
    e = _entry(m, 0.5)
    assert e.recall_at1 == approx(0.0) and e.false_positive_rate_at1 == approx(1.0)
    assert [list(r.example_count) for r in m.confusion_matrix.row] == [[0, 0], [1, 0]]


def test_deterministic():
    assert M.to_json(_metrics()) == M.to_json(_metrics())


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        _metrics(Y, S[:, :2])
    with pytest.raises(ValueError):
        _metrics(label_index=3)
