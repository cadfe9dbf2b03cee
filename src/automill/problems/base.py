"""The problem plug-in contract.

A problem type is one folder in ``problems/`` whose package exports ``PROBLEM``, a :class:`Problem`:
how its dataset metadata is validated, how import rows are parsed, how a model is trained and
evaluated, and how predictions become AnnotationPayloads. Services find it by name through
``problems/registry.py`` and call these; problems know no DB, HTTP or jobs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from automill.core.deadline import Deadline


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
    metrics: dict[str, Any]  # v1 JSON of the metrics message (metrics_json)


def metrics_json(cls: Any, msg: Any) -> dict[str, Any]:
    """A metrics message (``cls``, a proto-plus type of automl_v1) as its v1 JSON: enums by name."""
    out: dict[str, Any] = json.loads(cls.to_json(msg, use_integers_for_enums=False))
    return out


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

    # -- storing imported examples (``ex`` is one example of what parse_import returned) --------------
    def labels_of(self, ex: Any) -> list[str]: ...

    def annotations_of(self, ex: Any, spec_of: dict[str, str]) -> Any: ...

    def merge_annotations(self, old: Any, new: Any, dataset_meta: dict[str, Any]) -> Any | None: ...

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
        checkpoint_dir: Path | None = None,
    ) -> TrainOutcome:
        """Train within ``deadline``. ``checkpoint_dir``: a folder kept across the attempts of one
        training (its worker may die); a problem may save what it finished there as it goes and, when
        the folder holds an earlier attempt's work, start from it instead of from scratch."""
        ...

    def load(self, model_dir: Path) -> Any: ...

    # ``inputs``/``data``: texts, or for an image type the images' bytes
    def predict(self, loaded: Any, inputs: Sequence[Any], params: dict[str, str]) -> list[list[dict[str, Any]]]: ...

    def predict_one(self, loaded: Any, data: Any, params: dict[str, str]) -> dict[str, Any]: ...


class ImageProblem(Problem, Protocol):
    """An image type: examples are images in the media store, predictions take image bytes."""

    uses_media: bool

    def check_input(self, data: bytes, where: str) -> None: ...

    def load_weights(self, model_dir: Path) -> Any: ...


def is_image_problem(problem: Problem) -> TypeGuard[ImageProblem]:
    return bool(getattr(problem, "uses_media", False))
