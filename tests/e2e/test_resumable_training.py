"""Resumable training (baseModelId): the accepted case and each refused case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.e2e.rest import Rest

P1 = "projects/one/locations/us-central1"
P2 = "projects/two/locations/us-central1"


def rows(labels: list[str], n: int = 30) -> str:
    words = {"sport": "match goal team score", "tech": "chip software computer code", "food": "pizza bread soup salad"}
    out = []
    for i in range(n):
        for label in labels:
            split = "TEST" if i % 5 == 0 else "TRAIN"
            out.append(f'{split},"{words[label]} story {i} about {label}",{label}')
    return "\n".join(out) + "\n"


def dataset_with(api: Rest, server: Server, parent: str, name: str, labels: list[str]) -> str:
    op = api.call(
        "POST",
        f"{parent}/datasets",
        {"displayName": name, "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    ds = api.wait(op)["response"]["name"]
    path = server.bucket_path("rtb") / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rows(labels))
    imp = api.wait(
        api.call("POST", f"{ds}:importData", {"inputConfig": {"gcsSource": {"inputUris": [f"gs://rtb/{name}.csv"]}}})
    )
    assert "error" not in imp, imp
    return ds


def train(api: Rest, parent: str, dataset: str, name: str, expect: int = 200, **meta: str) -> dict:
    return api.call(
        "POST",
        f"{parent}/models",
        {"displayName": name, "datasetId": dataset.rsplit("/", 1)[-1], "textClassificationModelMetadata": meta},
        expect=expect,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_resumable_training(server: Server) -> None:
    api = Rest(server.endpoint)
    ds = dataset_with(api, server, P1, "base_ds", ["sport", "tech"])
    base = api.wait(train(api, P1, ds, "base", modelType="mobile-low-latency-1", trainBudgetMilliNodeHours="5"))
    base_id = base["response"]["name"].rsplit("/", 1)[-1]
    assert (
        api.call("GET", base["response"]["name"])["textClassificationModelMetadata"]["modelType"]
        == "mobile-low-latency-1"
    )

    # Accepted: same project, location, model type and labels; a fresh budget; the search continues.
    resumed = api.wait(
        train(
            api, P1, ds, "resumed", modelType="mobile-low-latency-1", baseModelId=base_id, trainBudgetMilliNodeHours="5"
        )
    )
    assert "error" not in resumed, resumed
    got = api.call("GET", resumed["response"]["name"])
    assert got["textClassificationModelMetadata"]["baseModelId"] == base_id
    model_dir = Path(server.data_dir) / "models" / got["name"].rsplit("/", 1)[-1]
    base_dir = Path(server.data_dir) / "models" / base_id
    trials, base_trials = (json.loads((d / "model.json").read_text())["trials"] for d in (model_dir, base_dir))
    assert trials[: len(base_trials)] == base_trials  # the base model's search history is kept, not redone

    # Refused: another model type.
    err = train(api, P1, ds, "other_type", modelType="mobile-versatile-1", baseModelId=base_id, expect=400)
    assert err["error"]["status"] == "FAILED_PRECONDITION" and "model type" in err["error"]["message"]
    # Refused: the default model type (versatile) differs from the base's low-latency type.
    err = train(api, P1, ds, "default_type", baseModelId=base_id, expect=400)
    assert "mobile-low-latency-1" in err["error"]["message"]

    # Refused: a base model of another project, answered as an unknown id (nothing about its owner).
    ds2 = dataset_with(api, server, P2, "other_ds", ["sport", "tech"])
    err = train(api, P2, ds2, "cross", modelType="mobile-low-latency-1", baseModelId=base_id, expect=404)
    assert err["error"]["status"] == "NOT_FOUND" and P1.split("/")[1] not in err["error"]["message"]

    # Refused: a base model that does not exist.
    err = train(api, P1, ds, "ghost", modelType="mobile-low-latency-1", baseModelId="TCN404", expect=404)
    assert err["error"]["status"] == "NOT_FOUND"

    # Refused: the dataset's labels changed since the base model was trained.
    path = server.bucket_path("rtb") / "more.csv"
    path.write_text(rows(["food"], n=10))
    assert "error" not in api.wait(
        api.call("POST", f"{ds}:importData", {"inputConfig": {"gcsSource": {"inputUris": ["gs://rtb/more.csv"]}}})
    )
    err = train(api, P1, ds, "changed", modelType="mobile-low-latency-1", baseModelId=base_id, expect=400)
    assert "labels" in err["error"]["message"] and "food" in err["error"]["message"]
    # Nothing was created by the refused requests.
    names = sorted(m["displayName"] for m in api.call("GET", f"{P1}/models")["model"])
    assert names == ["base", "resumed"]

    # A model whose files are gone cannot be deployed, and stays UNDEPLOYED.
    broken = resumed["response"]["name"]
    model_dir.rename(model_dir.with_name(model_dir.name + ".moved"))
    err = api.call("POST", f"{broken}:deploy", {}, expect=400)
    assert err["error"]["status"] == "FAILED_PRECONDITION" and "missing" in err["error"]["message"]
    assert api.call("GET", broken)["deploymentState"] == "UNDEPLOYED"
