"""The mAP code against pycocotools on the same fixed, randomised predictions."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from automill.metrics.detection import Box, average_precision, detection_metrics, iou


def scene(seed: int) -> tuple[list[Box], list[Box]]:
    rng = np.random.default_rng(seed)
    truth, preds = [], []
    for image in range(30):
        for _ in range(rng.integers(0, 5)):
            x0, y0 = rng.uniform(0, 0.7, 2)
            w, h = rng.uniform(0.05, 0.3, 2)
            label = int(rng.integers(0, 3))
            truth.append(Box(image, label, (x0, y0, x0 + w, y0 + h)))
            for _ in range(rng.integers(0, 3)):  # near-duplicates of varying quality
                jitter = rng.normal(0, 0.03, 4)
                b = np.clip(np.array([x0, y0, x0 + w, y0 + h]) + jitter, 0, 1)
                if b[2] > b[0] and b[3] > b[1]:
                    preds.append(
                        Box(
                            image,
                            label if rng.random() > 0.1 else int(rng.integers(0, 3)),
                            tuple(b),
                            float(rng.random()),
                        )
                    )
        for _ in range(rng.integers(0, 3)):  # false positives
            x0, y0 = rng.uniform(0, 0.8, 2)
            preds.append(Box(image, int(rng.integers(0, 3)), (x0, y0, x0 + 0.1, y0 + 0.1), float(rng.random())))
    return truth, preds


def coco_stats(truth: list[Box], preds: list[Box]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    S = 1000.0  # pixel scale of the normalised boxes

    def xywh(b: tuple[float, ...]) -> list[float]:
        return [b[0] * S, b[1] * S, (b[2] - b[0]) * S, (b[3] - b[1]) * S]

    gt = COCO()
    gt.dataset = {
        "images": [{"id": i, "width": S, "height": S} for i in range(30)],
        "categories": [{"id": c} for c in range(3)],
        "annotations": [
            {
                "id": n + 1,
                "image_id": t.image,
                "category_id": t.label,
                "bbox": xywh(t.box),
                "area": xywh(t.box)[2] * xywh(t.box)[3],
                "iscrowd": 0,
            }
            for n, t in enumerate(truth)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(
            [{"image_id": p.image, "category_id": p.label, "bbox": xywh(p.box), "score": p.score} for p in preds]
        )
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_agrees_with_pycocotools(seed: int) -> None:
    truth, preds = scene(seed)
    ours = detection_metrics(truth, preds)
    stats = coco_stats(truth, preds)  # [AP@.5:.95, AP@.5, AP@.75, ...] over area "all", 100 detections
    by_iou = {e["iouThreshold"]: e["meanAveragePrecision"] for e in ours["boundingBoxMetricsEntries"]}
    assert abs(ours["boundingBoxMeanAveragePrecision"] - stats[0]) < 1e-3
    assert abs(by_iou[0.5] - stats[1]) < 1e-3
    assert abs(by_iou[0.75] - stats[2]) < 1e-3
    assert ours["evaluatedBoundingBoxCount"] == len(truth)


def test_simple_cases() -> None:
    gt = [Box(0, 0, (0.1, 0.1, 0.5, 0.5))]
    assert average_precision(gt, [Box(0, 0, (0.1, 0.1, 0.5, 0.5), 0.9)], 0.5) == 1.0
    assert average_precision(gt, [Box(0, 0, (0.6, 0.6, 0.9, 0.9), 0.9)], 0.5) == 0.0
    assert average_precision([], [Box(0, 0, (0.1, 0.1, 0.2, 0.2), 0.9)], 0.5) is None
    assert iou(np.array([[0, 0, 1, 1]]), np.array([[0.5, 0, 1, 1]]))[0, 0] == pytest.approx(0.5)
    m = detection_metrics(gt, [Box(0, 0, (0.1, 0.1, 0.5, 0.5), 0.9)])
    entry = m["boundingBoxMetricsEntries"][0]
    assert entry["iouThreshold"] == 0.5 and len(m["boundingBoxMetricsEntries"]) == 10
    at = {c["confidenceThreshold"]: c for c in entry["confidenceMetricsEntries"]}
    assert at[0.5]["recall"] == 1.0 and at[0.5]["precision"] == 1.0 and at[0.95]["recall"] == 0.0
