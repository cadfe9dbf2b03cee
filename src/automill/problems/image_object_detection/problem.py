"""Image object detection (Vision Edge) as a problem plug-in.

Examples are images in the media store; annotations are ``[{"spec": id, "box": [x0, y0, x1, y1]}]``
(normalised, top-left origin). Models are CenterNet heads on EfficientNet-Lite0
(learners/centernet.py); the model type picks input size and training depth.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automill.core.deadline import Deadline
from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.engine.progress import two_args
from automill.learners.centernet import CenterNetDetector, decode
from automill.learners.efficientnet import OnnxScorer
from automill.metrics.detection import Box, detection_metrics
from automill.problems.base import Evaluation, StoredExample, TrainOutcome
from automill.problems.image_object_detection.rows import FORMATS, DetectionExample, parse_detection_csv
from automill.problems.images import check_image, decode_batch, hold_out, image_splits, load_base_state, node_qps
from automill.problems.params import int_param, score_threshold
from automill.problems.rows import ParseResult

ARTIFACT_VERSION = 1
#: Model type -> detector parameters (input size, training depth, head width).
DETECTION_PRESETS: dict[str, dict[str, Any]] = {
    "mobile-low-latency-1": {"size": 256, "train_top": False, "width": 64},
    "mobile-versatile-1": {"size": 320, "train_top": False, "width": 96},
    "mobile-high-accuracy-1": {"size": 384, "train_top": True, "width": 96},
    "cloud-low-latency-1": {"size": 320, "train_top": False, "width": 128},
    "cloud-high-accuracy-1": {"size": 416, "train_top": True, "width": 128},
}
DEFAULT_DETECTION_MODEL_TYPE = "cloud-high-accuracy-1"  # Google's default


def detection_preset(model_type: str) -> tuple[str, dict[str, Any]]:
    name = model_type or DEFAULT_DETECTION_MODEL_TYPE
    if name not in DETECTION_PRESETS:
        raise InvalidArgument(
            f"modelType {model_type!r} is not an object detection model type; use one of {sorted(DETECTION_PRESETS)}",
            field="model.image_object_detection_model_metadata.model_type",
        )
    return name, DETECTION_PRESETS[name]


class ImageObjectDetection:
    name = "image_object_detection"
    prefix = "IOD"
    predict_params: tuple[str, ...] = ("score_threshold", "max_bounding_box_count")  # rules: problems/params.py
    dataset_key = "imageObjectDetectionDatasetMetadata"
    model_key = "imageObjectDetectionModelMetadata"
    uses_media = True

    def validate_dataset_metadata(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {}

    def model_metadata(self, dataset_meta: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]:
        return {"modelType": detection_preset(str(request_meta.get("modelType", "") or ""))[0]}

    def parse_import(
        self,
        data: str,
        *,
        uri: str,
        read_text: Callable[[str], str],
        dataset_meta: dict[str, Any],
        read_bytes: Callable[..., bytes] | None = None,
        put_media: Callable[[bytes, str], str] | None = None,
    ) -> ParseResult[DetectionExample]:
        if read_bytes is None or put_media is None:
            raise InvalidArgument("image import needs storage for the images")
        return parse_detection_csv(data, uri=uri, read_bytes=read_bytes, put_media=put_media)

    # -- storing imported examples ------------------------------------------------------------------
    def labels_of(self, ex: Any) -> list[str]:
        return list(ex.labels)

    def annotations_of(self, ex: Any, spec_of: dict[str, str]) -> Any:
        return [{"spec": spec_of[label], "box": list(box)} for label, box in ex.boxes]

    def merge_annotations(self, old: Any, new: Any, dataset_meta: dict[str, Any]) -> Any | None:
        merged = list(old or [])
        merged.extend(a for a in new or [] if a not in merged)
        return merged

    # -- training -----------------------------------------------------------------------------------
    def train(
        self,
        examples: Sequence[StoredExample],
        specs: Sequence[tuple[str, str]],
        dataset_meta: dict[str, Any],
        *,
        deadline: Deadline,
        out_dir: Path,
        progress: Callable[[float], None],
        model_type: str = "",
        base_dir: Path | None = None,
        read_media: Callable[[str], bytes] | None = None,
        checkpoint_dir: Path | None = None,  # not used yet: a retry trains again from the start
    ) -> TrainOutcome:
        if read_media is None:
            raise FailedPrecondition("image training needs the media store")
        report = two_args(progress)
        spec_ids, names = [s for s, _ in specs], [n for _, n in specs]
        index = {s: i for i, s in enumerate(spec_ids)}
        train, valid, test = image_splits(examples)  # images without boxes are negatives, kept
        if sum(len(e.annotations or []) for e in train) < 2 or not test:
            raise FailedPrecondition(
                f"the dataset needs TRAIN images with bounding boxes and TEST images to train a model; it has "
                f"{len(train)} TRAIN, {len(valid)} VALIDATE and {len(test)} TEST images"
            )
        train, valid = hold_out(train, valid)

        def boxes(e: StoredExample) -> list[tuple[int, tuple[float, float, float, float]]]:
            return [(index[a["spec"]], tuple(a["box"])) for a in e.annotations or [] if a["spec"] in index]

        def load(keys: Sequence[str], size: int) -> np.ndarray:
            return decode_batch([read_media(k) for k in keys], size)

        def fit_progress(fraction: float, stage: str | None = None) -> None:
            report(2 + 85 * fraction, stage)  # 2..87%: the rest is evaluation and export

        name, params = detection_preset(model_type)
        init = load_base_state(base_dir, spec_ids, name) if base_dir else None
        detector = CenterNetDetector(**params, lr=1e-3 if init is not None else 2e-3).fit(
            load,
            [e.content for e in train],
            [boxes(e) for e in train],
            [e.content for e in valid],
            [boxes(e) for e in valid],
            len(spec_ids),
            deadline=deadline,
            init=init,
            progress=fit_progress,
        )
        raw = np.concatenate(
            [detector.raw(load([e.content for e in test[i : i + 32]], detector.size)) for i in range(0, len(test), 32)]
        )
        found = decode(raw, len(spec_ids), 0.0, 100)
        truth = [Box(i, k, b) for i, e in enumerate(test) for k, b in boxes(e)]
        preds = [Box(i, k, b, s) for i, dets in enumerate(found) for k, s, b in dets]
        evaluations = [
            Evaluation(
                "",
                "",
                len(test),
                "imageObjectDetectionEvaluationMetrics",
                detection_metrics(truth, preds, labels=range(len(spec_ids))),
            )
        ]
        for j, (sid, label) in enumerate(zip(spec_ids, names, strict=True)):
            m = detection_metrics([t for t in truth if t.label == j], [p for p in preds if p.label == j], labels=[j])
            evaluations.append(Evaluation(sid, label, len(test), "imageObjectDetectionEvaluationMetrics", m))
        out_dir.mkdir(parents=True, exist_ok=True)
        import torch

        torch.save(detector.state_dict(), out_dir / "model.pt")
        detector.export_onnx(str(out_dir / "model.onnx"))
        info = {
            "epochs": detector.epochs_,
            "best_epoch": detector.best_epoch_,
            "cache_seconds": round(detector.cache_seconds_, 1),
            "validation_score": round(detector.valid_loss_, 5),
            "score_calibration": [round(v, 4) for v in detector.calibration_] if detector.calibration_ else None,
        }
        meta = {
            "version": ARTIFACT_VERSION,
            "problem": self.name,
            "model_type": name,
            "params": detector.get_params(),
            "annotation_spec_ids": spec_ids,
            "display_names": names,
            "training": info,
        }
        (out_dir / "model.json").write_text(json.dumps(meta))
        served = self.load(out_dir)
        qps = node_qps(served["model"].run, load([e.content for e in test[:8]], detector.size))
        (out_dir / "model.json").write_text(json.dumps({**meta, "node_qps": qps}))
        report(99.0, "saving the model")
        return TrainOutcome(
            evaluations=evaluations,
            stop_reason=detector.stop_reason_,
            info={"model_type": name, "node_qps": qps, **info},
        )

    # -- serving ------------------------------------------------------------------------------------
    def load(self, model_dir: Path) -> Any:
        """The served model: the ONNX network in onnxruntime (raw grid; decoded per request)."""
        meta = json.loads((model_dir / "model.json").read_text())
        n = len(meta["annotation_spec_ids"])
        return {"model": OnnxScorer(str(model_dir / "model.onnx"), meta["params"]["size"], n + 4), **meta}

    def load_weights(self, model_dir: Path) -> CenterNetDetector:
        import torch

        meta = json.loads((model_dir / "model.json").read_text())
        state = torch.load(model_dir / "model.pt", weights_only=True)
        return CenterNetDetector.from_state(state, meta["params"], len(meta["annotation_spec_ids"]))

    def check_input(self, data: bytes, where: str) -> None:
        check_image(data, where, FORMATS)

    def predict(self, loaded: Any, images: Sequence[bytes], params: dict[str, str]) -> list[list[dict[str, Any]]]:
        threshold = score_threshold({"score_threshold": params.get("score_threshold") or "0.5"})
        max_boxes = int_param(params, "max_bounding_box_count", 100, 1, 500)
        size = loaded["params"]["size"]
        raw = loaded["model"].run(decode_batch(list(images), size))
        out = []
        for dets in decode(raw, len(loaded["annotation_spec_ids"]), threshold, max_boxes):
            out.append(
                [
                    {
                        "annotationSpecId": loaded["annotation_spec_ids"][k],
                        "displayName": loaded["display_names"][k],
                        "imageObjectDetection": {
                            "boundingBox": {"normalizedVertices": [{"x": b[0], "y": b[1]}, {"x": b[2], "y": b[3]}]},
                            "score": s,
                        },
                    }
                    for k, s, b in dets
                ]
            )
        return out

    def predict_one(self, loaded: Any, data: bytes, params: dict[str, str]) -> dict[str, Any]:
        max_boxes = int_param(params, "max_bounding_box_count", 100, 1, 500)
        return {
            "payload": self.predict(loaded, [data], params)[0],
            "metadata": {"max_bounding_box_count": str(max_boxes)},
        }
