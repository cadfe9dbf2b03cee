"""Issue 31: progress a person can watch, against a real server.

``metadata.progressPercent`` of a ~60 s text training and of a 50,000-row import, sampled while
they run, rises many times, never falls and is 100 only when the operation is done;
``metadata.stage`` says what the job is doing, for plain HTTP callers only (Google's client
libraries, which send ``x-goog-api-client``, parse operations strictly and never see it); a
finished training's ``response`` is the Model that GetModel returns.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
from typing import Any

import pytest
import requests
from google.api_core import operation as ga_operation
from google.cloud import automl_v1
from google.longrunning import operations_pb2
from google.protobuf import json_format

from tests.conftest import DATASETS
from tests.e2e.clients import PARENT, clients, operations_client

GOOGLE = {"x-goog-api-client": "gl-python/3.11.7 rest/requests@2.34.2 gax/2.44.0 gapic/2.44.0"}
#: 17 milli node hours = 61 s of training.
BUDGET = "17"
#: "Rises steadily": while running, the percentage never stands still longer than this.
MAX_STUCK_SECONDS = 10.0


def rest(
    server: Any, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    resp = requests.request(method, f"{server.endpoint}/v1/{path}", json=body, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def sample(
    server: Any, name: str, every: float, timeout: float, during: Any = None
) -> list[tuple[float, int, str | None, bool]]:
    """(seconds, progressPercent, stage, done) of the operation every ``every`` s until it is done."""
    out: list[tuple[float, int, str | None, bool]] = []
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        op = rest(server, "GET", name)
        meta = op["metadata"]
        out.append(
            (
                round(time.monotonic() - start, 1),
                int(meta.get("progressPercent", 0)),
                meta.get("stage"),
                bool(op.get("done")),
            )
        )
        if op.get("done"):
            assert "error" not in op, op["error"]
            return out
        if during is not None:
            during(op)
        time.sleep(every)
    pytest.fail(f"{name} not done in {timeout} s: {out[-5:]}")


def check_progress(samples: list[tuple[float, int, str | None, bool]], what: str) -> None:
    seq = [(t, p) for t, p, _, _ in samples]
    print(f"\n{what} progressPercent (seconds, percent): {seq}")
    running = [p for _, p, _, done in samples if not done]
    assert samples[-1][3] and samples[-1][1] == 100, f"{what}: done without 100: {seq}"
    assert all(p < 100 for p in running), f"{what}: 100 before done: {seq}"
    percents = [p for _, p, _, _ in samples]
    assert all(b >= a for a, b in itertools.pairwise(percents)), f"{what}: progress fell: {seq}"
    rises = sum(1 for a, b in itertools.pairwise(running) if b > a)
    assert rises >= 4, f"{what}: progress rose only {rises} times before done: {seq}"
    stuck, since = 0.0, samples[0]
    for s in samples[1:]:
        if s[3]:
            break
        since = s if s[1] != since[1] else since
        stuck = max(stuck, s[0] - since[0])
    assert stuck <= MAX_STUCK_SECONDS, f"{what}: progress stood still for {stuck:.0f} s while running: {seq}"


def strict_operation(text: str) -> automl_v1.OperationMetadata:
    """What the official operations client does with GetOperation: a strict parse (no unknown field)."""
    msg = json_format.Parse(text, operations_pb2.Operation(), ignore_unknown_fields=False)
    meta = automl_v1.OperationMetadata.pb()()
    assert msg.metadata.Unpack(meta)
    return meta


def write_bucket(server: Any, bucket: str, path: str, text: str) -> str:
    target = server.bucket_path(bucket) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return f"gs://{bucket}/{path}"


def create_dataset(server: Any, name: str) -> str:
    op = rest(
        server,
        "POST",
        f"{PARENT}/datasets",
        {"displayName": name, "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    for _ in range(100):
        if op.get("done"):
            return op["response"]["name"]
        time.sleep(0.1)
        op = rest(server, "GET", op["name"])
    pytest.fail("CreateDataset did not finish")


def import_rows(server: Any, dataset: str, uri: str) -> dict[str, Any]:
    return rest(server, "POST", f"{dataset}:importData", {"inputConfig": {"gcsSource": {"inputUris": [uri]}}})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_training_progress_rises_with_stage_for_plain_callers_only(server) -> None:
    with open(DATASETS / "ag_news" / "ag_news.csv", newline="") as fh:
        records = list(csv.reader(fh))[:400]
    buf = io.StringIO()
    uses = ["TEST", "VALIDATE"] + ["TRAIN"] * 6  # explicit: a validation split for the trials to be scored on
    csv.writer(buf).writerows([[uses[i % 8], text, label] for i, (_, text, label) in enumerate(records)])
    dataset = create_dataset(server, "news")
    imp = import_rows(server, dataset, write_bucket(server, "progress", "news.csv", buf.getvalue()))
    sample(server, imp["name"], 0.2, 60)

    op = rest(
        server,
        "POST",
        f"{PARENT}/models",
        {
            "displayName": "news",
            "datasetId": dataset.rsplit("/", 1)[-1],
            # "cloud": the cheap families, then fine-tuning MiniLM with the rest of the budget
            "textClassificationModelMetadata": {"trainBudgetMilliNodeHours": BUDGET, "modelType": "cloud"},
        },
    )
    _, client, _ = clients("v1", server.endpoint)
    ops = operations_client(client)
    seen: dict[str, list[Any]] = {"stages": [], "google": []}

    def during(running: dict[str, Any]) -> None:
        if running["metadata"].get("stage"):
            seen["stages"].append(running["metadata"]["stage"])
        if len(seen["google"]) < 3:  # as Google's clients see it: no stage, a strict parse works
            resp = requests.get(f"{server.endpoint}/v1/{op['name']}", headers=GOOGLE, timeout=10)
            assert "stage" not in resp.json()["metadata"], resp.text
            seen["google"].append(strict_operation(resp.text).progress_percent)
            assert ops.get_operation(op["name"]).name == op["name"]  # the official client's own parse

    samples = sample(server, op["name"], 2.0, 150, during)
    check_progress(samples, "training")
    print(f"training stages: {list(dict.fromkeys(seen['stages']))}")
    assert seen["stages"], f"no metadata.stage while training: {samples}"
    assert any(s.startswith("trial ") for s in seen["stages"]), seen["stages"]
    assert seen["google"], "the operation was never sampled running"

    # The official client polls the same operation to its end (strict parse of the final response).
    future = ga_operation.from_gapic(
        ops.get_operation(op["name"]), ops, automl_v1.Model, metadata_type=automl_v1.OperationMetadata
    )
    model = future.result(timeout=30)
    assert model.text_classification_model_metadata is not None
    assert automl_v1.Model.to_dict(model) == automl_v1.Model.to_dict(client.get_model(name=model.name))
    # A plain caller's response is the Model that GetModel returns, Automill's text fields included.
    done = rest(server, "GET", op["name"])
    assert "stage" not in done["metadata"]
    response = {k: v for k, v in done["response"].items() if k != "@type"}
    got = rest(server, "GET", model.name)
    assert response == got, json.dumps({"operation": response, "model": got}, indent=1)
    meta = got["textClassificationModelMetadata"]
    assert {"trainCostMilliNodeHours", "stopReason", "modelType"} <= set(meta), meta
    google_done = requests.get(f"{server.endpoint}/v1/{op['name']}", headers=GOOGLE, timeout=10).text
    strict_operation(google_done)
    assert "stopReason" not in google_done and "stage" not in google_done


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_import_progress_rises_with_rows_read(server) -> None:
    # Each row names a document (GCS_FILE_PATH), as import CSVs of longer texts do: reading the rows
    # is the import's work, long enough to watch.
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    docs = server.bucket_path("progress") / "docs"
    docs.mkdir(parents=True)
    lines = []
    for i in range(50_000):
        (docs / f"{i}.txt").write_text(f"document {i}: {words[i % 8]} {words[(i // 8) % 8]} {words[(i // 64) % 8]}")
        lines.append(f"UNASSIGNED,gs://progress/docs/{i}.txt,{'even' if i % 2 == 0 else 'odd'}")
    uri = write_bucket(server, "progress", "rows.csv", "\n".join(lines) + "\n")
    warm = create_dataset(server, "warm")  # the workers start (a few seconds) before the import we watch
    sample(
        server,
        import_rows(server, warm, write_bucket(server, "progress", "warm.csv", "\n".join(lines[:20])))["name"],
        0.2,
        60,
    )
    dataset = create_dataset(server, "rows")
    imp = import_rows(server, dataset, uri)
    stages: list[str] = []
    google_ok: list[int] = []

    def during(running: dict[str, Any]) -> None:
        if running["metadata"].get("stage"):
            stages.append(running["metadata"]["stage"])
        resp = requests.get(f"{server.endpoint}/v1/{imp['name']}", headers=GOOGLE, timeout=10)
        assert "stage" not in resp.json()["metadata"], resp.text
        google_ok.append(strict_operation(resp.text).progress_percent)

    samples = sample(server, imp["name"], 0.5, 120, during)
    check_progress(samples, "import")
    print(f"import stages: {list(dict.fromkeys(stages))}")
    assert any(s.startswith("reading rows: ") and s.endswith(" of 50,000") for s in stages), stages
    assert google_ok
    got = rest(server, "GET", dataset)
    assert int(got.get("exampleCount", 0)) == 50_000
