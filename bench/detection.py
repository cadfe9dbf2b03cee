"""bench/detection: Automill's object detection model types on raccoon, one run.

    .venv/bin/python -m bench.detection --budget 600
    .venv/bin/python -m bench.detection --budget 120 --types mobile-versatile-1 --no-docs

For each model type: mAP@0.5 and mAP@0.5:0.95 on TEST (the COCO way: metrics/detection.py, checked
against pycocotools in the tests), precision and recall of the boxes a default predict returns
(and what they were before calibration), train seconds and stop reason, TF Lite size and
single-threaded TF Lite latency per image, and the TF Lite file's agreement with the trained model. No pretrained
detector exists offline, so there is no peer to run beside it; the numbers stand on their own.
Prints a table, writes bench/results/detection-<timestamp>.{json,md} and the "Object detection"
section of docs/benchmarks.md. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit, logit

from automill.core.deadline import Deadline
from automill.export.edge import export_detector_package
from automill.learners.centernet import CenterNetDetector, decode
from automill.metrics.detection import Box, detection_metrics, matches
from automill.problems.image_object_detection.problem import DETECTION_PRESETS
from automill.problems.image_object_detection.rows import parse_box
from automill.problems.images import decode_batch
from bench import report
from bench.images import tflite_latency_ms

ROOT = Path(__file__).resolve().parents[1]
RACCOON = ROOT.parent / "shared" / "datasets" / "raccoon"
DEFAULT_THRESHOLD = 0.5
TYPES = ("mobile-low-latency-1", "mobile-versatile-1", "mobile-high-accuracy-1")


def load_split() -> dict[str, tuple[list[bytes], list[list[tuple[int, tuple[float, ...]]]]]]:
    by_image: dict[str, tuple[str, list[tuple[int, tuple[float, ...]]]]] = {}
    with open(RACCOON / "raccoon.csv", newline="") as fh:
        raccoon = list(csv.reader(fh))
    for r in raccoon:
        box = parse_box(r[3:])
        by_image.setdefault(r[1], (r[0], []))[1].append((0, box))
    out: dict[str, tuple[list[bytes], list[Any]]] = {"TRAIN": ([], []), "VALIDATE": ([], []), "TEST": ([], [])}
    for path, (split, boxes) in by_image.items():
        out[split][0].append((RACCOON / "images" / path.rsplit("/", 1)[1]).read_bytes())
        out[split][1].append(boxes)
    return out


def at_threshold(scores: np.ndarray, hits: np.ndarray, n_truth: int) -> tuple[float | None, float]:
    """(precision, recall) of the boxes scoring at least DEFAULT_THRESHOLD; precision None when none do."""
    kept = scores >= DEFAULT_THRESHOLD
    return (round(float(hits[kept].mean()), 4) if kept.any() else None), round(float(hits[kept].sum()) / n_truth, 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=600, help="wall-clock seconds of training per model type")
    ap.add_argument("--types", nargs="*", default=list(TYPES))
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = ap.parse_args()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    started = datetime.now(UTC)
    data = load_split()

    def load(items: Any, size: int) -> Any:
        return decode_batch(list(items), size)

    rows = []
    for model_type in args.types:
        t0 = time.monotonic()
        det = CenterNetDetector(**DETECTION_PRESETS[model_type]).fit(
            load,
            data["TRAIN"][0],
            data["TRAIN"][1],
            data["VALIDATE"][0],
            data["VALIDATE"][1],
            1,
            deadline=Deadline(args.budget),
        )
        train_s = time.monotonic() - t0
        images = decode_batch(data["TEST"][0], det.size)
        found = decode(det.raw(images), 1, 0.0, 100)
        truth = [Box(i, k, b) for i, boxes in enumerate(data["TEST"][1]) for k, b in boxes]
        preds = [Box(i, k, b, s) for i, dets in enumerate(found) for k, s, b in dets]
        m = detection_metrics(truth, preds, labels=[0])
        by_iou = {e["iouThreshold"]: e["meanAveragePrecision"] for e in m["boundingBoxMetricsEntries"]}
        scores, hits = matches(truth, preds)  # what a user gets at the API's default score_threshold
        raw = scores  # the heatmap peaks as trained, before the calibration folded into the network
        if det.calibration_:
            slope, intercept = det.calibration_
            raw = expit((logit(np.clip(scores, 1e-7, 1 - 1e-7)) - intercept) / slope)
        precision, recall = at_threshold(scores, hits, len(truth))
        raw_precision, raw_recall = at_threshold(raw, hits, len(truth))
        with tempfile.TemporaryDirectory() as tmp:
            meta = export_detector_package(det, ["raccoon"], "tflite", "float32", Path(tmp), images[:16])
            latency = tflite_latency_ms(Path(tmp) / "model.tflite", det.size)
        row = {
            "system": f"automill/{model_type}",
            "map_50": round(by_iou[0.5], 4),
            "map_50_95": round(m["boundingBoxMeanAveragePrecision"], 4),
            "precision_at_0.5": precision,
            "recall_at_0.5": recall,
            "uncalibrated_precision_at_0.5": raw_precision,
            "uncalibrated_recall_at_0.5": raw_recall,
            "train_s": round(train_s, 1),
            "input_px": det.size,
            "stop": f"{det.stop_reason_} ({det.epochs_} epochs)",
            "tflite_mb": round(meta["size_bytes"] / 1e6, 2),
            "tflite_ms_1_thread": round(latency, 2),
            "tflite_top_box_agreement": meta["parity"]["top_box_agreement"],
        }
        print(row, flush=True)
        rows.append(row)
    cols = [
        "map_50",
        "map_50_95",
        "precision_at_0.5",
        "recall_at_0.5",
        "uncalibrated_precision_at_0.5",
        "uncalibrated_recall_at_0.5",
        "train_s",
        "input_px",
        "stop",
        "tflite_mb",
        "tflite_ms_1_thread",
        "tflite_top_box_agreement",
    ]
    n = {k: (len(v[0]), sum(len(b) for b in v[1])) for k, v in data.items()}
    header = (
        f"raccoon ({n['TRAIN'][0]} TRAIN / {n['VALIDATE'][0]} VALIDATE / {n['TEST'][0]} TEST images, "
        f"{n['TEST'][1]} TEST boxes); mAP on TEST, COCO-style; precision and recall (IoU 0.5) of the boxes "
        f"scoring at least {DEFAULT_THRESHOLD}, the API's default score_threshold, with the calibrated scores "
        f"served and, beside them, the heatmap peaks as trained. Budget {args.budget:.0f} s of training per "
        f"model type; {os.cpu_count()} CPU cores; Python {platform.python_version()}; run "
        f"{started:%Y-%m-%d %H:%M} UTC. TF Lite: float32, one image, one thread, ai-edge-litert; agreement "
        "of the TF Lite file's top box with the trained model's on 16 TEST images."
    )
    report.publish(
        "detection",
        "Object detection",
        started,
        {"budget_s": args.budget, "results": rows},
        header,
        report.markdown_table(rows, cols),
        docs=not args.no_docs,
    )


if __name__ == "__main__":
    main()
