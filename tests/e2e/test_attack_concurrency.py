"""Races and probes against a real server: simultaneous requests on one resource are serialized.

Each test fires the same request from many threads at once (a barrier lines them up) against a
real ``automill serve`` on SQLite and on PostgreSQL, then checks the answers and the database.
One small text model is trained per database; the model tests work on copies of it (a copied
artifact folder and a copied row), so each race has a fresh, loadable model.
"""

from __future__ import annotations

import itertools
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from automill.store.db import Database, new_etag, next_number, utcnow
from automill.store.tables import ModelRow, OperationRow
from tests.conftest import POSTGRES_ADMIN_URL, Server
from tests.e2e.rest import PARENT, Rest

#: The atomic checks rest on the database's locking: both databases in the default run.
POSTGRES_IN_DEFAULT_RUN = True

THREADS = 12
ROUNDS = 3
DEPLOY_ROUNDS = 10
MIXED_ROUNDS = 6
IMPORT_ROUNDS = 6
ROWS = [
    f'TRAIN,"message number {i} about {"cats purring" if i % 2 else "dogs barking"}",{"cat" if i % 2 else "dog"}'
    for i in range(40)
] + [f'TEST,"test message {i} about {"cats" if i % 2 else "dogs"}",{"cat" if i % 2 else "dog"}' for i in range(10)]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per database for the whole module (the trained model is shared by the tests)."""
    url, pg_name = "", ""
    if request.param == "postgres":
        import psycopg

        pg_name = f"automill_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{pg_name}"
    data_dir = tmp_path_factory.mktemp("data")
    server = Server(data_dir=data_dir, database_url=url, text_budget=5).start()
    server.db = Database(url or f"sqlite:///{data_dir / 'automill.db'}")  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()
        server.db.dispose()  # type: ignore[attr-defined]
        if pg_name:
            import psycopg

            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run the calls in threads released together; answers in call order."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, requests.Response) for r in out), out
    return out


def http(srv: Server, method: str, path: str, body: Any = None) -> Callable[[], requests.Response]:
    return lambda: requests.request(method, f"{srv.endpoint}/v1/{path}", json=body, timeout=60)


def statuses(answers: list[requests.Response]) -> Counter[int]:
    return Counter(r.status_code for r in answers)


def assert_errors(answers: list[requests.Response], code: int, status: str, *words: str) -> None:
    for r in answers:
        if r.status_code != 200:
            err = r.json()["error"]
            assert (err["code"], err["status"]) == (code, status), r.text
            assert all(w in err["message"] for w in words), r.text


def count_ops(srv: Server, kind: str, works_on: str) -> int:
    with srv.db.tx() as s:  # type: ignore[attr-defined]
        q = (
            select(func.count())
            .select_from(OperationRow)
            .where(OperationRow.kind == kind, OperationRow.works_on == works_on)
        )
        return int(s.execute(q).scalar_one())


def write_csv(srv: Server, name: str) -> str:
    path = srv.bucket_path("race") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(ROWS) + "\n")
    return f"gs://race/{name}"


def dataset_with_rows(api: Rest, srv: Server, parent: str = PARENT) -> str:
    op = api.call(
        "POST",
        f"{parent}/datasets",
        {"displayName": "race", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    dataset = api.wait(op)["response"]["name"]
    imp = api.call(
        "POST", f"{dataset}:importData", {"inputConfig": {"gcsSource": {"inputUris": [write_csv(srv, "a.csv")]}}}
    )
    assert "error" not in api.wait(imp)
    return dataset


@pytest.fixture(scope="module")
def model(srv: Server) -> str:
    """One trained text model per database (a 5 milli-node-hour budget: about 20 s)."""
    api = Rest(srv.endpoint)
    dataset = dataset_with_rows(api, srv)
    op = api.call(
        "POST",
        f"{PARENT}/models",
        {
            "displayName": "race_model",
            "datasetId": dataset.rsplit("/", 1)[-1],
            "textClassificationModelMetadata": {"trainBudgetMilliNodeHours": "5"},
        },
    )
    done = api.wait(op, timeout=180)
    assert "error" not in done, done
    return str(done["response"]["name"])


def clone(srv: Server, name: str) -> str:
    """A copy of the model (row and files) under a new ID, so each race deletes a fresh model."""
    with srv.db.tx() as s:  # type: ignore[attr-defined]
        src = s.get(ModelRow, name.rsplit("/", 1)[-1])
        n = next_number(s, "model")
        new_id = f"{src.id[:3]}{10**18 + n}"
        target = Path(src.artifact_dir).with_name(new_id)
        shutil.copytree(src.artifact_dir, target)
        now = utcnow()
        values = {c.key: getattr(src, c.key) for c in ModelRow.__table__.columns}
        values.update(
            id=new_id,
            seq=n,
            artifact_dir=str(target),
            create_time=now,
            update_time=now,
            etag=new_etag(new_id, now),
            deployment_state="UNDEPLOYED",
        )
        s.add(ModelRow(**values))
    return name.rsplit("/", 1)[0] + "/" + new_id


# -- datasets -------------------------------------------------------------------------------------------
def test_simultaneous_imports_never_overlap(srv: Server) -> None:
    api = Rest(srv.endpoint)
    op = api.call(
        "POST",
        f"{PARENT}/datasets",
        {"displayName": "imports", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    dataset = api.wait(op)["response"]["name"]
    body = {"inputConfig": {"gcsSource": {"inputUris": [write_csv(srv, "imports.csv")]}}}
    accepted = 0
    for _ in range(IMPORT_ROUNDS):
        answers = at_once([http(srv, "POST", f"{dataset}:importData", body)] * 16)
        assert_errors(answers, 400, "FAILED_PRECONDITION", "already has a import_data operation running")
        ops = [r.json() for r in answers if r.status_code == 200]
        assert ops, [r.text for r in answers]
        for op in ops:
            assert "error" not in api.wait(op)
        accepted += len(ops)
    rows = op_row(srv, "import_data", dataset)
    assert len(rows) == accepted
    # One import at a time: each was accepted only after the one before it had ended. (A straggler
    # request of a round may legitimately start a new import once the round's import is done.)
    for before, after in itertools.pairwise(rows):
        assert after.created_at > before.updated_at, f"{before.id} and {after.id} ran at the same time"


def test_simultaneous_dataset_deletes_succeed_once(srv: Server) -> None:
    api = Rest(srv.endpoint)
    for _ in range(ROUNDS):
        dataset = dataset_with_rows(api, srv)
        answers = at_once([http(srv, "DELETE", dataset)] * THREADS)
        assert statuses(answers) == {200: 1, 404: THREADS - 1}, [r.text for r in answers]
        assert_errors(answers, 404, "NOT_FOUND", f"Dataset does not exist. ({dataset})")
        assert count_ops(srv, "delete_dataset", dataset) == 1
        api.call("GET", dataset, expect=404)


def test_dataset_delete_waits_for_imports(srv: Server) -> None:
    """An import is never queued for a deleted dataset; a delete never runs under an import."""
    api = Rest(srv.endpoint)
    body = {"inputConfig": {"gcsSource": {"inputUris": [write_csv(srv, "both.csv")]}}}
    for _ in range(MIXED_ROUNDS):
        op = api.call(
            "POST",
            f"{PARENT}/datasets",
            {"displayName": "both", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
        )
        dataset = api.wait(op)["response"]["name"]
        half = THREADS // 2
        answers = at_once(
            [http(srv, "POST", f"{dataset}:importData", body)] * half + [http(srv, "DELETE", dataset)] * half
        )
        for r in answers:
            assert r.status_code == 200 or r.json()["error"]["status"] in ("NOT_FOUND", "FAILED_PRECONDITION"), r.text
        imports = [r.json() for r in answers[:half] if r.status_code == 200]
        deletes = [r for r in answers[half:] if r.status_code == 200]
        assert len(deletes) <= 1 and imports + deletes, [r.text for r in answers]
        for imp in imports:
            api.wait(imp)
        if not deletes:  # refused while the import ran: it is allowed now
            api.call("DELETE", dataset)
        (deleted,) = op_row(srv, "delete_dataset", dataset)
        for row in op_row(srv, "import_data", dataset):  # a quick import may end before a straggling delete
            assert row.updated_at < deleted.created_at, f"import {row.id} ran while {dataset} was deleted"


# -- models ---------------------------------------------------------------------------------------------
def test_simultaneous_model_deletes_succeed_once(srv: Server, model: str) -> None:
    api = Rest(srv.endpoint)
    for _ in range(ROUNDS):
        name = clone(srv, model)
        answers = at_once([http(srv, "DELETE", name)] * THREADS)
        assert statuses(answers) == {200: 1, 404: THREADS - 1}, [r.text for r in answers]
        assert_errors(answers, 404, "NOT_FOUND", f"The model does not exist. ({name})")
        assert count_ops(srv, "delete_model", name) == 1
        api.call("GET", name, expect=404)


def op_row(srv: Server, kind: str, works_on: str) -> list[OperationRow]:
    with srv.db.tx() as s:  # type: ignore[attr-defined]
        return list(
            s.execute(
                select(OperationRow)
                .where(OperationRow.kind == kind, OperationRow.works_on == works_on)
                .order_by(OperationRow.seq)
            ).scalars()
        )


def assert_deploys_ended_before_or_by_delete(api: Rest, srv: Server, name: str) -> None:
    """Every deploy of a deleted model either finished before the delete began, or was ended by it:
    NOT_FOUND "was deleted while it was being deployed" or CANCELLED, naming no server path."""
    (deleted,) = op_row(srv, "delete_model", name)
    for op in op_row(srv, "deploy_model", name):
        done = api.wait({"name": f"{PARENT}/operations/{op.id}"}, timeout=60)
        err = done.get("error")
        if err is None:  # a load this quick is legitimate only if it ended before the delete committed
            (row,) = [r for r in op_row(srv, "deploy_model", name) if r.id == op.id]
            assert row.updated_at < deleted.created_at, f"deploy of deleted model {name} succeeded: {done}"
            continue
        assert str(srv.data_dir) not in err["message"], err
        if err["code"] == 5:
            assert err["message"] == f"model {name} was deleted while it was being deployed", err
        else:
            assert err["code"] == 1, err


def test_deploy_and_delete_are_serialized(srv: Server, model: str) -> None:
    api = Rest(srv.endpoint)
    # Deploy after delete: NOT_FOUND, nothing queued.
    name = clone(srv, model)
    api.call("DELETE", name)
    err = api.call("POST", f"{name}:deploy", {}, expect=404)["error"]
    assert err["status"] == "NOT_FOUND" and err["message"] == f"The model does not exist. ({name})"
    assert count_ops(srv, "deploy_model", name) == 0

    # Deploys and a delete at once: a deploy is refused (404), or ends before or by the delete.
    for _ in range(DEPLOY_ROUNDS):
        name = clone(srv, model)
        answers = at_once([http(srv, "POST", f"{name}:deploy", {})] * 4 + [http(srv, "DELETE", name)])
        assert answers[-1].status_code == 200, answers[-1].text
        for r in answers[:-1]:
            assert r.status_code in (200, 404), r.text
            if r.status_code == 404:
                assert r.json()["error"]["message"] == f"The model does not exist. ({name})", r.text
        assert count_ops(srv, "deploy_model", name) == statuses(answers[:-1])[200]
        assert_deploys_ended_before_or_by_delete(api, srv, name)
        api.call("GET", name, expect=404)


def test_base_model_of_another_project_is_not_found(srv: Server, model: str) -> None:
    api = Rest(srv.endpoint)
    other = "projects/other/locations/us-central1"
    dataset_id = dataset_with_rows(api, srv, other).rsplit("/", 1)[-1]

    def create(base_id: str) -> dict[str, Any]:
        resp = requests.post(
            f"{srv.endpoint}/v1/{other}/models",
            timeout=30,
            json={
                "displayName": "probe",
                "datasetId": dataset_id,
                "textClassificationModelMetadata": {"trainBudgetMilliNodeHours": "5", "baseModelId": base_id},
            },
        )
        return {"http": resp.status_code, **resp.json()}

    owned_id = model.rsplit("/", 1)[-1]
    unknown_id = f"{owned_id[:3]}{10**18 + 999_999}"
    owned, unknown = create(owned_id), create(unknown_id)
    assert unknown["http"] == 404 and unknown["error"]["message"] == f"base model {unknown_id} not found"
    # Another project's model answers exactly like an unknown one: no owner, no different code.
    assert owned == {**unknown, "error": {**unknown["error"], "message": f"base model {owned_id} not found"}}
    assert "curl" not in str(owned)


def test_base_model_without_files_names_no_path(srv: Server, model: str) -> None:
    api = Rest(srv.endpoint)
    dataset_id = dataset_with_rows(api, srv).rsplit("/", 1)[-1]
    base = clone(srv, model)
    base_id = base.rsplit("/", 1)[-1]
    with srv.db.tx() as s:  # type: ignore[attr-defined]
        (Path(s.get(ModelRow, base_id).artifact_dir) / "model.json").unlink()
    err = api.call(
        "POST",
        f"{PARENT}/models",
        {
            "displayName": "resumed",
            "datasetId": dataset_id,
            "textClassificationModelMetadata": {"trainBudgetMilliNodeHours": "5", "baseModelId": base_id},
        },
        expect=400,
    )["error"]
    assert err["status"] == "FAILED_PRECONDITION" and err["message"] == f"base model {base_id} has no model files", err
    assert str(srv.data_dir) not in str(err)
