"""Issue 24, authorization: every RPC of v1 and v1beta1, every role, its own and another project, on one
real server (SQLite, no workers: nothing runs behind the requests).

The expected permissions are written here again, independently of api.routes: a route whose RPC has no
line below fails the test, so a new route cannot be forgotten. An allowed call may still fail (400, 404:
the dummy ids and empty bodies) — it only has to get past the door (not 401, not 403). A denied call
gets 403 PERMISSION_DENIED, says the same whether the resource exists or not, changes no row, and is in
the audit log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from automill.api.routes import ROUTES, resolve
from automill.services.keys import create_key
from automill.store.db import Database
from tests.conftest import Server

OWN, OTHER = "pa", "pb"
READ = {"admin", "editor", "viewer"}
WRITE = {"admin", "editor"}
ROLES = ("admin", "editor", "viewer", "predictor")

#: RPC -> (HTTP method, path under /{version}/ with {p} project, {ds} dataset, {op} operation; roles allowed).
EXPECTED: dict[str, tuple[str, str, set[str]]] = {
    "CreateDataset": ("POST", "projects/{p}/locations/l/datasets", WRITE),
    "ListDatasets": ("GET", "projects/{p}/locations/l/datasets", READ),
    "GetDataset": ("GET", "projects/{p}/locations/l/datasets/{ds}", READ),
    "UpdateDataset": ("PATCH", "projects/{p}/locations/l/datasets/{ds}", WRITE),
    "DeleteDataset": ("DELETE", "projects/{p}/locations/l/datasets/{ds}", WRITE),
    "ImportData": ("POST", "projects/{p}/locations/l/datasets/{ds}:importData", WRITE),
    "ExportData": ("POST", "projects/{p}/locations/l/datasets/{ds}:exportData", WRITE),
    "GetAnnotationSpec": ("GET", "projects/{p}/locations/l/datasets/{ds}/annotationSpecs/7", READ),
    "ListAnnotationSpecs": ("GET", "projects/{p}/locations/l/datasets/{ds}/annotationSpecs", READ),
    "ListExamples": ("GET", "projects/{p}/locations/l/datasets/{ds}/examples", READ),
    "GetExampleMedia": ("GET", "projects/{p}/locations/l/datasets/{ds}/examples/1:media", READ),
    "GetTableSpec": ("GET", "projects/{p}/locations/l/datasets/{ds}/tableSpecs/1", READ),
    "UpdateTableSpec": ("PATCH", "projects/{p}/locations/l/datasets/{ds}/tableSpecs/1", WRITE),
    "CreateModel": ("POST", "projects/{p}/locations/l/models", WRITE),
    "ListModels": ("GET", "projects/{p}/locations/l/models", READ),
    "GetModel": ("GET", "projects/{p}/locations/l/models/TCN123", READ | {"predictor"}),
    "GetResumeEligibility": ("GET", "projects/{p}/locations/l/models/TCN123:resumeEligibility", READ | {"predictor"}),
    "UpdateModel": ("PATCH", "projects/{p}/locations/l/models/TCN123", WRITE),
    "DeleteModel": ("DELETE", "projects/{p}/locations/l/models/TCN123", WRITE),
    "DeployModel": ("POST", "projects/{p}/locations/l/models/TCN123:deploy", WRITE),
    "UndeployModel": ("POST", "projects/{p}/locations/l/models/TCN123:undeploy", WRITE),
    "ExportModel": ("POST", "projects/{p}/locations/l/models/TCN123:export", WRITE),
    "ExportEvaluatedExamples": ("POST", "projects/{p}/locations/l/models/TCN123:exportEvaluatedExamples", WRITE),
    "ListModelEvaluations": ("GET", "projects/{p}/locations/l/models/TCN123/modelEvaluations", READ),
    "GetModelEvaluation": ("GET", "projects/{p}/locations/l/models/TCN123/modelEvaluations/9", READ),
    "Predict": ("POST", "projects/{p}/locations/l/models/TCN123:predict", WRITE | {"predictor"}),
    "BatchPredict": ("POST", "projects/{p}/locations/l/models/TCN123:batchPredict", WRITE),
    "ListOperations": ("GET", "projects/{p}/locations/l/operations", READ),
    "GetOperation": ("GET", "projects/{p}/locations/l/operations/{op}", READ),
    "WaitOperation": ("POST", "projects/{p}/locations/l/operations/{op}:wait", READ),
    "CancelOperation": ("POST", "projects/{p}/locations/l/operations/{op}:cancel", WRITE),
    "DeleteOperation": ("DELETE", "projects/{p}/locations/l/operations/{op}", WRITE),
}

COUNTED = ("datasets", "annotation_specs", "examples", "models", "model_evaluations", "operations", "api_keys")


def cases() -> list[tuple[str, str, str]]:
    """(version, RPC, HTTP method) of every route, checked against EXPECTED."""
    out = []
    for r in ROUTES:
        assert r.rpc in EXPECTED, f"route {r.method} {r.pattern.pattern} ({r.rpc}) has no expected permission here"
        method, template, _ = EXPECTED[r.rpc]
        assert method == r.method, r.rpc
        for version in r.versions:
            sample = template.format(p=OWN, ds="TCN1", op="TCN2")
            assert resolve(method, version, sample)[0] is r, f"{r.rpc}: {sample} is not its route"
            out.append((version, r.rpc, method))
    return out


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, dict[str, str], dict[str, dict[str, str]]]]:
    data = tmp_path_factory.mktemp("matrix") / "data"
    data.mkdir()
    server = Server(data_dir=data, database_url="", workers=0).start()
    try:
        db = Database(f"sqlite:///{data / 'automill.db'}")
        keys = {role: create_key(db, project=OWN, role=role, name=f"{role}-{OWN}")[1] for role in ROLES}
        root = keys["root"] = create_key(db, project="*", role="admin", name="root")[1]
        db.dispose()
        real: dict[str, dict[str, str]] = {}
        for project in (OWN, OTHER):
            op = requests.post(
                f"{server.endpoint}/v1/projects/{project}/locations/l/datasets",
                headers={"x-goog-api-key": root},
                timeout=30,
                json={"displayName": "m", "textClassificationDatasetMetadata": {"classificationType": 1}},
            )
            assert op.status_code == 200, op.text
            real[project] = {
                "ds": op.json()["response"]["name"].rsplit("/", 1)[1],
                "op": op.json()["name"].rsplit("/", 1)[1],
            }
        yield server, keys, real
    finally:
        server.stop()


def counts(server: Server) -> dict[str, object]:
    with sqlite3.connect(server.data_dir / "automill.db") as db:
        out: dict[str, object] = {
            t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608 - t: one of COUNTED, table names
            for t in COUNTED
        }
        out["datasets_rows"] = db.execute(
            "SELECT id, project, display_name, description, etag FROM datasets ORDER BY id"
        ).fetchall()
        out["operations_rows"] = db.execute("SELECT id, state, cancel_requested FROM operations ORDER BY id").fetchall()
        return out


def call(server: Server, version: str, method: str, path: str, key: str | None) -> requests.Response:
    headers = {"x-goog-api-key": key} if key else {}
    body = {"timeout": "0s"} if path.endswith(":wait") else ({} if method in ("POST", "PATCH") else None)
    return requests.request(method, f"{server.endpoint}/{version}/{path}", headers=headers, json=body, timeout=30)


def test_every_rpc_every_role_every_project(world) -> None:  # type: ignore[no-untyped-def]
    server, keys, real = world
    todo = cases()
    assert {rpc for _, rpc, _ in todo} == set(EXPECTED), "an expected RPC has no route"
    assert len(todo) == 60

    def path(rpc: str, project: str) -> str:
        return EXPECTED[rpc][1].format(p=project, **real[project])

    # -- every denied call first: 403, nothing changes ---------------------------------------------------
    before = counts(server)
    denied = 0
    for version, rpc, method in todo:
        for role in ROLES:
            for project in (OWN, OTHER):
                if role in EXPECTED[rpc][2] and project == OWN:
                    continue
                r = call(server, version, method, path(rpc, project), keys[role])
                assert r.status_code == 403, f"{role}@{OWN} {version} {rpc} on {project}: {r.status_code} {r.text}"
                err = r.json()["error"]
                assert err["status"] == "PERMISSION_DENIED" and "(or it may not exist)" in err["message"]
                denied += 1
        # No key, and a wrong key: 401 before anything else.
        wrong = keys["admin"][:-3] + ("abc" if not keys["admin"].endswith("abc") else "xyz")
        for key in (None, wrong):
            r = call(server, version, method, path(rpc, OWN), key)
            assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED", (version, rpc, r.text)
            denied += 1
    assert counts(server) == before, "a refused call changed the database"

    # The same refusal whether the id is real or not (another project's real dataset and operation).
    for rpc in ("GetDataset", "DeleteDataset", "ImportData", "GetOperation", "CancelOperation"):
        real_path = path(rpc, OTHER)
        fake_path = EXPECTED[rpc][1].format(p=OTHER, ds="TCN4242", op="TCN4343")
        a = call(server, "v1", EXPECTED[rpc][0], real_path, keys["editor"]).json()["error"]
        b = call(server, "v1", EXPECTED[rpc][0], fake_path, keys["editor"]).json()["error"]

        def strip(e: dict[str, Any], p: str) -> tuple[Any, Any, Any]:
            return e["code"], e["status"], e["message"].replace(p.split(":")[0], "NAME")

        assert strip(a, real_path) == strip(b, fake_path)
        denied += 2
    # A real id of another project under one's own project name is simply not there (404), as before.
    r = call(server, "v1", "GET", f"projects/{OWN}/locations/l/datasets/{real[OTHER]['ds']}", keys["admin"])
    assert r.status_code == 404

    with sqlite3.connect(server.data_dir / "automill.db") as db:
        logged = db.execute("SELECT COUNT(*) FROM audit_log WHERE http_status IN (401, 403)").fetchone()[0]
        sample = db.execute(
            "SELECT key_name, project, method, http_method, resource, http_status, status FROM audit_log "
            "WHERE key_name = 'viewer-pa' AND method = 'DeleteDataset' AND project = ?",
            (OTHER,),
        ).fetchall()
    assert logged == denied
    assert sample and sample[0] == (
        "viewer-pa",
        OTHER,
        "DeleteDataset",
        "DELETE",
        f"projects/{OTHER}/locations/l/datasets/{real[OTHER]['ds']}",
        403,
        "PERMISSION_DENIED",
    )

    # -- every allowed call passes the door (its own answer may be 400 or 404 for the dummy ids) -------
    for version, rpc, method in todo:
        for role in sorted(EXPECTED[rpc][2]):
            r = call(server, version, method, path(rpc, OWN), keys[role])
            assert r.status_code not in (401, 403), f"{role} {version} {rpc}: {r.status_code} {r.text}"
    # A key for every project ('*') reaches any project.
    for version, rpc, method in todo:
        r = call(server, version, method, path(rpc, OTHER), keys["root"])
        assert r.status_code not in (401, 403), f"root {version} {rpc}: {r.status_code} {r.text}"
