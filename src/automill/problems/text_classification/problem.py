"""Text classification as a problem plug-in: metadata, import rows, training, predictions.

Text sentiment (problems/text_sentiment) reuses this class: its examples are single-label rows
whose label is the sentiment value, trained as an ordinal problem.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from google.cloud import automl_v1

from automill.core.deadline import Deadline
from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.engine.model_types import text_preset
from automill.engine.progress import two_args
from automill.engine.text import TextFitResult, fit_text
from automill.metrics.classification import classification_metrics
from automill.problems.base import Evaluation, StoredExample, TrainOutcome
from automill.problems.params import score_threshold
from automill.problems.text_classification.rows import ParseResult, assign_split, parse_import_csv

MAX_PREDICT_CHARS = 60_000
ARTIFACT_VERSION = 2


def to_json(cls: Any, msg: Any) -> dict[str, Any]:
    return json.loads(cls.to_json(msg, use_integers_for_enums=False))


class TextClassification:
    name = "text_classification"
    prefix = "TCN"
    dataset_key = "textClassificationDatasetMetadata"
    model_key = "textClassificationModelMetadata"
    predict_params: tuple[str, ...] = ("score_threshold",)  # rules: problems/params.py

    # -- metadata -----------------------------------------------------------------------------------
    def validate_dataset_metadata(self, meta: dict[str, Any]) -> dict[str, Any]:
        ctype = meta.get("classificationType", "CLASSIFICATION_TYPE_UNSPECIFIED")
        if ctype not in ("MULTICLASS", "MULTILABEL"):
            raise InvalidArgument(
                "textClassificationDatasetMetadata.classificationType must be MULTICLASS or MULTILABEL",
                field="dataset.text_classification_dataset_metadata.classification_type",
            )
        return {"classificationType": ctype}

    def model_metadata(self, dataset_meta: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]:
        return {"classificationType": dataset_meta["classificationType"]}

    def kind(self, dataset_meta: dict[str, Any]) -> str:
        return "multilabel" if dataset_meta.get("classificationType") == "MULTILABEL" else "multiclass"

    def parse_import(
        self,
        data: str,
        *,
        uri: str,
        read_text: Callable[[str], str],
        dataset_meta: dict[str, Any],
        read_bytes: Callable[[str], bytes] | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> ParseResult:
        return parse_import_csv(
            data, uri=uri, read_text=read_text, multilabel=self.kind(dataset_meta) == "multilabel", on_rows=on_rows
        )

    # -- storing imported examples ------------------------------------------------------------------
    def labels_of(self, ex: Any) -> list[str]:
        return list(ex.labels)

    def annotations_of(self, ex: Any, spec_of: dict[str, str]) -> Any:
        return sorted(spec_of[label] for label in ex.labels)

    def merge_annotations(self, old: Any, new: Any, dataset_meta: dict[str, Any]) -> Any | None:
        """Labels of a duplicate text are merged; None when a single-label text would get two."""
        merged = sorted(set(old or []) | set(new or []))
        return None if self.kind(dataset_meta) != "multilabel" and len(merged) > 1 else merged

    def order_specs(self, specs: Sequence[tuple[str, str]], dataset_meta: dict[str, Any]) -> list[tuple[str, str]]:
        return list(specs)

    def check_trainable(
        self, Y_train: np.ndarray, specs: Sequence[tuple[str, str]], dataset_meta: dict[str, Any]
    ) -> None:
        used = int((Y_train.sum(axis=0) > 0).sum())
        if used < (1 if self.kind(dataset_meta) == "multilabel" else 2):
            raise FailedPrecondition("the training examples must use at least two labels")

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
    ) -> TrainOutcome:
        progress = two_args(progress)
        kind = self.kind(dataset_meta)
        specs = self.order_specs(specs, dataset_meta)
        spec_ids = [s for s, _ in specs]
        names = [n for _, n in specs]
        index = {s: i for i, s in enumerate(spec_ids)}
        parts: dict[str, list[StoredExample]] = {"TRAIN": [], "VALIDATE": [], "TEST": []}
        for e in examples:
            if e.annotations:
                parts[assign_split(e.content, e.ml_use)].append(e)
        train, valid, test = parts["TRAIN"], parts["VALIDATE"], parts["TEST"]
        if len(train) < 2 or not test:
            raise FailedPrecondition(
                f"the dataset needs labelled TRAIN and TEST examples to train a model; it has {len(train)} TRAIN, "
                f"{len(valid)} VALIDATE and {len(test)} TEST (UNASSIGNED rows are split 80/20 into TRAIN/TEST)"
            )

        def indicator(rows: list[StoredExample]) -> np.ndarray:
            return label_matrix(rows, index)

        Y_train = indicator(train)
        self.check_trainable(Y_train, specs, dataset_meta)
        base = self._load_base(base_dir, spec_ids, model_type) if base_dir else None
        result = fit_text(
            kind,
            [e.content for e in train],
            Y_train,
            [e.content for e in valid] or None,
            indicator(valid) if valid else None,
            deadline=deadline,
            model_type=model_type,
            progress=progress,
            base=base,
        )
        Y_test = indicator(test)
        progress(91, f"evaluating the model on {len(test):,} TEST texts")
        scores = result.model.predict_proba([e.content for e in test])
        evaluations = self.evaluate(Y_test, scores, spec_ids, names, dataset_meta, result)
        progress(95, "writing the model files")
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / "model.pkl", "wb") as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
        (out_dir / "model.json").write_text(
            json.dumps(
                {
                    "version": ARTIFACT_VERSION,
                    "problem": self.name,
                    "kind": kind,
                    "model_type": result.model_type,
                    "annotation_spec_ids": spec_ids,
                    "display_names": names,
                    "members": result.model.describe(),
                    "thresholds": None if result.model.thresholds is None else result.model.thresholds.tolist(),
                    "trials": result.trials,
                },
                default=str,
            )
        )
        progress(99.0)
        return TrainOutcome(
            evaluations=evaluations,
            stop_reason=result.stop_reason,
            info={"model_type": result.model_type, "members": result.model.describe()},
        )

    def _load_base(self, base_dir: Path, spec_ids: list[str], model_type: str) -> TextFitResult:
        meta = json.loads((base_dir / "model.json").read_text())
        if meta.get("annotation_spec_ids") != spec_ids:
            raise FailedPrecondition(
                "the base model's labels differ from the dataset's current labels: "
                "train a new model without baseModelId"
            )
        if meta.get("model_type") != text_preset(model_type)[0]:
            raise FailedPrecondition(
                f"the base model has model type {meta.get('model_type')!r}, not {text_preset(model_type)[0]!r}"
            )
        with open(base_dir / "model.pkl", "rb") as fh:
            return pickle.load(fh)

    def evaluate(
        self,
        Y_test: np.ndarray,
        scores: np.ndarray,
        spec_ids: list[str],
        names: list[str],
        dataset_meta: dict[str, Any],
        result: TextFitResult,
    ) -> list[Evaluation]:
        kw = {
            "multilabel": self.kind(dataset_meta) == "multilabel",
            "annotation_spec_ids": spec_ids,
            "display_names": names,
        }
        cls = automl_v1.ClassificationEvaluationMetrics
        out = [
            Evaluation(
                "",
                "",
                len(Y_test),
                "classificationEvaluationMetrics",
                to_json(cls, classification_metrics(Y_test, scores, **kw)),
            )
        ]
        for j, (sid, name) in enumerate(zip(spec_ids, names)):
            m = classification_metrics(Y_test, scores, label_index=j, **kw)
            out.append(
                Evaluation(sid, name, int(Y_test[:, j].sum()), "classificationEvaluationMetrics", to_json(cls, m))
            )
        return out

    # -- serving ------------------------------------------------------------------------------------
    def load(self, model_dir: Path) -> Any:
        meta = json.loads((model_dir / "model.json").read_text())
        with open(model_dir / "model.pkl", "rb") as fh:
            result = pickle.load(fh)
        return {"model": result.model, **meta}

    def predict(self, loaded: Any, texts: Sequence[str], params: dict[str, str]) -> list[list[dict[str, Any]]]:
        """All labels by score, those under ``score_threshold`` left out. MULTILABEL models without a
        ``score_threshold`` use the per-label thresholds tuned for F1 on the validation split."""
        scores = loaded["model"].predict_proba(list(texts))
        k = scores.shape[1]
        if "score_threshold" not in params and loaded.get("thresholds") is not None:
            thresholds = np.asarray(loaded["thresholds"])
        else:
            thresholds = np.full(k, score_threshold(params))
        return classification_payloads(loaded, scores, thresholds)

    def predict_one(self, loaded: Any, text: str, params: dict[str, str]) -> dict[str, Any]:
        """The PredictResponse for one text (payload, and metadata where the type has some)."""
        return {"payload": self.predict(loaded, [text], params)[0]}


def classification_payloads(
    loaded: dict[str, Any], scores: np.ndarray, thresholds: np.ndarray
) -> list[list[dict[str, Any]]]:
    """Per input, the labels scoring at least their threshold, best first, as AnnotationPayloads."""
    out = []
    for row in scores:
        order = np.argsort(-row, kind="stable")
        out.append(
            [
                {
                    "annotationSpecId": loaded["annotation_spec_ids"][j],
                    "displayName": loaded["display_names"][j],
                    "classification": {"score": float(row[j])},
                }
                for j in order
                if row[j] >= thresholds[j]
            ]
        )
    return out


def label_matrix(rows: Sequence[StoredExample], index: dict[str, int]) -> np.ndarray:
    """0/1 matrix: row i has a 1 in column index[spec] for each annotation spec of example i."""
    Y = np.zeros((len(rows), len(index)))
    for i, e in enumerate(rows):
        for s in e.annotations:
            if s in index:
                Y[i, index[s]] = 1
    return Y
