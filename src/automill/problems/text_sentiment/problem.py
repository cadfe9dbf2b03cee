"""Text sentiment as a problem plug-in.

Rows are ``ML_USE,(TEXT_SNIPPET|GCS_FILE_PATH),SENTIMENT``; each sentiment value is an annotation
spec whose display name is the value ("0".."sentiment_max"). Training is ordinal: the classes are
ordered, and the prediction is the value that minimises the expected absolute error when the model
is unsure (the median of the predicted distribution), else the most likely value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from google.cloud import automl_v1

from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.metrics.sentiment import sentiment_metrics
from automill.problems.base import Evaluation, metrics_json
from automill.problems.rows import LabelledExample, ParseResult, parse_import_csv
from automill.problems.texts import TextLabels

MAX_TEXT_CHARS = 128 * 1024


class TextSentiment(TextLabels):
    name = "text_sentiment"
    prefix = "TST"
    dataset_key = "textSentimentDatasetMetadata"
    model_key = "textSentimentModelMetadata"
    predict_params: tuple[str, ...] = ()  # predict reads no params (problems/params.py)

    def validate_dataset_metadata(self, meta: dict[str, Any]) -> dict[str, Any]:
        try:
            value = int(meta.get("sentimentMax", 0))
        except (TypeError, ValueError):
            value = 0
        if not 1 <= value <= 10:
            raise InvalidArgument(
                "textSentimentDatasetMetadata.sentimentMax must be an integer in 1..10",
                field="dataset.text_sentiment_dataset_metadata.sentiment_max",
            )
        return {"sentimentMax": value}

    def model_metadata(self, dataset_meta: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]:
        return {}

    def kind(self, dataset_meta: dict[str, Any]) -> str:
        return "ordinal"

    def parse_import(
        self,
        data: str,
        *,
        uri: str,
        read_text: Callable[[str], str],
        dataset_meta: dict[str, Any],
        read_bytes: Callable[[str], bytes] | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> ParseResult[LabelledExample]:
        top = int(dataset_meta["sentimentMax"])

        def check(label: str) -> str | None:
            if not label.isdigit() or not 0 <= int(label) <= top:
                return f"sentiment {label!r} is invalid: an integer in 0..{top} (the dataset's sentiment_max)"
            return None

        result = parse_import_csv(
            data,
            uri=uri,
            read_text=read_text,
            multilabel=False,
            max_text_chars=MAX_TEXT_CHARS,
            check_label=check,
            on_rows=on_rows,
        )
        for ex in result.examples:
            ex.labels = tuple(str(int(x)) for x in ex.labels)  # "03" -> "3"
        return result

    def order_specs(self, specs: Sequence[tuple[str, str]], dataset_meta: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted(specs, key=lambda s: int(s[1]))

    def check_trainable(
        self, Y_train: np.ndarray, specs: Sequence[tuple[str, str]], dataset_meta: dict[str, Any]
    ) -> None:
        top = int(dataset_meta["sentimentMax"])
        present = {int(n) for (_, n), used in zip(specs, Y_train.sum(axis=0) > 0, strict=True) if used}
        missing = sorted(set(range(top + 1)) - present)
        if missing:
            raise FailedPrecondition(
                f"every sentiment value 0..{top} must appear in the training data; missing: "
                f"{', '.join(map(str, missing))}"
            )

    def evaluate(
        self,
        Y_test: np.ndarray,
        scores: np.ndarray,
        spec_ids: list[str],
        names: list[str],
        dataset_meta: dict[str, Any],
    ) -> list[Evaluation]:
        top = int(dataset_meta["sentimentMax"])
        y_true = Y_test.argmax(axis=1)
        y_pred = decide(scores)
        cls = automl_v1.TextSentimentEvaluationMetrics
        key = "textSentimentEvaluationMetrics"

        def metrics(label: int | None = None) -> dict[str, Any]:
            m = sentiment_metrics(
                y_true, y_pred, sentiment_max=top, annotation_spec_ids=spec_ids, display_names=names, label=label
            )
            return metrics_json(cls, m)

        out = [Evaluation("", "", len(y_true), key, metrics())]
        for j, (sid, name) in enumerate(zip(spec_ids, names, strict=True)):
            out.append(Evaluation(sid, name, int((y_true == j).sum()), key, metrics(j)))
        return out

    def predict(self, loaded: Any, texts: Sequence[str], params: dict[str, str]) -> list[list[dict[str, Any]]]:
        scores = loaded["model"].predict_proba(list(texts))
        out = []
        for k in decide(scores):
            out.append(
                [
                    {
                        "annotationSpecId": loaded["annotation_spec_ids"][k],
                        "displayName": loaded["display_names"][k],
                        "textSentiment": {"sentiment": int(k)},
                    }
                ]
            )
        return out

    def predict_one(self, loaded: Any, text: str, params: dict[str, str]) -> dict[str, Any]:
        scores = loaded["model"].predict_proba([text])[0]
        top = len(scores) - 1
        expected = float((scores * np.arange(len(scores))).sum())
        return {
            "payload": self.predict(loaded, [text], params)[0],
            "metadata": {"sentiment_score": f"{2 * expected / top - 1:.4f}"},
        }


def decide(scores: np.ndarray) -> np.ndarray:
    """Ordinal decision: the most likely value, unless it is far from the distribution's median
    (a bimodal or flat prediction), where the median keeps the absolute error small."""
    scores = np.asarray(scores)
    argmax = scores.argmax(axis=1)
    median = (np.cumsum(scores, axis=1) >= 0.5).argmax(axis=1)
    return np.where(np.abs(argmax - median) >= 2, median, argmax)
