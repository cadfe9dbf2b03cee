"""Text classification as a problem plug-in: metadata, import rows, training, predictions.

The rows, training and artifacts are those of every label problem on text (problems/texts.py);
labels, evaluation and payloads those of classification (problems/classification.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from automill.problems.classification import classification_payloads
from automill.problems.params import score_threshold
from automill.problems.texts import TextLabels


class TextClassification(TextLabels):
    name = "text_classification"
    prefix = "TCN"
    dataset_key = "textClassificationDatasetMetadata"
    model_key = "textClassificationModelMetadata"

    def model_metadata(self, dataset_meta: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]:
        return {"classificationType": dataset_meta["classificationType"]}

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
