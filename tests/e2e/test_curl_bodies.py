"""Google's documented curl bodies (camelCase, enum names, snake_case mixes) work as typed."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import Server
from tests.e2e.rest import PARENT, Rest


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_google_doc_curl_bodies(server: Server) -> None:
    api = Rest(server.endpoint)
    # NL how-to: create dataset with enum names, import, train with snake_case dataset_id.
    op = api.call(
        "POST",
        f"{PARENT}/datasets",
        {"displayName": "test_dataset", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    assert op["metadata"]["@type"] == "type.googleapis.com/google.cloud.automl.v1.OperationMetadata"
    dataset = api.wait(op)["response"]
    assert dataset["textClassificationDatasetMetadata"] == {"classificationType": "MULTICLASS"}
    dataset_id = dataset["name"].rsplit("/", 1)[-1]
    rows = [f'TRAIN,"good news number {i}",positive' for i in range(40)]
    rows += [f'TRAIN,"terrible news number {i}",negative' for i in range(40)]
    rows += [f'TEST,"good news item {i}",positive' for i in range(10)] + [
        f'TEST,"terrible news item {i}",negative' for i in range(10)
    ]
    path = server.bucket_path("curl") / "train.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(rows) + "\n")
    imp = api.call(
        "POST", f"{dataset['name']}:importData", {"inputConfig": {"gcsSource": {"inputUris": ["gs://curl/train.csv"]}}}
    )
    assert "importDataDetails" in imp["metadata"] and not imp.get("done")
    assert api.wait(imp)["response"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}

    # Text budget: Automill's field inside the text model metadata (int64 as a string, as curl users write it).
    train = api.call(
        "POST",
        f"{PARENT}/models",
        {
            "displayName": "test_model",
            "dataset_id": dataset_id,
            "textClassificationModelMetadata": {"trainBudgetMilliNodeHours": "20"},
        },
    )
    assert "createModelDetails" in train["metadata"]
    model = api.wait(train)["response"]
    assert model["@type"] == "type.googleapis.com/google.cloud.automl.v1.Model"
    got = api.call("GET", model["name"])
    meta = got["textClassificationModelMetadata"]
    assert meta["trainBudgetMilliNodeHours"] == "20" and int(meta["trainCostMilliNodeHours"]) >= 1
    assert meta["stopReason"] in ("MODEL_CONVERGED", "BUDGET_REACHED")
    assert got["deploymentState"] == "UNDEPLOYED"

    # Integer enums and int64 numbers (what the official client sends) are accepted too.
    beta = Rest(server.endpoint, "v1beta1")
    ds2 = beta.call(
        "POST",
        f"{PARENT}/datasets",
        {"displayName": "ints", "textClassificationDatasetMetadata": {"classificationType": 2}},
    )
    assert ds2["textClassificationDatasetMetadata"]["classificationType"] == "MULTILABEL"

    # Deploy with an empty body, predict with snake_case mime_type, list with a quoted filter.
    api.wait(api.call("POST", f"{model['name']}:deploy", raw=""))
    pred = api.call(
        "POST",
        f"{model['name']}:predict",
        {"payload": {"textSnippet": {"content": "good news today", "mime_type": "text/plain"}}},
    )
    assert pred["payload"][0]["displayName"] == "positive"
    assert 0.5 < pred["payload"][0]["classification"]["score"] <= 1.0
    listed = api.call("GET", f"{PARENT}/operations", params={"filter": '"done=true"'})
    assert {o["name"] for o in listed["operations"]} >= {train["name"], imp["name"]}
    listed = api.call("GET", f"{PARENT}/operations", params={"filter": f"worksOn={dataset['name']} AND done=true"})
    assert train["name"] in {o["name"] for o in listed["operations"]}
    one = api.call("GET", f"{PARENT}/operations", params={"filter": f"operationId={train['name'].rsplit('/', 1)[-1]}"})
    assert [o["name"] for o in one["operations"]] == [train["name"]]

    # Paging: pageSize 1 walks every model list page.
    api.wait(
        api.call(
            "POST",
            f"{PARENT}/models",
            {"displayName": "second", "datasetId": dataset_id, "textClassificationModelMetadata": {}},
        )
    )
    page = api.call("GET", f"{PARENT}/models", params={"pageSize": 1})
    assert len(page["model"]) == 1 and page["nextPageToken"]
    page2 = api.call("GET", f"{PARENT}/models", params={"pageSize": 1, "pageToken": page["nextPageToken"]})
    assert len(page2["model"]) == 1 and page2["model"][0]["name"] != page["model"][0]["name"]
    assert (
        api.call("GET", f"{PARENT}/models", params={"filter": "display_name=second"})["model"][0]["displayName"]
        == "second"
    )
    assert api.call("GET", f"{PARENT}/models", params={"filter": f"dataset_id!={dataset_id}"}) == {}

    # Update with an updateMask in camelCase, and an etag mismatch.
    upd = api.call(
        "PATCH",
        dataset["name"],
        {"displayName": "renamed", "description": "d"},
        params={"updateMask": "displayName,description"},
    )
    assert upd["displayName"] == "renamed" and upd["description"] == "d"
    err = api.call(
        "PATCH",
        dataset["name"],
        {"displayName": "x", "etag": "stale"},
        params={"updateMask": "displayName"},
        expect=400,
    )
    assert err["error"]["status"] == "FAILED_PRECONDITION"

    # Cancel arrives with an empty body; a done operation stays as it was.
    assert api.call("POST", f"{train['name']}:cancel", raw="") == {}
    assert "response" in api.call("GET", train["name"])

    # Vision Edge how-to body on v1: "trainBudget": "1" and modelType parse; the empty dataset is refused.
    img = api.wait(
        api.call(
            "POST",
            f"{PARENT}/datasets",
            {"displayName": "flowers", "imageClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
        )
    )
    body = {
        "displayName": "display_name",
        "datasetId": img["response"]["name"].rsplit("/", 1)[-1],
        "imageClassificationModelMetadata": {"trainBudget": "1", "modelType": "mobile-low-latency-1"},
    }
    err = api.call("POST", f"{PARENT}/models", body, expect=400)
    assert err["error"]["status"] == "FAILED_PRECONDITION" and "no examples" in err["error"]["message"]
    body["imageClassificationModelMetadata"]["modelType"] = "mobile-core-ml-low-latency-1"
    err = api.call("POST", f"{PARENT}/models", body, expect=400)
    assert "Core ML" in err["error"]["message"]

    # Errors: google.rpc.Status JSON (no 401: this server has no API keys), unknown fields named.
    err = api.call(
        "POST",
        f"{PARENT}/datasets",
        {"displayName": "x", "textClassificationDatasetMetadata": {}, "bogusField": 1},
        expect=400,
    )
    assert "bogusField" in err["error"]["message"] and err["error"]["status"] == "INVALID_ARGUMENT"
    err = api.call(
        "POST",
        f"{PARENT}/datasets",
        {"displayName": "bad name!", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
        expect=400,
    )
    assert err["error"]["details"][0]["fieldViolations"][0]["field"] == "dataset.display_name"
    err = api.call("GET", f"{PARENT}/models/TCN404", expect=404)
    assert err["error"]["status"] == "NOT_FOUND"
    err = api.call(
        "POST",
        f"{model['name']}:export",
        {"outputConfig": {"modelFormat": "tflite", "gcsDestination": {"outputUriPrefix": "gs://xbk/y"}}},
        expect=400,
    )
    assert "cannot be exported" in err["error"]["message"]
    resp = requests.post(
        f"{server.endpoint}/v1/{PARENT}/datasets",
        data="{not json",
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400 and "Invalid JSON" in resp.json()["error"]["message"]
    assert requests.get(f"{server.endpoint}/v2/{PARENT}/datasets", timeout=10).status_code == 404
