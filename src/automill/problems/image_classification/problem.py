"""Image classification (Vision Edge) as a problem plug-in: import, train, evaluate, predict, export.

Examples are images in the media store (``content`` is the media key). Labels, annotations,
evaluation metrics and payloads are those of classification (problems/classification.py); the
splits, hold-out, base weights and serving speed those of image problems (problems/images.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automill.core.deadline import Deadline
from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.engine.image import ImageFitResult, fit_image, image_preset
from automill.engine.progress import two_args
from automill.learners.efficientnet import EfficientNetClassifier, OnnxScorer, export_onnx
from automill.problems.base import StoredExample, TrainOutcome
from automill.problems.classification import Classification, classification_payloads, label_matrix
from automill.problems.image_classification.rows import parse_image_csv
from automill.problems.images import check_image, decode_batch, hold_out, image_splits, load_base_state, node_qps
from automill.problems.params import score_threshold
from automill.problems.rows import LabelledExample, ParseResult

ARTIFACT_VERSION = 1


class ImageClassification(Classification):
    name = "image_classification"
    prefix = "ICN"
    dataset_key = "imageClassificationDatasetMetadata"
    model_key = "imageClassificationModelMetadata"
    uses_media = True

    def model_metadata(self, dataset_meta: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]:
        return {"modelType": image_preset(str(request_meta.get("modelType", "") or ""))[0]}

    def parse_import(
        self,
        data: str,
        *,
        uri: str,
        read_text: Callable[[str], str],
        dataset_meta: dict[str, Any],
        read_bytes: Callable[..., bytes] | None = None,
        put_media: Callable[[bytes, str], str] | None = None,
    ) -> ParseResult[LabelledExample]:
        if read_bytes is None or put_media is None:
            raise InvalidArgument("image import needs storage for the images")
        return parse_image_csv(
            data,
            uri=uri,
            read_bytes=read_bytes,
            put_media=put_media,
            multilabel=self.kind(dataset_meta) == "multilabel",
        )

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
        checkpoint_dir: Path | None = None,
    ) -> TrainOutcome:
        if read_media is None:
            raise FailedPrecondition("image training needs the media store")
        report = two_args(progress)
        kind = self.kind(dataset_meta)
        spec_ids, names = [s for s, _ in specs], [n for _, n in specs]
        index = {s: i for i, s in enumerate(spec_ids)}
        train, valid, test = image_splits([e for e in examples if e.annotations])
        if len(train) < 2 or not test:
            raise FailedPrecondition(
                f"the dataset needs labelled TRAIN and TEST images to train a model; it has {len(train)} TRAIN, "
                f"{len(valid)} VALIDATE and {len(test)} TEST (UNASSIGNED images are split 80/10/10)"
            )
        train, valid = hold_out(train, valid)

        def load(keys: Sequence[str], size: int) -> np.ndarray:
            return decode_batch([read_media(k) for k in keys], size)

        def fit_progress(fraction: float, stage: str | None = None) -> None:
            report(2 + 85 * fraction, stage)  # 2..87%: the rest is evaluation and export

        Y_train = label_matrix(train, index)
        self.check_trainable(Y_train, specs, dataset_meta)
        name, _ = image_preset(model_type)
        base_state = load_base_state(base_dir, spec_ids, name) if base_dir else None
        result = fit_image(
            kind,
            load,
            [e.content for e in train],
            Y_train,
            [e.content for e in valid],
            label_matrix(valid, index),
            deadline=deadline,
            model_type=name,
            base_state=base_state,
            progress=fit_progress,
            checkpoint_dir=checkpoint_dir,
        )
        model = result.model
        Y_test = label_matrix(test, index)
        scores = np.concatenate(
            [
                model.predict_proba(load([e.content for e in test[i : i + 64]], model.size))
                for i in range(0, len(test), 64)
            ]
        )
        evaluations = self.evaluate(Y_test, scores, spec_ids, names, dataset_meta)
        self.save(out_dir, model, result, kind, spec_ids, names)
        served = self.load(out_dir)["model"]
        qps = node_qps(served.run, load([e.content for e in test[:16]], model.size))
        meta_path = out_dir / "model.json"
        meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "node_qps": qps}))
        report(99.0, "saving the model")
        return TrainOutcome(
            evaluations=evaluations,
            stop_reason=result.stop_reason,
            info={"model_type": name, "node_qps": qps, **result.info},
        )

    def save(
        self,
        out_dir: Path,
        model: EfficientNetClassifier,
        result: ImageFitResult,
        kind: str,
        spec_ids: list[str],
        names: list[str],
    ) -> None:
        """``model.pt`` (weights: export, resumable training) and ``model.onnx`` (serving)."""
        import torch

        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out_dir / "model.pt")
        export_onnx(model, str(out_dir / "model.onnx"))
        (out_dir / "model.json").write_text(
            json.dumps(
                {
                    "version": ARTIFACT_VERSION,
                    "problem": self.name,
                    "kind": kind,
                    "model_type": result.model_type,
                    "params": model.get_params(),
                    "annotation_spec_ids": spec_ids,
                    "display_names": names,
                    "training": result.info,
                }
            )
        )

    # -- serving ------------------------------------------------------------------------------------
    def load(self, model_dir: Path) -> Any:
        """The served model: the ONNX scorer in onnxruntime."""
        meta = json.loads((model_dir / "model.json").read_text())
        model = OnnxScorer(str(model_dir / "model.onnx"), meta["params"]["size"], len(meta["annotation_spec_ids"]))
        return {"model": model, "thresholds": None, **meta}

    def load_weights(self, model_dir: Path) -> EfficientNetClassifier:
        """The trained network in torch (for edge export)."""
        import torch

        meta = json.loads((model_dir / "model.json").read_text())
        state = torch.load(model_dir / "model.pt", weights_only=True)
        return EfficientNetClassifier.from_state(
            state, meta["params"], len(meta["annotation_spec_ids"]), meta["kind"] == "multilabel"
        )

    def check_input(self, data: bytes, where: str) -> None:
        check_image(data, where)

    def predict(self, loaded: Any, images: Sequence[bytes], params: dict[str, str]) -> list[list[dict[str, Any]]]:
        """Labels scoring at least ``score_threshold`` (default 0.5), best first."""
        model: OnnxScorer = loaded["model"]
        threshold = score_threshold({"score_threshold": params.get("score_threshold") or "0.5"})
        scores = model.predict_proba(decode_batch(list(images), model.size))
        return classification_payloads(loaded, scores, np.full(scores.shape[1], threshold))
