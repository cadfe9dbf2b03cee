"""Rows -> the v1 JSON form of API messages (the api layer converts to the caller's version)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from automill.core.ids import parent_of
from automill.jobs.states import JobState
from automill.store.tables import AnnotationSpecRow, DatasetRow, EvaluationRow, ModelRow, OperationRow


def rfc3339(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def dataset_name(row: DatasetRow | ModelRow | OperationRow, collection: str, rid: str) -> str:
    return f"{parent_of(row.project, row.location)}/{collection}/{rid}"


def dataset_json(row: DatasetRow, example_count: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": dataset_name(row, "datasets", row.id),
        "displayName": row.display_name,
        "createTime": rfc3339(row.create_time),
        "etag": row.etag,
        _dataset_key(row.problem_type): dict(row.problem_metadata),
    }
    if row.description:
        out["description"] = row.description
    if example_count:
        out["exampleCount"] = example_count
    if row.labels:
        out["labels"] = dict(row.labels)
    return out


def _dataset_key(problem_type: str) -> str:
    from automill.problems.registry import DATASET_KEYS

    return next(k for k, v in DATASET_KEYS.items() if v == problem_type)


def _model_key(problem_type: str) -> str:
    return _dataset_key(problem_type).replace("DatasetMetadata", "ModelMetadata")


def annotation_spec_json(row: AnnotationSpecRow, project: str, location: str, example_count: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"{parent_of(project, location)}/datasets/{row.dataset_id}/annotationSpecs/{row.id}",
        "displayName": row.display_name,
    }
    if example_count:
        out["exampleCount"] = example_count
    return out


def model_json(row: ModelRow, *, extensions: bool = False) -> dict[str, Any]:
    """``extensions`` adds Automill's training fields to metadata that has none in Google's API
    (text models). The api layer sends them only to callers that are not Google's client libraries
    (whose strict operations client refuses unknown fields inside an Operation's response)."""
    meta = dict(row.problem_metadata)
    if extensions and row.problem_type.startswith("text_"):
        meta.update(
            {
                "trainBudgetMilliNodeHours": str(row.train_budget_milli_node_hours),
                "trainCostMilliNodeHours": str(row.train_cost_milli_node_hours),
                "stopReason": row.stop_reason,
                "modelType": row.model_type,
            }
        )
        if row.base_model_id:
            meta["baseModelId"] = row.base_model_id
    if row.problem_type.startswith("image_"):  # real fields of the image model metadata messages
        meta.update(
            {
                "trainBudgetMilliNodeHours": str(row.train_budget_milli_node_hours),
                "trainCostMilliNodeHours": str(row.train_cost_milli_node_hours),
                "stopReason": row.stop_reason,
                "modelType": row.model_type,
            }
        )
        if row.base_model_id and row.problem_type == "image_classification":
            meta["baseModelId"] = row.base_model_id
    out: dict[str, Any] = {
        "name": dataset_name(row, "models", row.id),
        "displayName": row.display_name,
        "datasetId": row.dataset_id,
        "createTime": rfc3339(row.create_time),
        "updateTime": rfc3339(row.update_time),
        "deploymentState": row.deployment_state,
        "etag": row.etag,
        _model_key(row.problem_type): meta,
    }
    if row.labels:
        out["labels"] = dict(row.labels)
    return out


def evaluation_json(row: EvaluationRow, project: str, location: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"{parent_of(project, location)}/models/{row.model_id}/modelEvaluations/{row.id}",
        "createTime": rfc3339(row.create_time),
        "evaluatedExampleCount": row.evaluated_example_count,
        row.metrics_kind: row.metrics,
    }
    if row.annotation_spec_id:
        out["annotationSpecId"] = row.annotation_spec_id
        out["displayName"] = row.display_name
    return out


@dataclass
class OperationView:
    """An operation, version-neutral: the api layer adds the version's ``@type`` URLs."""

    name: str
    done: bool
    details_key: str
    details: dict[str, Any]
    create_time: str
    update_time: str
    progress_percent: int
    partial_failures: list[dict[str, Any]] = field(default_factory=list)
    result_type: str = "Empty"
    result: dict[str, Any] | None = None
    error_code: int = 0
    error_message: str = ""
    #: What the job is doing (or was doing when it failed): Automill's ``metadata.stage``.
    stage: str = ""
    #: The resource the operation works on (a dataset or model name): Automill's ``metadata.worksOn``.
    works_on: str = ""
    #: The API version of the call that started it ("" when unknown): its types over gRPC.
    api_version: str = ""


def operation_view(row: OperationRow) -> OperationView:
    state = JobState(row.state)
    return OperationView(
        name=f"{parent_of(row.project, row.location)}/operations/{row.id}",
        done=state.done,
        details_key=row.details_key,
        details=dict(row.details or {}),
        create_time=rfc3339(row.created_at),
        update_time=rfc3339(row.updated_at),
        progress_percent=row.progress_percent,
        partial_failures=list(row.partial_failures or []),
        result_type=row.result_type,
        result=row.result if state == JobState.SUCCEEDED else None,
        error_code=row.error_code if state in (JobState.FAILED, JobState.CANCELLED) else 0,
        error_message=row.error_message,
        stage=row.stage or "",
        works_on=row.works_on or "",
        api_version=str((row.request or {}).get("_api_version", "")),
    )
