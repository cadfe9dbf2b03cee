"""Detector scores: Platt scaling of the heatmap peaks, folded into the network exactly; and the
epoch loop's stop reason when the deadline shortened the plan."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from automill.core.deadline import Deadline
from automill.learners.centernet import decode, fold_calibration, make_modules, platt
from automill.learners.epochs import train_epochs
from automill.metrics.detection import Box, matches


def test_platt_recovers_the_map_and_refuses_what_it_cannot_fit() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(-1.0, 1.5, 4000)
    hits = rng.random(4000) < 1 / (1 + np.exp(-(2.0 * z + 1.0)))
    slope, intercept = platt(1 / (1 + np.exp(-z)), hits)
    assert abs(slope - 2.0) < 0.25 and abs(intercept - 1.0) < 0.25
    assert platt(np.array([0.9, 0.8, 0.1, 0.2, 0.3]), np.array([1, 1, 0, 0, 0], dtype=bool)) is None  # 2 right
    assert platt(np.linspace(0.05, 0.95, 20), np.arange(20) < 10) is None  # higher scores are more often wrong


def test_folded_calibration_maps_every_score_and_keeps_the_boxes() -> None:
    torch.manual_seed(0)
    _, Head, _ = make_modules()
    head = Head(None, 2, 8, False).eval()
    f16, f32 = torch.randn(3, 112, 10, 10), torch.randn(3, 320, 5, 5)
    with torch.no_grad():
        before = head(f16, f32)
        fold_calibration(head.heatmap, 1.7, 0.4)
        after = head(f16, f32)
    logit = torch.logit(before[:, :2].double())
    assert torch.allclose(after[:, :2].double(), torch.sigmoid(1.7 * logit + 0.4), atol=1e-5)
    assert torch.equal(after[:, 2:], before[:, 2:])  # sizes and offsets

    def boxes(out: Any) -> list[list[Any]]:
        return [[(k, b) for k, _, b in image] for image in decode(out.numpy(), 2, 0.0, 100)]

    assert boxes(after) == boxes(before)  # same peaks, same order


def test_matches_pairs_each_label_separately() -> None:
    truth = [Box(0, 0, (0.1, 0.1, 0.5, 0.5)), Box(0, 1, (0.1, 0.1, 0.5, 0.5))]
    preds = [
        Box(0, 0, (0.1, 0.1, 0.5, 0.5), 0.9),
        Box(0, 0, (0.1, 0.1, 0.5, 0.52), 0.8),
        Box(0, 1, (0.6, 0.6, 0.9, 0.9), 0.7),
    ]
    scores, hits = matches(truth, preds)
    assert sorted(zip(scores.tolist(), hits.tolist(), strict=True)) == [(0.7, False), (0.8, False), (0.9, True)]


def _loop(validate, deadline_s: float) -> tuple[str, int]:
    model = torch.nn.Linear(2, 1)
    result = train_epochs(
        model,
        n=4,
        batch_size=4,
        max_epochs=100,
        patience=3,
        rng=np.random.default_rng(0),
        step=lambda idx, scale: time.sleep(0.1),
        validate=validate,
        start_epoch=lambda: None,
        deadline=Deadline(deadline_s),
    )
    return result.stop_reason, result.epochs


def test_patience_is_convergence_even_when_the_deadline_shortened_the_plan() -> None:
    # After one epoch (0.1 s) the 1.5 s deadline leaves room for about 14 of the 100 epochs.
    assert _loop(lambda epoch: 1.0, 1.5) == ("MODEL_CONVERGED", 4)  # no gain after epoch 1: 3 stale epochs
    reason, epochs = _loop(lambda epoch: -epoch, 1.5)  # still improving when the plan ends
    assert reason == "BUDGET_REACHED" and 8 <= epochs <= 15
