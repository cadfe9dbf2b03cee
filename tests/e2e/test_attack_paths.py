"""Attack paths through a real server: bucket names that reach the data folder, a named pipe in a
bucket, output prefixes the storage cannot hold. One server per database for the whole file."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, Server
from tests.e2e.rest import Rest

ROWS = [
    f'TRAIN,"message number {i} about {"cats" if i % 2 else "dogs"}",{"cat" if i % 2 else "dog"}' for i in range(12)
]


@contextmanager
def database(kind: str) -> Iterator[str]:
    """ "" for SQLite in the data dir, or a fresh PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield ""
        return
    import psycopg

    name = f"automill_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with database(request.param) as url:
        server = Server(data_dir=tmp_path_factory.mktemp(f"attack-{request.param}") / "data", database_url=url)
        server.data_dir.mkdir()
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def dataset(srv: Server) -> str:
    """A dataset with a few rows, so that an export has something to write."""
    api = Rest(srv.endpoint)
    name = api.create_text_dataset("attack_paths")
    assert "error" not in import_(api, name, write(srv, "good.csv", "\n".join(ROWS) + "\n")), "setup import failed"
    return name


def write(server: Server, key: str, text: str) -> str:
    path = server.bucket_path("work") / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return f"gs://work/{key}"


def import_(api: Rest, dataset: str, *uris: str, timeout: float = 120) -> dict[str, Any]:
    op = api.call("POST", f"{dataset}:importData", {"inputConfig": {"gcsSource": {"inputUris": list(uris)}}})
    return api.wait(op, timeout)


def export(api: Rest, dataset: str, prefix: str, expect: int = 200) -> dict[str, Any]:
    return api.call(
        "POST",
        f"{dataset}:exportData",
        {"outputConfig": {"gcsDestination": {"outputUriPrefix": prefix}}},
        expect=expect,
    )


def files_under(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` and its size, but the database's and the server log's own, which change."""
    out = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.startswith(("automill.db", "server-")):
            out[str(path.relative_to(folder))] = path.stat().st_size
    return out


def messages(op: dict[str, Any]) -> list[str]:
    return [op.get("error", {}).get("message", "")] + [
        f["message"] for f in op.get("metadata", {}).get("partialFailures", [])
    ]


def assert_no_server_path(server: Server, texts: list[str]) -> None:
    for text in texts:
        assert str(server.data_dir) not in text and "/tmp" not in text, text


def test_bucket_names_cannot_reach_the_data_folder(srv: Server, dataset: str) -> None:
    api = Rest(srv.endpoint)
    (srv.data_dir / "models" / "m1").mkdir(parents=True, exist_ok=True)
    (srv.data_dir / "models" / "m1" / "model.json").write_text('{"secret": 1}')
    before, count = files_under(srv.data_dir), api.call("GET", dataset).get("exampleCount")
    for uri in ["gs://../automill.db", "gs://../models/*/model.json", "gs://../media/ab/x.png", "gs://./automill.db"]:
        err = api.call(
            "POST", f"{dataset}:importData", {"inputConfig": {"gcsSource": {"inputUris": [uri]}}}, expect=400
        )["error"]
        assert err["status"] == "INVALID_ARGUMENT" and uri in err["message"] and "bucket name" in err["message"]
        assert_no_server_path(srv, [err["message"]])
    for prefix in ["gs://../x", "gs://../models/m1", "gs://../buckets/work/y"]:
        err = export(api, dataset, prefix, expect=400)["error"]
        assert err["status"] == "INVALID_ARGUMENT" and prefix in err["message"]
    time.sleep(1)  # a queued job (there should be none) would have run by now
    assert files_under(srv.data_dir) == before
    assert not (srv.data_dir / "x").exists() and not (srv.data_dir / "buckets" / "work" / "y").exists()
    assert api.call("GET", dataset).get("exampleCount") == count


def test_export_to_a_prefix_the_storage_cannot_hold(srv: Server, dataset: str) -> None:
    api = Rest(srv.endpoint)
    write(srv, "out", "I am a file, not a folder\n")
    op = api.wait(export(api, dataset, "gs://work/out"), 60)
    assert op["error"]["code"] == 9, op  # FAILED_PRECONDITION
    assert "gs://work/out is a file, not a folder" in op["error"]["message"]
    long_prefix = f"gs://work/exports/{'s' * 300}"
    op = api.wait(export(api, dataset, long_prefix), 60)
    assert op["error"]["code"] == 3, op  # INVALID_ARGUMENT
    assert long_prefix in op["error"]["message"] and "255 bytes" in op["error"]["message"]
    assert (srv.bucket_path("work") / "out").read_text() == "I am a file, not a folder\n"
    ops = api.call("GET", "projects/curl/locations/us-central1/operations").get("operations", [])
    assert_no_server_path(srv, [m for o in ops for m in messages(o)])


def test_import_from_a_named_pipe_fails_at_once(srv: Server, dataset: str) -> None:
    api = Rest(srv.endpoint)
    work = srv.bucket_path("work")
    os.mkfifo(work / "pipe.csv")
    os.mkfifo(work / "pipe.txt")
    started = time.monotonic()
    op = import_(api, dataset, "gs://work/pipe.csv", timeout=15)
    assert op["error"]["code"] == 3, op  # INVALID_ARGUMENT
    assert op["error"]["message"] == "gs://work/pipe.csv is not a regular file"
    # a row that names a pipe is a partial failure; the good rows import
    rows = [*ROWS, "TRAIN,gs://work/pipe.txt,cat"]
    op = import_(api, dataset, write(srv, "with_pipe.csv", "\n".join(rows) + "\n"), timeout=15)
    assert "error" not in op, op
    failures = messages(op)[1:]
    assert len(failures) == 1 and "gs://work/pipe.txt is not a regular file" in failures[0]
    assert time.monotonic() - started < 20
    assert_no_server_path(srv, messages(op))
