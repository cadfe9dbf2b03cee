"""Text classification as a problem plug-in: metadata, import rows, training, predictions."""

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
from automill.engine.classification import fit_text_classifier
from automill.metrics.classification import classification_metrics
from automill.problems.base import Evaluation, StoredExample, TrainOutcome
from automill.problems.text_classification.rows import ParseResult, assign_split, parse_import_csv

MAX_PREDICT_CHARS = 60_000


def _metrics_json(msg: Any) -> dict[str, Any]:
    return json.loads(automl_v1.ClassificationEvaluationMetrics.to_json(msg, use_integers_for_enums=False))


class TextClassification:
    name = "text_classification"
    prefix = "TCN"
    dataset_key = "textClassificationDatasetMetadata"
    model_key = "textClassificationModelMetadata"

    def validate_dataset_metadata(self, meta: dict[str, Any]) -> dict[str, Any]:
        ctype = meta.get("classificationType", "CLASSIFICATION_TYPE_UNSPECIFIED")
        if ctype not in ("MULTICLASS", "MULTILABEL"):
            raise InvalidArgument(
                "textClassificationDatasetMetadata.classificationType must be MULTICLASS or MULTILABEL",
                field="dataset.text_classification_dataset_metadata.classification_type")
        return {"classificationType": ctype}

    def model_metadata(self, dataset_meta: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]:
        return {"classificationType": dataset_meta["classificationType"]}

    def parse_import(self, data: str, *, uri: str, read_text: Callable[[str], str],
                     dataset_meta: dict[str, Any]) -> ParseResult:
        return parse_import_csv(data, uri=uri, read_text=read_text,
                                multilabel=dataset_meta["classificationType"] == "MULTILABEL")

    # -- training ---------------------------------------------------------------------------------
    def train(self, examples: Sequence[StoredExample], specs: Sequence[tuple[str, str]], dataset_meta: dict[str, Any],
              *, deadline: Deadline, out_dir: Path, progress: Callable[[float], None]) -> TrainOutcome:
        multilabel = dataset_meta["classificationType"] == "MULTILABEL"
        spec_ids = [s for s, _ in specs]
        names = [n for _, n in specs]
        index = {s: i for i, s in enumerate(spec_ids)}
        labelled = [e for e in examples if e.annotations]
        train, test = [], []
        for e in labelled:
            split = assign_split(e.content, e.ml_use)
            (test if split == "TEST" else train).append(e)
        if len(train) < 2 or not test:
            raise FailedPrecondition(
                f"the dataset needs labelled TRAIN and TEST examples to train a model; it has {len(train)} for "
                f"training (TRAIN, VALIDATE and unassigned) and {len(test)} for testing")

        def indicator(rows: list[StoredExample]) -> np.ndarray:
            Y = np.zeros((len(rows), len(spec_ids)))
            for i, e in enumerate(rows):
                for s in e.annotations:
                    if s in index:
                        Y[i, index[s]] = 1
            return Y

        Y_train = indicator(train)
        used = Y_train.sum(axis=0) > 0
        if (not multilabel and used.sum() < 2) or used.sum() < 1:
            raise FailedPrecondition("the training examples must use at least two labels")
        result = fit_text_classifier([e.content for e in train], Y_train, multilabel=multilabel,
                                     deadline=deadline, progress=progress)
        Y_test = indicator(test)
        scores = result.model.predict_proba([e.content for e in test])
        kw = dict(multilabel=multilabel, annotation_spec_ids=spec_ids, display_names=names)
        evaluations = [Evaluation("", "", len(test), "classificationEvaluationMetrics",
                                  _metrics_json(classification_metrics(Y_test, scores, **kw)))]
        for j, (sid, name) in enumerate(specs):
            count = int(Y_test[:, j].sum())
            m = classification_metrics(Y_test, scores, label_index=j, **kw)
            evaluations.append(Evaluation(sid, name, count, "classificationEvaluationMetrics", _metrics_json(m)))
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / "model.pkl", "wb") as fh:
            pickle.dump(result.model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        (out_dir / "model.json").write_text(json.dumps({
            "problem": self.name, "learner": "tfidf_linear", "params": result.params, "multilabel": multilabel,
            "annotation_spec_ids": spec_ids, "display_names": names, "trials": result.trials}, default=list))
        progress(99.0)
        return TrainOutcome(evaluations=evaluations, stop_reason=result.stop_reason,
                            info={"params": result.params, "trials": result.trials})

    # -- serving ----------------------------------------------------------------------------------
    def load(self, model_dir: Path) -> Any:
        meta = json.loads((model_dir / "model.json").read_text())
        with open(model_dir / "model.pkl", "rb") as fh:
            model = pickle.load(fh)  # noqa: S301 - our own artefact
        return {"model": model, **meta}

    def predict(self, loaded: Any, texts: Sequence[str], params: dict[str, str]) -> list[list[dict[str, Any]]]:
        threshold = _threshold(params)
        scores = loaded["model"].predict_proba(list(texts))
        out = []
        for row in scores:
            order = np.argsort(-row, kind="stable")
            out.append([
                {"annotationSpecId": loaded["annotation_spec_ids"][j], "displayName": loaded["display_names"][j],
                 "classification": {"score": float(row[j])}}
                for j in order if row[j] >= threshold
            ])
        return out


def _threshold(params: dict[str, str]) -> float:
    raw = params.get("score_threshold")
    if raw in (None, ""):
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgument(f"params.score_threshold must be a number in 0..1, got {raw!r}",
                              field="params.score_threshold") from None
    if not 0.0 <= value <= 1.0:
        raise InvalidArgument(f"params.score_threshold must be in 0..1, got {value}", field="params.score_threshold")
    return value
