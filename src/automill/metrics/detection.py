"""Object detection metrics as ImageObjectDetectionEvaluationMetrics, computed the COCO way.

Matching and average precision follow pycocotools (``COCOeval`` with area range "all" and at most
``max_dets`` detections per image): per image and label, detections in score order take the
unmatched ground-truth box of the highest IoU at or above the threshold; AP is the mean of the
101-point interpolated precision (precision made non-increasing in recall). The test suite checks
these numbers against pycocotools on the same predictions.

Boxes are ``[x_min, y_min, x_max, y_max]`` in normalised 0..1 coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
CONFIDENCE_THRESHOLDS = np.round(np.linspace(0.0, 0.95, 20), 2)


@dataclass
class Box:
    image: int
    label: int
    box: tuple[float, float, float, float]
    score: float = 1.0


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each box of ``a`` (n, 4) with each of ``b`` (m, 4) -> (n, m)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _match(truth: list[Box], preds: list[Box], threshold: float, max_dets: int) -> tuple[np.ndarray, np.ndarray, int]:
    """-> (scores, true-positive flags) of the kept detections, and the number of truth boxes."""
    by_image: dict[int, tuple[list[Box], list[Box]]] = {}
    for t in truth:
        by_image.setdefault(t.image, ([], []))[0].append(t)
    for p in preds:
        by_image.setdefault(p.image, ([], []))[1].append(p)
    scores, hits = [], []
    for gts, dts in by_image.values():
        order = np.argsort([-d.score for d in dts], kind="mergesort")[:max_dets]
        dts = [dts[i] for i in order]
        ious = iou(np.array([d.box for d in dts]).reshape(-1, 4), np.array([g.box for g in gts]).reshape(-1, 4))
        taken = np.zeros(len(gts), dtype=bool)
        for i, d in enumerate(dts):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for j in range(len(gts)):
                if taken[j] or ious[i, j] < best_iou:
                    continue
                best, best_iou = j, ious[i, j]
            if best >= 0:
                taken[best] = True
            scores.append(d.score)
            hits.append(best >= 0)
    return np.array(scores), np.array(hits, dtype=bool), len(truth)


def matches(
    truth: list[Box], preds: list[Box], threshold: float = 0.5, max_dets: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, true-positive flags) of every kept detection, matched per label as for AP."""
    labels = sorted({b.label for b in truth} | {b.label for b in preds})
    pairs = [
        _match([t for t in truth if t.label == k], [p for p in preds if p.label == k], threshold, max_dets)[:2]
        for k in labels
    ]
    if not pairs:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return np.concatenate([s for s, _ in pairs]), np.concatenate([h for _, h in pairs])


def average_precision(truth: list[Box], preds: list[Box], threshold: float, max_dets: int = 100) -> float | None:
    """COCO AP of one label at one IoU threshold; None when the label has no truth boxes."""
    scores, hits, n_truth = _match(truth, preds, threshold, max_dets)
    if n_truth == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    recall = tp / n_truth
    precision = tp / np.maximum(tp + fp, np.spacing(1))
    for i in range(len(precision) - 1, 0, -1):
        precision[i - 1] = max(precision[i - 1], precision[i])
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = [precision[i] if i < len(precision) else 0.0 for i in idx]
    return float(np.mean(sampled))


def _confidence_entries(truth: list[Box], preds: list[Box], threshold: float, max_dets: int) -> list[dict[str, Any]]:
    scores, hits, n_truth = _match(truth, preds, threshold, max_dets)
    out = []
    for c in CONFIDENCE_THRESHOLDS:
        keep = scores >= c
        tp = int(hits[keep].sum())
        n = int(keep.sum())
        recall = tp / n_truth if n_truth else 0.0
        precision = tp / n if n else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append({"confidenceThreshold": float(c), "recall": recall, "precision": precision, "f1Score": f1})
    return out


def detection_metrics(
    truth: Sequence[Box], preds: Sequence[Box], labels: Sequence[int] | None = None, max_dets: int = 100
) -> dict[str, Any]:
    """ImageObjectDetectionEvaluationMetrics (v1 JSON) over ``labels`` (all labels in the truth by
    default): one entry per IoU threshold 0.5, 0.55, …, 0.95 (mAP = the mean of the per-label APs,
    confidence entries averaged over labels); ``boundingBoxMeanAveragePrecision`` is their mean."""
    labels = sorted({t.label for t in truth}) if labels is None else list(labels)
    per_label = {k: ([t for t in truth if t.label == k], [p for p in preds if p.label == k]) for k in labels}

    def m_ap(threshold: float) -> float:
        found = (average_precision(t, p, threshold, max_dets) for t, p in per_label.values())
        aps = [a for a in found if a is not None]
        return float(np.mean(aps)) if aps else 0.0

    entries = []
    for t in IOU_THRESHOLDS:
        t = round(float(t), 2)
        conf = [_confidence_entries(tr, pr, t, max_dets) for tr, pr in per_label.values()]
        entries.append(
            {"iouThreshold": t, "meanAveragePrecision": m_ap(t), "confidenceMetricsEntries": _mean_entries(conf)}
        )
    # The single figure: mAP averaged over IoU 0.5:0.95 (COCO's AP), i.e. over the entries.
    averaged = float(np.mean([e["meanAveragePrecision"] for e in entries]))
    return {
        "evaluatedBoundingBoxCount": sum(len(t) for t, _ in per_label.values()),
        "boundingBoxMetricsEntries": entries,
        "boundingBoxMeanAveragePrecision": averaged,
    }


def _mean_entries(per_label: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if not per_label:
        return []
    out = []
    for i, entry in enumerate(per_label[0]):
        row = {"confidenceThreshold": entry["confidenceThreshold"]}
        for key in ("recall", "precision", "f1Score"):
            row[key] = float(np.mean([p[i][key] for p in per_label]))
        out.append(row)
    return out
