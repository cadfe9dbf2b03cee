"""Issue 24, authentication: API keys made with `automill keys create`, used by the official client as an API
key and as a bearer token against a real server; the secure default; revoke and expiry; the audit log.

The keys are created by the CLI on the database the running server uses (``--data-dir``): a running server
notices the first key at once, and a revoke within seconds.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import automl_v1, automl_v1beta1
from google.oauth2.credentials import Credentials

from tests.conftest import Server, free_port, serving

PROJECT = "auth"
PARENT = f"projects/{PROJECT}/locations/us-central1"
KEY_RE = re.compile(r"^am_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


def automill(*args: str, code: int = 0, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AUTOMILL_")}, "COLUMNS": str(columns)}
    proc = subprocess.run(
        [sys.executable, "-m", "automill", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == code, f"{args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def create_key(data_dir: Path, *args: str) -> str:
    out = automill("keys", "create", *args, "--data-dir", str(data_dir))
    lines = out.stdout.splitlines()
    assert lines and KEY_RE.match(lines[-1]), out.stdout
    assert out.stdout.count(lines[-1]) == 1 and lines[-1] not in out.stderr  # printed once, alone on the last line
    return lines[-1]


def http(
    srv: Server, method: str, path: str, key: str | None = None, *, bearer: bool = False, body: Any = None
) -> requests.Response:
    headers = {}
    if key is not None:
        headers = {"Authorization": f"Bearer {key}"} if bearer else {"x-goog-api-key": key}
    return requests.request(method, f"{srv.endpoint}/v1/{path}", headers=headers, json=body, timeout=30)


def clients(
    version: str, endpoint: str, *, api_key: str | None = None, token: str | None = None
) -> tuple[Any, Any, Any]:
    mod = {"v1": automl_v1, "v1beta1": automl_v1beta1}[version]
    if api_key is not None:
        opts = ClientOptions(api_endpoint=endpoint, api_key=api_key)
        return (
            mod,
            mod.AutoMlClient(transport="rest", client_options=opts),
            mod.PredictionServiceClient(transport="rest", client_options=opts),
        )
    opts = ClientOptions(api_endpoint=endpoint)
    creds = Credentials(token=token) if token is not None else AnonymousCredentials()
    return (
        mod,
        mod.AutoMlClient(transport="rest", credentials=creds, client_options=opts),
        mod.PredictionServiceClient(transport="rest", credentials=creds, client_options=opts),
    )


def until(check, timeout: float = 10.0) -> Any:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.2)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("auth") / "data") as server:
        yield server


def test_keys_with_the_official_client(srv: Server) -> None:
    # -- no key yet: the loopback server serves its one local user, as before --------------------------
    assert http(srv, "GET", f"{PARENT}/datasets").status_code == 200
    _, anon, _ = clients("v1", srv.endpoint)
    assert list(anon.list_datasets(parent=PARENT)) == []

    key = create_key(srv.data_dir, "--project", PROJECT, "--role", "editor", "--name", "flow", "--expires", "30d")
    listing = automill("keys", "list", "--data-dir", str(srv.data_dir), "-o", "json").stdout
    assert key not in listing and key.split("_", 2)[2] not in listing
    assert [(k["name"], k["project"], k["role"], k["state"]) for k in json.loads(listing)["keys"]] == [
        ("flow", PROJECT, "editor", "active")
    ]
    assert "flow" in automill("keys", "list", "--data-dir", str(srv.data_dir)).stdout

    # -- one key exists: every API request needs one, at once, loopback included -----------------------
    r = http(srv, "GET", f"{PARENT}/datasets")
    assert r.status_code == 401, r.text
    err = r.json()["error"]
    assert err["code"] == 401 and err["status"] == "UNAUTHENTICATED"
    assert "requires an API key" in err["message"] and "x-goog-api-key" in err["message"]
    assert requests.get(f"{srv.endpoint}/healthz", timeout=5).status_code == 200
    with pytest.raises((auth_exc.GoogleAuthError, gexc.Unauthorized)):  # anonymous: the client cannot refresh
        list(anon.list_datasets(parent=PARENT))
    bad = http(srv, "GET", f"{PARENT}/datasets", key[:-2] + ("zz" if not key.endswith("zz") else "yy"))
    assert bad.status_code == 401 and "not valid" in bad.json()["error"]["message"]
    assert http(srv, "GET", f"{PARENT}/datasets", "Basic x").status_code == 401

    # -- the official client with client_options.api_key (x-goog-api-key) ------------------------------
    mod, client, predictor = clients("v1", srv.endpoint, api_key=key)
    ops = client._transport.operations_client
    rows = [
        f'TRAIN,"{w} story {i}",{lab}' for i in range(30) for w, lab in (("goal match", "sport"), ("chip code", "tech"))
    ]
    rows += [
        f'TEST,"{w} item {i}",{lab}' for i in range(8) for w, lab in (("goal match", "sport"), ("chip code", "tech"))
    ]
    folder = srv.bucket_path("auth")
    folder.mkdir(parents=True)
    (folder / "rows.csv").write_text("\n".join(rows) + "\n")
    dataset = client.create_dataset(
        parent=PARENT,
        dataset=mod.Dataset(
            display_name="auth_ds",
            text_classification_dataset_metadata=mod.TextClassificationDatasetMetadata(
                classification_type=mod.ClassificationType.MULTICLASS
            ),
        ),
    ).result(timeout=30)
    client.import_data(name=dataset.name, input_config={"gcs_source": {"input_uris": ["gs://auth/rows.csv"]}}).result(
        timeout=120
    )
    assert client.get_dataset(name=dataset.name).example_count == 76
    # Training with a small budget and the fast model type (Automill's extension fields) over plain HTTP.
    created = http(
        srv,
        "POST",
        f"{PARENT}/models",
        key,
        body={
            "displayName": "auth_model",
            "datasetId": dataset.name.rsplit("/", 1)[1],
            "textClassificationModelMetadata": {"modelType": "mobile-low-latency-1", "trainBudgetMilliNodeHours": "5"},
        },
    )
    assert created.status_code == 200, created.text
    op = until(lambda: (o := ops.get_operation(created.json()["name"])).done and o, timeout=180)
    assert op and not op.HasField("error"), op
    models = list(client.list_models(parent=PARENT))
    assert [m.display_name for m in models] == ["auth_model"]
    model = client.get_model(name=models[0].name)
    client.deploy_model(name=model.name).result(timeout=120)
    got = predictor.predict(
        name=model.name, payload={"text_snippet": {"content": "goal match story 3", "mime_type": "text/plain"}}
    )
    assert got.payload[0].display_name == "sport"

    # -- the same key as a bearer token: google.oauth2.credentials.Credentials(token=KEY) -------------
    mod_b, client_b, predictor_b = clients("v1beta1", srv.endpoint, token=key)
    assert [d.name for d in client_b.list_datasets(parent=PARENT)] == [dataset.name]
    assert client_b.get_model(name=model.name).display_name == "auth_model"
    got_b = predictor_b.predict(
        name=model.name, payload={"text_snippet": {"content": "chip code item 2", "mime_type": "text/plain"}}
    )
    assert got_b.payload[0].display_name == "tech"
    second = client_b.create_dataset(
        parent=PARENT,
        dataset=mod_b.Dataset(
            display_name="bearer_ds",
            text_classification_dataset_metadata=mod_b.TextClassificationDatasetMetadata(
                classification_type=mod_b.ClassificationType.MULTILABEL
            ),
        ),
    )
    assert second.name.startswith(f"{PARENT}/datasets/")
    assert http(srv, "GET", f"{PARENT}/models", key, bearer=True).status_code == 200  # curl -H 'Authorization: Bearer'

    # Operations remember the key that started them (and show it nowhere in the Operation JSON).
    with sqlite3.connect(srv.data_dir / "automill.db") as db:
        started = db.execute("SELECT kind, created_by FROM operations ORDER BY seq").fetchall()
    assert started and all(by == "flow" for _, by in started), started
    assert "flow" not in json.dumps(http(srv, "GET", f"{PARENT}/operations", key).json())

    # -- another project: 403, the same answer whether the resource exists or not ---------------------
    other = dataset.name.replace(f"projects/{PROJECT}/", "projects/elsewhere/")
    a = http(srv, "GET", other, key).json()["error"]
    b = http(srv, "GET", other[:-3] + "999", key).json()["error"]
    assert a["code"] == b["code"] == 403 and a["status"] == "PERMISSION_DENIED"
    assert a["message"].replace(other, "X") == b["message"].replace(other[:-3] + "999", "X")
    with pytest.raises(gexc.Forbidden):
        client.get_dataset(name=other)

    # -- a revoked key is refused within seconds, an expired one at once ------------------------------
    temp = create_key(srv.data_dir, "--project", PROJECT, "--role", "viewer", "--name", "temp")
    assert http(srv, "GET", f"{PARENT}/datasets", temp).status_code == 200
    assert "revoked key temp" in automill("keys", "revoke", "temp", "--data-dir", str(srv.data_dir)).stdout
    # (a list: a Response with an error status is falsy)
    refused = until(
        lambda: [r for r in [http(srv, "GET", f"{PARENT}/datasets", temp)] if r.status_code == 401], timeout=5
    )
    assert refused, "a revoked key still works after 5 s"
    assert "'temp' was revoked" in refused[0].json()["error"]["message"]
    _, revoked_client, _ = clients("v1", srv.endpoint, api_key=temp)
    with pytest.raises(gexc.Unauthorized, match="was revoked"):  # API-key credentials: the server's message
        revoked_client.get_dataset(name=dataset.name)
    _, revoked_bearer, _ = clients("v1", srv.endpoint, token=temp)
    with pytest.raises(auth_exc.RefreshError):  # a bare token cannot be refreshed: google-auth says so
        revoked_bearer.get_dataset(name=dataset.name)
    short = create_key(srv.data_dir, "--project", PROJECT, "--role", "viewer", "--name", "short", "--expires", "3s")
    assert http(srv, "GET", f"{PARENT}/datasets", short).status_code == 200
    time.sleep(3.5)
    gone = http(srv, "GET", f"{PARENT}/datasets", short)
    assert gone.status_code == 401 and "'short' expired" in gone.json()["error"]["message"]
    states = {
        k["name"]: k["state"]
        for k in json.loads(automill("keys", "list", "--data-dir", str(srv.data_dir), "-o", "json").stdout)["keys"]
    }
    assert states == {"flow": "active", "temp": "revoked", "short": "expired"}

    # -- the audit log -----------------------------------------------------------------------------------
    viewer = create_key(srv.data_dir, "--project", PROJECT, "--role", "viewer", "--name", "reader")
    denied = http(srv, "POST", f"{PARENT}/datasets", viewer, body={"displayName": "nope"})
    assert denied.status_code == 403
    entries = json.loads(
        automill(
            "audit",
            "--data-dir",
            str(srv.data_dir),
            "-o",
            "json",
            "--project",
            PROJECT,
            "--since",
            "1h",
            "--limit",
            "500",
        ).stdout
    )["entries"]
    assert entries[0] == {
        **entries[0],
        "key": "reader",
        "project": PROJECT,
        "method": "CreateDataset",
        "httpMethod": "POST",
        "resource": PARENT,
        "httpStatus": 403,
        "status": "PERMISSION_DENIED",
    }
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", entries[0]["time"])
    mine = [(e["key"], e["method"], e["httpStatus"], e["status"]) for e in reversed(entries)]
    assert ("flow", "CreateDataset", 200, "OK") in mine and ("flow", "ImportData", 200, "OK") in mine
    assert ("flow", "DeployModel", 200, "OK") in mine and ("flow", "CreateModel", 200, "OK") in mine
    assert ("anonymous", "ListDatasets", 401, "UNAUTHENTICATED") in mine
    assert ("temp", "ListDatasets", 401, "UNAUTHENTICATED") in mine and (
        "short",
        "ListDatasets",
        401,
        "UNAUTHENTICATED",
    ) in mine
    assert ("flow", "GetDataset", 403, "PERMISSION_DENIED") in [
        (e["key"], e["method"], e["httpStatus"], e["status"])
        for e in json.loads(
            automill("audit", "--data-dir", str(srv.data_dir), "--project", "elsewhere", "-o", "json").stdout
        )["entries"]
    ]
    assert not any(m == "Predict" or m == "ListModels" for _, m, _, s in mine if s == "OK")  # reads are not logged
    assert (
        json.loads(automill("audit", "--data-dir", str(srv.data_dir), "-o", "json", "--limit", "1").stdout)["entries"]
        == entries[:1]
    )
    table = automill("audit", "--data-dir", str(srv.data_dir), "--limit", "3", columns=160).stdout
    assert "reader   CreateDataset   403 PERMISSION_DENIED   projects/auth/locations/us-central1" in table, table
    # No secret anywhere: not in the database (hashes only), not in the server's log.
    stored = b"".join(p.read_bytes() for p in srv.data_dir.glob("automill.db*"))
    log = srv.log()
    for secret in (key, temp, short, viewer):
        assert secret.encode() not in stored and secret.split("_", 2)[2].encode() not in stored
        assert secret not in log and secret.split("_", 2)[2] not in log


def _serve(data_dir: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMILL_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "automill",
            "serve",
            "--host",
            "0.0.0.0",  # noqa: S104 - the test checks how the server treats a wildcard bind
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            "0",
            *extra,
        ],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.stdout.read() if proc.stdout else ""


def test_non_loopback_server_needs_a_key_or_insecure(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # No key: refuses to start on 0.0.0.0, quickly, without ever listening.
    port = free_port()
    proc = _serve(data, port)
    try:
        seen_listening = False
        end = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < end:
            seen_listening = seen_listening or _listening(port)
            time.sleep(0.05)
        assert proc.poll() is not None, "the server did not exit"
    finally:
        out = _stop(proc)
    assert proc.returncode != 0 and not seen_listening and not _listening(port)
    assert "refusing to serve 0.0.0.0" in out and "automill keys create" in out and "--insecure" in out, out

    # --insecure: starts, says so loudly, serves anyone.
    port = free_port()
    proc = _serve(data, port, "--insecure")
    try:
        assert until(lambda: _healthy(port) or proc.poll() is not None, timeout=60) and proc.poll() is None
        assert requests.get(f"http://127.0.0.1:{port}/v1/{PARENT}/datasets", timeout=5).status_code == 200
    finally:
        out = _stop(proc)
    assert re.search(r"WARNING automill: INSECURE: serving 0\.0\.0\.0 without API keys", out), out

    # Once a key exists, 0.0.0.0 starts without --insecure and every API request needs the key.
    key = create_key(data, "--project", "*", "--role", "admin")
    port = free_port()
    proc = _serve(data, port)
    try:
        assert until(lambda: _healthy(port) or proc.poll() is not None, timeout=60) and proc.poll() is None
        url = f"http://127.0.0.1:{port}/v1/{PARENT}/datasets"
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, headers={"x-goog-api-key": key}, timeout=5).status_code == 200
    finally:
        out = _stop(proc)
    assert "INSECURE" not in out and key not in out
