"""Entity extraction as a problem plug-in: JSONL import, NER models (engine/extraction), span metrics, predictions.

Stored annotations are ``[{"spec": annotation_spec_id, "start": S, "end": E}]`` (character
offsets, end exclusive) on the document text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from google.cloud import automl_v1

from automill.core.deadline import Deadline
from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.engine.extraction import fit_extraction
from automill.engine.model_types import text_preset
from automill.metrics.extraction import extraction_metrics
from automill.problems.artifacts import read_pickle, write_pickle
from automill.problems.base import Evaluation, StoredExample, TrainOutcome, metrics_json
from automill.problems.params import score_threshold
from automill.problems.text_extraction.pdf import extract_document
from automill.problems.text_extraction.rows import (
    ExtractionExample,
    ExtractionParseResult,
    parse_index_csv,
    split_extraction,
)

MAX_PREDICT_CHARS = 10_000  # v1 entity extraction limit (API.md 3d)
DEFAULT_SCORE_THRESHOLD = 0.5


class TextExtraction:
    name = "text_extraction"
    prefix = "TEN"
    dataset_key = "textExtractionDatasetMetadata"
    model_key = "textExtractionModelMetadata"
    predict_params: tuple[str, ...] = ("score_threshold",)  # rules: problems/params.py
    max_predict_chars = MAX_PREDICT_CHARS

    def validate_dataset_metadata(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {}

    def model_metadata(self, dataset_meta: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]:
        return {}

    def parse_import(
        self,
        data: str,
        *,
        uri: str,
        read_text: Callable[[str], str],
        dataset_meta: dict[str, Any],
        read_bytes: Callable[[str], bytes] | None = None,
    ) -> ExtractionParseResult:
        read_document = (
            (lambda u: extract_document(read_bytes(u), u)["documentText"]["content"]) if read_bytes else None
        )
        return parse_index_csv(data, uri=uri, read_text=read_text, read_document=read_document)

    # -- storing imported examples ------------------------------------------------------------------
    def labels_of(self, ex: ExtractionExample) -> list[str]:
        return sorted({s.label for s in ex.spans})

    def annotations_of(self, ex: ExtractionExample, spec_of: dict[str, str]) -> Any:
        return [{"spec": spec_of[s.label], "start": s.start, "end": s.end} for s in ex.spans]

    def merge_annotations(self, old: Any, new: Any, dataset_meta: dict[str, Any]) -> Any | None:
        """The same document imported again must carry the same entities (None = conflict)."""

        def spans(anns: Any) -> list[tuple[str, int, int]]:
            return sorted((a["spec"], a["start"], a["end"]) for a in anns or [])

        return old if spans(old) == spans(new) else None

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
        checkpoint_dir: Path | None = None,  # not used yet: a retry trains again from the start
    ) -> TrainOutcome:
        name_of = dict(specs)
        parts: dict[str, list[tuple[str, list[tuple[int, int, str]]]]] = {"TRAIN": [], "VALIDATE": [], "TEST": []}
        for e in examples:
            spans = [(a["start"], a["end"], name_of[a["spec"]]) for a in e.annotations or [] if a["spec"] in name_of]
            parts[split_extraction(e.content, e.ml_use)].append((e.content, spans))
        train, valid, test = parts["TRAIN"], parts["VALIDATE"], parts["TEST"]
        if not any(s for _, s in train) or not test:
            raise FailedPrecondition(
                f"the dataset needs annotated TRAIN documents and TEST documents; it has "
                f"{len(train)} TRAIN, {len(valid)} VALIDATE and {len(test)} TEST"
            )
        base = self._load_base(base_dir, [s for s, _ in specs], model_type) if base_dir is not None else None
        progress(2)
        result = fit_extraction(
            [t for t, _ in train],
            [s for _, s in train],
            [t for t, _ in valid],
            [s for _, s in valid],
            deadline=deadline,
            model_type=model_type,
            progress=progress,
            base=base,
        )
        learner = result.learner
        progress(85)
        predicted = learner.predict([t for t, _ in test], min_score=0.05)
        gold = [s for _, s in test]
        cls = automl_v1.TextExtractionEvaluationMetrics
        evaluations = [
            Evaluation(
                "",
                "",
                len(test),
                "textExtractionEvaluationMetrics",
                metrics_json(cls, extraction_metrics(gold, predicted)),
            )
        ]
        for sid, label in specs:
            count = sum(1 for doc in gold for s in doc if s[2] == label)
            evaluations.append(
                Evaluation(
                    sid,
                    label,
                    count,
                    "textExtractionEvaluationMetrics",
                    metrics_json(cls, extraction_metrics(gold, predicted, label=label)),
                )
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        write_pickle(out_dir / "model.pkl", learner)
        (out_dir / "model.json").write_text(
            json.dumps(
                {
                    "problem": self.name,
                    "learner": learner.family,
                    "model_type": result.model_type,
                    "annotation_spec_ids": [s for s, _ in specs],
                    "display_names": [n for _, n in specs],
                    "history": learner.history_,
                    "trials": result.trials,
                }
            )
        )
        progress(99)
        return TrainOutcome(
            evaluations=evaluations,
            stop_reason=result.stop_reason,
            info={"epochs": learner.epochs_, "learner": learner.family, "trials": result.trials},
        )

    @staticmethod
    def _load_base(base_dir: Path, spec_ids: list[str], model_type: str) -> Any:
        """The base model's learner, for resumable training (same labels and model type)."""
        meta = json.loads((base_dir / "model.json").read_text())
        if sorted(meta.get("annotation_spec_ids", [])) != sorted(spec_ids):
            raise FailedPrecondition(
                "the base model's labels differ from the dataset's current labels: "
                "train a new model without baseModelId"
            )
        wanted = text_preset(model_type)[0]
        if meta.get("model_type", wanted) != wanted:
            raise FailedPrecondition(f"the base model has model type {meta.get('model_type')!r}, not {wanted!r}")
        return read_pickle(base_dir / "model.pkl")

    # -- serving ------------------------------------------------------------------------------------
    def load(self, model_dir: Path) -> Any:
        meta = json.loads((model_dir / "model.json").read_text())
        learner = read_pickle(model_dir / "model.pkl")
        spec_of = dict(zip(meta["display_names"], meta["annotation_spec_ids"], strict=True))
        return {**meta, "learner": learner, "spec_of": spec_of}

    def predict(self, loaded: Any, texts: Sequence[str], params: dict[str, str]) -> list[list[dict[str, Any]]]:
        threshold = score_threshold(params) if "score_threshold" in params else DEFAULT_SCORE_THRESHOLD
        out = []
        for text, spans in zip(texts, loaded["learner"].predict(list(texts), min_score=threshold), strict=True):
            out.append(
                [
                    {
                        "annotationSpecId": loaded["spec_of"].get(label, ""),
                        "displayName": label,
                        "textExtraction": {
                            "score": score,
                            "textSegment": {"content": text[s:e], "startOffset": str(s), "endOffset": str(e)},
                        },
                    }
                    for s, e, label, score in spans
                ]
            )
        return out

    def predict_one(self, loaded: Any, text: str, params: dict[str, str]) -> dict[str, Any]:
        if len(text) > MAX_PREDICT_CHARS:
            raise InvalidArgument(
                f"payload.text_snippet.content is {len(text)} characters, over the entity extraction "
                f"limit of {MAX_PREDICT_CHARS}",
                field="payload.text_snippet.content",
            )
        return {"payload": self.predict(loaded, [text], params)[0]}
