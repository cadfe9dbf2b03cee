"""Issue 31: ``metadata.stage`` and a CreateModel ``response`` as GetModel has it, for plain callers
only; Google's client libraries (strict parse) get only Google's fields."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from google.longrunning import operations_pb2
from google.protobuf import json_format

from automill.api import codec
from automill.services.render import OperationView, model_json
from automill.store.tables import ModelRow


def model_row(problem_type: str, metadata: dict) -> ModelRow:
    now = datetime(2026, 1, 2, 3, 4, 5)
    return ModelRow(
        id="TCN1",
        project="p",
        location="l",
        display_name="m",
        dataset_id="TCN2",
        problem_type=problem_type,
        problem_metadata=metadata,
        labels={},
        etag="e",
        deployment_state="UNDEPLOYED",
        create_time=now,
        update_time=now,
        artifact_dir="/x",
        train_budget_milli_node_hours=17,
        train_cost_milli_node_hours=18,
        stop_reason="BUDGET_REACHED",
        model_type="mobile-high-accuracy-1",
        base_model_id="",
        seq=1,
    )


def view(result: dict | None = None, stage: str = "trial 2 of 9: fine-tuning MiniLM") -> OperationView:
    return OperationView(
        name="projects/p/locations/l/operations/TCN3",
        done=result is not None,
        details_key="createModelDetails",
        details={},
        create_time="2026-01-02T03:04:05.000Z",
        update_time="2026-01-02T03:04:06.000Z",
        progress_percent=100 if result else 40,
        result_type="Model",
        result=result,
        stage=stage,
    )


def strict(op: dict) -> None:
    json_format.Parse(json.dumps(op), operations_pb2.Operation(), ignore_unknown_fields=False)


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_stage_only_for_plain_callers(version: str) -> None:
    plain = codec.operation_json(view(), version, extensions=True)
    assert plain["metadata"]["stage"] == "trial 2 of 9: fine-tuning MiniLM"
    google = codec.operation_json(view(), version)
    assert "stage" not in google["metadata"] and google["metadata"]["progressPercent"] == 40
    strict(google)
    with pytest.raises(json_format.ParseError):
        strict(plain)  # why Google's clients must never see it


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
@pytest.mark.parametrize(
    "problem_type,metadata",
    [
        ("text_classification", {"classificationType": "MULTICLASS"}),
        ("image_classification", {"nodeQps": 12.5}),
    ],
)
def test_model_response_is_get_model(version: str, problem_type: str, metadata: dict) -> None:
    row = model_row(problem_type, metadata)
    stored = model_json(row, extensions=True)  # what the CreateModel job stores
    get_model = codec.with_extensions(version, model_json(row, extensions=True))
    done = codec.operation_json(view(stored, stage=""), version, extensions=True)
    assert {k: v for k, v in done["response"].items() if k != "@type"} == get_model
    google = codec.operation_json(view(stored, stage=""), version)
    strict(google)
    assert google["response"] == {"@type": done["response"]["@type"], **codec.from_v1(version, "Model", stored)}
