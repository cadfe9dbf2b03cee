"""The problem plug-in contract and its registry.

A problem type is one folder in ``problems/`` that registers a :class:`Problem`: how its dataset
metadata is validated, how import rows are parsed, how a model is trained and evaluated, and how
predictions become AnnotationPayloads. Services call these; problems know no DB, HTTP or jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from automill.core.deadline import Deadline
from automill.core.errors import InvalidArgument, Unimplemented


@dataclass
class StoredExample:
    """An example as the services hand it to a problem (annotations are problem-specific JSON)."""

    content: str
    ml_use: str
    annotations: Any
    source_uri: str | None = None


@dataclass
class Evaluation:
    annotation_spec_id: str  # "" = the overall evaluation
    display_name: str
    evaluated_example_count: int
    metrics_key: str  # e.g. "classificationEvaluationMetrics"
    metrics: dict[str, Any]  # v1 JSON of the metrics message


@dataclass
class TrainOutcome:
    evaluations: list[Evaluation]
    stop_reason: str
    info: dict[str, Any] = field(default_factory=dict)


class Problem(Protocol):
    name: str
    prefix: str
    dataset_key: str
    model_key: str

    def validate_dataset_metadata(self, meta: dict[str, Any]) -> dict[str, Any]: ...

    def model_metadata(self, dataset_meta: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]: ...

    def parse_import(
        self,
        data: str,
        *,
        uri: str,
        read_text: Callable[[str], str],
        dataset_meta: dict[str, Any],
        read_bytes: Callable[[str], bytes] | None = None,
    ) -> Any: ...

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
    ) -> TrainOutcome: ...

    def load(self, model_dir: Path) -> Any: ...

    def predict(self, loaded: Any, texts: Sequence[str], params: dict[str, str]) -> list[list[dict[str, Any]]]: ...

    def predict_one(self, loaded: Any, text: str, params: dict[str, str]) -> dict[str, Any]: ...


#: Every dataset metadata key of the API -> problem type name, implemented or not.
DATASET_KEYS: dict[str, str] = {
    "textClassificationDatasetMetadata": "text_classification",
    "textSentimentDatasetMetadata": "text_sentiment",
    "textExtractionDatasetMetadata": "text_extraction",
    "imageClassificationDatasetMetadata": "image_classification",
    "imageObjectDetectionDatasetMetadata": "image_object_detection",
    "translationDatasetMetadata": "translation",
}
MODEL_KEYS: dict[str, str] = {k.replace("DatasetMetadata", "ModelMetadata"): v for k, v in DATASET_KEYS.items()}

_REGISTRY: dict[str, Problem] = {}


def register(problem: Problem) -> Problem:
    if problem.name in _REGISTRY and _REGISTRY[problem.name] is not problem:
        raise ValueError(f"problem type {problem.name!r} is already registered")
    _REGISTRY[problem.name] = problem
    return problem


def get_problem(name: str) -> Problem:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise Unimplemented(f"problem type {name} is not supported by this server yet") from None


def problem_for_dataset_key(key: str) -> str:
    try:
        return DATASET_KEYS[key]
    except KeyError:
        raise InvalidArgument(f"unknown dataset metadata {key!r}") from None


def _load_builtin() -> None:
    import automill.problems.image_classification
    import automill.problems.image_object_detection
    import automill.problems.text_classification
    import automill.problems.text_extraction
    import automill.problems.text_sentiment  # noqa: F401
