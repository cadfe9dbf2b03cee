from __future__ import annotations

import json
import math

import pytest
from google.cloud import automl_v1

from automill.core.errors import InvalidArgument
from automill.metrics.extraction import THRESHOLDS, entity_counts, extraction_metrics

M = automl_v1.TextExtractionEvaluationMetrics

GOLD = [[(0, 5, "PER"), (10, 15, "LOC")], [(0, 3, "ORG")]]
PRED = [
    [(0, 5, "PER", 0.9), (10, 15, "ORG", 0.8)],  # right; wrong type
    [(0, 4, "ORG", 0.6), (20, 25, "MISC", 0.3)],  # wrong boundary; nothing there
]


def entry(m, t: float):
    (e,) = [e for e in m.confidence_metrics_entries if e.confidence_threshold == pytest.approx(t)]
    return e


def prf(e) -> tuple[float, float, float]:
    return e.precision, e.recall, e.f1_score


def all_values(m) -> list[float]:
    vals = [m.au_prc]
    for e in m.confidence_metrics_entries:
        vals += [e.confidence_threshold, e.precision, e.recall, e.f1_score]
    return vals


def test_thresholds_are_the_twenty_documented_values():
    m = extraction_metrics(GOLD, PRED)
    got = [round(e.confidence_threshold, 4) for e in m.confidence_metrics_entries]
    assert got == [round(i * 0.05, 2) for i in range(20)] == list(THRESHOLDS)
    assert got[0] == 0.0 and got[-1] == 0.95


def test_perfect_prediction_is_one_everywhere():
    pred = [[(s, e, t, 1.0) for s, e, t in doc] for doc in GOLD]
    m = extraction_metrics(GOLD, pred)
    assert m.au_prc == pytest.approx(1.0)
    for e in m.confidence_metrics_entries:
        assert prf(e) == pytest.approx((1.0, 1.0, 1.0))
    assert entity_counts(GOLD, pred) == (3, 0, 0)


def test_perfect_prediction_with_varied_scores_has_au_prc_one():
    pred = [[(0, 5, "PER", 0.2), (10, 15, "LOC", 0.99)], [(0, 3, "ORG", 0.5)]]
    assert extraction_metrics(GOLD, pred).au_prc == pytest.approx(1.0)


def test_wrong_type_and_wrong_boundary_are_false_positives():
    assert entity_counts(GOLD, PRED, threshold=0.5) == (1, 2, 2)
    assert entity_counts(GOLD, PRED, threshold=0.0) == (1, 3, 2)
    m = extraction_metrics(GOLD, PRED)
    assert prf(entry(m, 0.5)) == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=1e-6)
    f1 = 2 * 0.25 * (1 / 3) / (0.25 + 1 / 3)
    assert prf(entry(m, 0.0)) == pytest.approx((0.25, 1 / 3, f1), abs=1e-6)
    assert prf(entry(m, 0.85)) == pytest.approx((1.0, 1 / 3, 0.5), abs=1e-6)
    assert prf(entry(m, 0.95)) == pytest.approx((1.0, 0.0, 0.0))  # nothing predicted
    assert m.au_prc == pytest.approx(1 / 3, abs=1e-6)  # only the top prediction is right


def test_thresholds_filter_low_scores():
    pred = [[(0, 5, "PER", 0.9), (10, 15, "LOC", 0.2)], [(0, 3, "ORG", 0.55)]]
    assert entity_counts(GOLD, pred, threshold=0.1) == (3, 0, 0)
    assert entity_counts(GOLD, pred, threshold=0.5) == (2, 0, 1)
    assert entity_counts(GOLD, pred, threshold=0.55) == (2, 0, 1)  # >= threshold counts
    assert entity_counts(GOLD, pred, threshold=0.6) == (1, 0, 2)
    m = extraction_metrics(GOLD, pred)
    assert entry(m, 0.2).recall == pytest.approx(1.0)
    assert entry(m, 0.25).recall == pytest.approx(2 / 3, abs=1e-6)
    assert entry(m, 0.6).recall == pytest.approx(1 / 3, abs=1e-6)


def test_average_precision_hand_computed():
    gold = [[(0, 1, "A"), (2, 3, "A"), (4, 5, "A")]]
    pred = [[(0, 1, "A", 0.9), (6, 7, "A", 0.8), (2, 3, "A", 0.7)]]
    # tp at rank 1 (precision 1), fp, tp at rank 3 (precision 2/3); 3 gold spans
    assert extraction_metrics(gold, pred).au_prc == pytest.approx((1 + 2 / 3) / 3, abs=1e-6)


def test_average_precision_ties_do_not_depend_on_order():
    gold = [[(0, 1, "A")]]
    a = extraction_metrics(gold, [[(0, 1, "A", 0.5), (2, 3, "A", 0.5)]]).au_prc
    b = extraction_metrics(gold, [[(2, 3, "A", 0.5), (0, 1, "A", 0.5)]]).au_prc
    assert a == b == pytest.approx(0.5)


def test_per_label_filtering():
    per = extraction_metrics(GOLD, PRED, label="PER")
    assert per.au_prc == pytest.approx(1.0)
    assert prf(entry(per, 0.5)) == pytest.approx((1.0, 1.0, 1.0))
    org = extraction_metrics(GOLD, PRED, label="ORG")
    assert org.au_prc == 0.0
    assert prf(entry(org, 0.5)) == (0.0, 0.0, 0.0)
    assert entity_counts(GOLD, PRED, label="ORG") == (0, 2, 1)
    assert entity_counts(GOLD, PRED, label="LOC") == (0, 0, 1)
    assert entity_counts(GOLD, PRED, label="MISC", threshold=0.0) == (0, 1, 0)


def test_duplicates_count_once():
    gold = [[(0, 1, "A"), (0, 1, "A")]]
    pred = [[(0, 1, "A", 0.3), (0, 1, "A", 0.8)]]
    assert entity_counts(gold, pred, threshold=0.5) == (1, 0, 0)


def test_nothing_predicted_has_no_nan():
    m = extraction_metrics(GOLD, [[], []])
    assert m.au_prc == 0.0
    assert all(math.isfinite(v) for v in all_values(m))
    assert all(prf(e) == (1.0, 0.0, 0.0) for e in m.confidence_metrics_entries)
    assert entity_counts(GOLD, [[], []]) == (0, 0, 3)


def test_nothing_gold_has_no_nan():
    m = extraction_metrics([[], []], PRED)
    assert m.au_prc == 0.0
    assert all(math.isfinite(v) for v in all_values(m))
    assert prf(entry(m, 0.0)) == (0.0, 0.0, 0.0)
    assert prf(entry(m, 0.95)) == (1.0, 0.0, 0.0)
    empty = extraction_metrics([], [])
    assert empty.au_prc == 0.0 and all(math.isfinite(v) for v in all_values(empty))


def test_bad_input_is_invalid_argument():
    with pytest.raises(InvalidArgument):
        extraction_metrics(GOLD, [[]])
    with pytest.raises(InvalidArgument):
        entity_counts([[]], [[(0, 1, "A", 1.5)]])
    with pytest.raises(InvalidArgument):
        extraction_metrics([[]], [[(0, 1, "A", float("nan"))]])


def test_round_trips_through_json():
    m = extraction_metrics(GOLD, PRED)
    text = M.to_json(m)
    data = json.loads(text)
    assert len(data["confidenceMetricsEntries"]) == 20
    assert set(data["confidenceMetricsEntries"][10]) >= {"confidenceThreshold", "precision"}
    back = M.from_json(text)
    assert back == m
    assert back.au_prc == pytest.approx(1 / 3, abs=1e-6)
