"""What label-based problems share: text and image classification, and sentiment.

An example's annotations are the sorted annotation spec ids of its labels; a model scores every
label; the evaluation is the classification metrics overall and per label; a prediction lists the
labels scoring at least their threshold, best first. A type subclasses :class:`Classification`
and adds its rows, training, artifacts and dataset/model metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from google.cloud import automl_v1

from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.metrics.classification import classification_metrics
from automill.problems.base import Evaluation, StoredExample, metrics_json


class Classification:
    """The label-based part of a problem plug-in (see problems/base.py for the whole contract)."""

    name: str
    prefix: str
    dataset_key: str
    model_key: str
    predict_params: tuple[str, ...] = ("score_threshold",)  # rules: problems/params.py

    # -- metadata -----------------------------------------------------------------------------------
    def validate_dataset_metadata(self, meta: dict[str, Any]) -> dict[str, Any]:
        ctype = meta.get("classificationType", "CLASSIFICATION_TYPE_UNSPECIFIED")
        if ctype not in ("MULTICLASS", "MULTILABEL"):
            field = re.sub(r"(?<!^)(?=[A-Z])", "_", self.dataset_key).lower()
            raise InvalidArgument(
                f"{self.dataset_key}.classificationType must be MULTICLASS or MULTILABEL",
                field=f"dataset.{field}.classification_type",
            )
        return {"classificationType": ctype}

    def kind(self, dataset_meta: dict[str, Any]) -> str:
        return "multilabel" if dataset_meta.get("classificationType") == "MULTILABEL" else "multiclass"

    # -- storing imported examples ------------------------------------------------------------------
    def labels_of(self, ex: Any) -> list[str]:
        return list(ex.labels)

    def annotations_of(self, ex: Any, spec_of: dict[str, str]) -> Any:
        return sorted(spec_of[label] for label in ex.labels)

    def merge_annotations(self, old: Any, new: Any, dataset_meta: dict[str, Any]) -> Any | None:
        """Labels of a duplicate example are merged; None when a single-label example would get two."""
        merged = sorted(set(old or []) | set(new or []))
        return None if self.kind(dataset_meta) != "multilabel" and len(merged) > 1 else merged

    # -- training -----------------------------------------------------------------------------------
    def order_specs(self, specs: Sequence[tuple[str, str]], dataset_meta: dict[str, Any]) -> list[tuple[str, str]]:
        return list(specs)

    def check_trainable(
        self, Y_train: np.ndarray, specs: Sequence[tuple[str, str]], dataset_meta: dict[str, Any]
    ) -> None:
        used = int((Y_train.sum(axis=0) > 0).sum())
        if used < (1 if self.kind(dataset_meta) == "multilabel" else 2):
            raise FailedPrecondition("the training examples must use at least two labels")

    def evaluate(
        self,
        Y_test: np.ndarray,
        scores: np.ndarray,
        spec_ids: list[str],
        names: list[str],
        dataset_meta: dict[str, Any],
    ) -> list[Evaluation]:
        """The overall evaluation, then one per label."""
        multilabel = self.kind(dataset_meta) == "multilabel"
        cls = automl_v1.ClassificationEvaluationMetrics
        key = "classificationEvaluationMetrics"

        def metrics(label_index: int | None = None) -> dict[str, Any]:
            m = classification_metrics(
                Y_test,
                scores,
                multilabel=multilabel,
                annotation_spec_ids=spec_ids,
                display_names=names,
                label_index=label_index,
            )
            return metrics_json(cls, m)

        out = [Evaluation("", "", len(Y_test), key, metrics())]
        for j, (sid, name) in enumerate(zip(spec_ids, names, strict=True)):
            out.append(Evaluation(sid, name, int(Y_test[:, j].sum()), key, metrics(j)))
        return out

    # -- serving ------------------------------------------------------------------------------------
    def predict(self, loaded: Any, inputs: Sequence[Any], params: dict[str, str]) -> list[list[dict[str, Any]]]:
        raise NotImplementedError  # each type scores its own inputs

    def predict_one(self, loaded: Any, data: Any, params: dict[str, str]) -> dict[str, Any]:
        """The PredictResponse for one input (payload, and metadata where the type has some)."""
        return {"payload": self.predict(loaded, [data], params)[0]}


def label_matrix(rows: Sequence[StoredExample], index: dict[str, int]) -> np.ndarray:
    """0/1 matrix: row i has a 1 in column index[spec] for each annotation spec of example i."""
    Y = np.zeros((len(rows), len(index)))
    for i, e in enumerate(rows):
        for s in e.annotations:
            if s in index:
                Y[i, index[s]] = 1
    return Y


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
