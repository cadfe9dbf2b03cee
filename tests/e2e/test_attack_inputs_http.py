"""Hostile requests against a real ``automill serve`` (SQLite and PostgreSQL): a catastrophic regex
filter must not freeze the server, a 10,000-character project id is INVALID_ARGUMENT on both
databases, and ``:batchPredict`` checks ``params`` before an operation exists."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from automill.store.db import Database, new_etag, utcnow
from automill.store.tables import ModelRow
from tests.conftest import Server
from tests.e2e.rest import PARENT, Rest

#: PostgreSQL's column sizes are what the huge project id would break: both databases in the default run.
POSTGRES_IN_DEFAULT_RUN = True


def field_of(resp: requests.Response) -> str:
    err = resp.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT", err
    return str(err["details"][0]["fieldViolations"][0]["field"])


def test_catastrophic_regex_filter_answers_fast_and_healthz_stays_up(server: Server) -> None:
    rest = Rest(server.endpoint)
    rest.create_text_dataset("a" * 27 + "X")  # ^(a+)+$ backtracks ~2^27 steps on it in Python's re
    url = f"{server.endpoint}/v1/{PARENT}/datasets"
    listed: dict[str, Any] = {}

    def list_call() -> None:
        start = time.monotonic()
        try:
            listed["resp"] = requests.get(url, params={"filter": 'regex(display_name, "^(a+)+$")'}, timeout=20)
        except requests.RequestException as exc:
            listed["error"] = exc
        listed["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=list_call)
    thread.start()
    health: list[float] = []
    for _ in range(5):
        start = time.monotonic()
        try:
            ok = requests.get(f"{server.endpoint}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            ok = False
        health.append(time.monotonic() - start if ok else 99.0)
        time.sleep(0.1)
    thread.join(30)
    assert "error" not in listed, listed
    assert listed["elapsed"] < 2.0, f"ListDatasets with a catastrophic regex took {listed['elapsed']:.1f}s"
    assert listed["resp"].status_code == 200 and listed["resp"].json().get("datasets", []) == []
    assert max(health) < 1.0, f"/healthz latencies while the filter ran: {health}"
    # A pattern RE2 cannot compile within its limits is a 400 on `filter`, not a 500.
    resp = requests.get(
        url, params={"filter": 'regex(display_name, "' + "(" * 2000 + "a" + ")" * 2000 + '")'}, timeout=20
    )
    assert resp.status_code == 400 and field_of(resp) == "filter", resp.text


def test_huge_project_id_is_invalid_argument(server: Server) -> None:
    parent = f"projects/{'p' * 10_000}/locations/us-central1"
    base = f"{server.endpoint}/v1"
    resp = requests.post(
        f"{base}/{parent}/datasets",
        timeout=20,
        json={"displayName": "huge_project", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    assert resp.status_code == 400 and field_of(resp) == "parent", resp.text[:500]
    assert "p" * 200 not in resp.text  # the message shows a cut of the id, not all of it
    resp = requests.get(f"{base}/{parent}/datasets", timeout=20)
    assert resp.status_code == 400 and field_of(resp) == "parent", resp.text[:500]
    resp = requests.get(f"{base}/{parent}/models/TCN1", timeout=20)
    assert resp.status_code == 400 and field_of(resp) == "name", resp.text[:500]


def test_batch_predict_refuses_bad_params_before_creating_an_operation(server: Server) -> None:
    """A model row put straight into the server's database (no training needed: the request must be
    refused before anything reads the model)."""
    db = Database(server.database_url or f"sqlite:///{(server.data_dir / 'automill.db').resolve()}")
    now = utcnow()
    with db.tx() as s:
        s.add(
            ModelRow(
                id="TCN1000000000000999999",
                project="curl",
                location="us-central1",
                display_name="fake",
                dataset_id="TCN1",
                problem_type="text_classification",
                problem_metadata={},
                labels={},
                etag=new_etag("fake", now),
                deployment_state="UNDEPLOYED",
                create_time=now,
                update_time=now,
                artifact_dir=str(server.data_dir / "no-such-model"),
                seq=999_999,
            )
        )
    db.dispose()
    rest = Rest(server.endpoint)
    before = rest.call("GET", f"{PARENT}/operations").get("operations", [])
    resp = requests.post(
        f"{server.endpoint}/v1/{PARENT}/models/TCN1000000000000999999:batchPredict",
        timeout=20,
        json={
            "inputConfig": {"gcsSource": {"inputUris": ["gs://inb/rows.csv"]}},
            "outputConfig": {"gcsDestination": {"outputUriPrefix": "gs://out/"}},
            "params": {"score_threshold": "abc"},
        },
    )
    assert resp.status_code == 400 and field_of(resp) == "params.score_threshold", resp.text
    assert rest.call("GET", f"{PARENT}/operations").get("operations", []) == before
