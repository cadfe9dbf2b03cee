"""bench.text's paired bootstrap: the interval that tells "above" from TEST-set noise."""

from __future__ import annotations

import numpy as np

from bench.text import comparisons, paired


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Y = np.eye(3)[rng.integers(0, 3, n)]
    noise = rng.random((n, 3))
    return Y, Y * 0.9 + noise * 0.5, Y * 0.3 + noise * 0.5  # a strong and a weak system, same noise


def test_a_clearly_better_system_has_an_interval_above_zero() -> None:
    Y, strong, weak = _data()
    out = paired("ordinal", Y, (strong, None), (weak, None), n=300)
    diff, lo, hi = out["accuracy"]
    assert lo > 0 and lo <= diff <= hi
    assert out["mae"][2] < 0  # lower is better: the strong system's whole interval is below zero


def test_identical_predictions_differ_by_exactly_zero() -> None:
    Y, strong, _ = _data()
    assert paired("multiclass", Y, (strong, None), (strong, None), n=100)["macro_f1"] == (0.0, 0.0, 0.0)


def test_the_default_is_held_against_the_best_peer_per_metric() -> None:
    Y, strong, weak = _data()
    results = [
        {"dataset": "d", "system": s, "accuracy": a, "macro_f1": f}
        for s, a, f in [
            ("tfidf_lr", 0.6, 0.7),
            ("minilm_lr", 0.7, 0.6),
            ("automill/mobile-versatile-1", 0.9, 0.9),
            ("automill/mobile-high-accuracy-1", 0.9, 0.9),
        ]
    ]
    preds = {
        "tfidf_lr": (weak, None),
        "minilm_lr": (weak, None),
        "automill/mobile-versatile-1": (strong, None),
        "automill/mobile-high-accuracy-1": (strong, None),
    }
    rows = comparisons("d", "multiclass", Y, results, preds, n=50)  # which pairs, not how wide
    against = {(r["metric"], r["system"]): r["against"] for r in rows}
    assert against == {
        ("accuracy", "automill/mobile-versatile-1"): "minilm_lr",
        ("macro_f1", "automill/mobile-versatile-1"): "tfidf_lr",
        ("accuracy", "automill/mobile-high-accuracy-1"): "automill/mobile-versatile-1",
        ("macro_f1", "automill/mobile-high-accuracy-1"): "automill/mobile-versatile-1",
    }


def test_each_ensemble_member_is_scored_alone_on_test() -> None:
    from bench.text import Fitted, member_scores

    Y, strong, weak = _data()
    members = [
        ({"family": "a", "config": {"C": 1}, "weight": 2.0}, lambda texts: strong),
        ({"family": "b", "config": {}, "weight": 1.0}, lambda texts: weak),
    ]
    fitted = Fitted(lambda texts: (2 * strong + weak) / 3, None, members)
    rows = member_scores("d", "automill/x", "multiclass", fitted, ["t"] * len(Y), Y)
    assert [(r["family"], r["weight"]) for r in rows] == [("a", 2.0), ("b", 1.0)]
    assert rows[0]["accuracy"] > rows[1]["accuracy"] and rows[0]["accuracy"] > 0.9
    assert member_scores("d", "tfidf_lr", "multiclass", Fitted(lambda texts: strong), [], Y) == []
