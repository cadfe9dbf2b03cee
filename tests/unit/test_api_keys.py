"""API keys (services.keys), roles (services.access) and the door (api.app) in process, on a real SQLite file."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from automill.api.app import create_app, credential
from automill.core.durations import ago_or_time, later_or_time, parse_duration
from automill.core.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from automill.services import keys as keymod
from automill.services.access import ANONYMOUS, PERMISSIONS, ROLES, Principal, authorize
from automill.services.keys import (
    Authenticator,
    create_key,
    hash_key,
    keys_exist,
    list_keys,
    new_key,
    parse_key,
    revoke_key,
    verify_key,
)
from automill.settings import Settings
from automill.store.db import Database, utcnow
from automill.store.tables import ApiKeyRow, AuditRow, OperationRow


@pytest.fixture
def db(tmp_path: Path) -> Database:
    d = Database(f"sqlite:///{tmp_path / 'automill.db'}")
    d.migrate()
    return d


# -- the format and the hash ---------------------------------------------------------------------------
def test_key_format() -> None:
    key_id, key = new_key()
    assert re.fullmatch(r"am_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key), key
    assert key.startswith(f"am_{key_id}_") and parse_key(key) == key_id
    assert len({new_key()[1] for _ in range(50)}) == 50
    for bad in (
        "",
        "am_",
        key[:-1],
        key + "x",
        key.replace("am_", "AM_"),
        "Bearer " + key,
        key.upper(),
        f"am_{key_id}_{'a' * 42}!",
    ):
        assert parse_key(bad) is None, bad


def test_hash_is_salted_scrypt_and_verifies_only_the_key() -> None:
    _, key = new_key()
    h1, h2 = hash_key(key), hash_key(key)
    assert h1 != h2  # a fresh salt each time
    algo, n, r, p, salt, digest = h1.split("$")
    assert (algo, n, r, p) == ("scrypt", "16384", "8", "1") and len(salt) >= 20 and len(digest) >= 40
    assert key not in h1 and key.split("_", 2)[2] not in h1
    assert verify_key(key, h1) and verify_key(key, h2)
    _, other = new_key()
    assert not verify_key(other, h1)
    assert not verify_key(key[:-1] + ("A" if key[-1] != "A" else "B"), h1)
    for broken in ("", "scrypt$1$2", "bcrypt$16384$8$1$aa$bb", h1.replace("scrypt", "md5"), "scrypt$x$8$1$aa$bb"):
        assert not verify_key(key, broken)


def test_durations() -> None:
    now = utcnow()
    assert parse_duration("30d") == timedelta(days=30) and parse_duration("90m") == timedelta(minutes=90)
    assert later_or_time("12h", now) == now + timedelta(hours=12)
    assert ago_or_time("1h", now) == now - timedelta(hours=1)
    assert ago_or_time("2026-12-01T10:00:00Z", now).isoformat() == "2026-12-01T10:00:00"
    assert ago_or_time("2026-12-01T11:00:00+01:00", now).isoformat() == "2026-12-01T10:00:00"
    for bad in ("0d", "-1h", "30", "1y", "soon"):
        with pytest.raises(InvalidArgument):
            later_or_time(bad, now)


# -- the table -----------------------------------------------------------------------------------------
def test_create_list_revoke(db: Database) -> None:
    assert not keys_exist(db)
    info, key = create_key(db, project="p1", role="viewer", name="ci", expires_at=utcnow() + timedelta(days=1))
    assert keys_exist(db) and info.name == "ci" and parse_key(key) == info.key_id
    with db.tx() as s:
        row = s.query(ApiKeyRow).one()
        assert key not in json.dumps([str(getattr(row, c.name)) for c in ApiKeyRow.__table__.columns])
    with pytest.raises(AlreadyExists):
        create_key(db, project="p1", role="viewer", name="ci")
    for bad in ({"role": "owner"}, {"project": "a/b"}, {"name": "no spaces"}, {"project": ""}):
        with pytest.raises(InvalidArgument):
            create_key(db, **{"project": "p", "role": "viewer", **bad})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        create_key(db, project="p", role="viewer", expires_at=utcnow() - timedelta(seconds=1))
    star, _ = create_key(db, project="*", role="admin")
    assert star.name == f"key-{star.key_id}"
    assert [k.name for k in list_keys(db)] == ["ci", star.name]
    assert revoke_key(db, "ci")[1] and not revoke_key(db, "ci")[1]
    assert list_keys(db)[0].state(utcnow()) == "revoked"
    with pytest.raises(NotFound):
        revoke_key(db, "nope")
    assert keys_exist(db)  # revoked keys still count: revoking every key does not reopen the server


# -- the request check ---------------------------------------------------------------------------------
def test_keyless_server_is_open_only_when_allowed(db: Database) -> None:
    assert Authenticator(db, open_when_keyless=True).authenticate(None) is ANONYMOUS
    assert Authenticator(db, open_when_keyless=True).authenticate("am_whatever") is ANONYMOUS
    with pytest.raises(Unauthenticated, match="no API keys yet"):
        Authenticator(db, open_when_keyless=False).authenticate(None)


def test_authenticate_caches_the_kdf_and_sees_revokes(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = Authenticator(db, open_when_keyless=True)
    assert auth.authenticate(None) is ANONYMOUS
    _, key = create_key(db, project="p1", role="editor", name="ci")
    with pytest.raises(Unauthenticated, match="requires an API key"):
        auth.authenticate(None)  # a key exists now: the open door closed without a restart
    calls: list[str] = []
    real = keymod.verify_key
    monkeypatch.setattr(keymod, "verify_key", lambda k, h: calls.append(k) or real(k, h))
    for _ in range(5):
        assert auth.authenticate(key) == Principal(name="ci", role="editor", project="p1")
    assert len(calls) == 1  # the slow KDF ran once
    monkeypatch.setattr(keymod, "RECHECK_SECONDS", 0.0)
    assert auth.authenticate(key).name == "ci" and len(calls) == 1  # re-read the row, no KDF
    for bad in ("", "nonsense", key[:-1] + ("x" if key[-1] != "x" else "y"), f"am_{'0' * 12}_{key[-43:]}"):
        with pytest.raises(Unauthenticated, match="not valid"):
            auth.authenticate(bad)
    revoke_key(db, "ci")
    with pytest.raises(Unauthenticated, match="'ci' was revoked"):
        auth.authenticate(key)
    with db.tx() as s:
        assert s.query(ApiKeyRow).one().last_used_at is not None


def test_expired_key_is_refused(db: Database) -> None:
    _, key = create_key(db, project="p1", role="viewer", name="short", expires_at=utcnow() + timedelta(seconds=30))
    auth = Authenticator(db, open_when_keyless=False)
    assert auth.authenticate(key).name == "short"
    with db.tx() as s:
        s.query(ApiKeyRow).update({ApiKeyRow.expires_at: utcnow() - timedelta(seconds=1)})
    keymod.RECHECK_SECONDS, old = 0.0, keymod.RECHECK_SECONDS
    try:
        with pytest.raises(Unauthenticated, match="'short' expired"):
            auth.authenticate(key)
    finally:
        keymod.RECHECK_SECONDS = old


def test_credential_headers() -> None:
    assert credential({}) is None
    assert credential({"x-goog-api-key": " k "}) == "k"
    assert credential({"authorization": "Bearer k"}) == "k" and credential({"authorization": "bearer  k"}) == "k"
    assert credential({"authorization": "Basic dXNlcjpw"}) == ""
    assert credential({"x-goog-api-key": "a", "authorization": "Bearer b"}) == "a"


# -- roles ---------------------------------------------------------------------------------------------
def test_roles() -> None:
    assert ROLES["editor"] == PERMISSIONS and ROLES["admin"] > PERMISSIONS
    assert all(p.endswith((".get", ".list")) for p in ROLES["viewer"])
    assert {"automl.operations.get", "automl.operations.list", "automl.models.get"} <= ROLES["viewer"]
    assert ROLES["predictor"] == {"automl.models.predict", "automl.models.get"}
    viewer = Principal("v", "viewer", "p1")
    authorize(viewer, "automl.datasets.get", "p1", "projects/p1/locations/l/datasets/X")
    with pytest.raises(PermissionDenied) as own:
        authorize(viewer, "automl.datasets.delete", "p1", "projects/p1/locations/l/datasets/X")
    with pytest.raises(PermissionDenied) as other:
        authorize(viewer, "automl.datasets.get", "p2", "projects/p2/locations/l/datasets/X")
    assert "(or it may not exist)" in own.value.message and "(or it may not exist)" in other.value.message
    authorize(Principal("a", "admin", "*"), "automl.datasets.delete", "p2", "x")
    with pytest.raises(PermissionDenied):
        authorize(Principal("a", "admin", "*"), "automl.typo.get", "p2", "x")


# -- the door, in process ------------------------------------------------------------------------------
def test_door_in_process(tmp_path: Path, db: Database) -> None:
    from automill.services.container import Services

    settings = Settings.from_env(data_dir=tmp_path, workers=0)
    services = Services(settings, db=db)
    client = TestClient(create_app(services), base_url="http://127.0.0.1")
    parent = "projects/p1/locations/us-central1"
    body = {"displayName": "a", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}}
    assert client.get(f"/v1/{parent}/datasets").status_code == 200  # no key yet: the local user
    op = client.post(f"/v1/{parent}/datasets", json=body).json()
    with db.tx() as s:
        assert s.get(OperationRow, op["name"].rsplit("/", 1)[1]).created_by == "anonymous"
    _, key = create_key(db, project="p1", role="editor", name="ed")
    r = client.get(f"/v1/{parent}/datasets")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"] == {"code": 401, "status": "UNAUTHENTICATED", "message": keymod.MISSING}
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/v1/{parent}/datasets", headers={"x-goog-api-key": key}).status_code == 200
    op = client.post(f"/v1/{parent}/datasets", json=body, headers={"Authorization": f"Bearer {key}"}).json()
    with db.tx() as s:
        assert s.get(OperationRow, op["name"].rsplit("/", 1)[1]).created_by == "ed"
    denied = client.post("/v1/projects/p2/locations/us-central1/datasets", json=body, headers={"x-goog-api-key": key})
    assert denied.status_code == 403 and denied.json()["error"]["status"] == "PERMISSION_DENIED"
    cross = client.delete(
        f"/v1/{parent}/datasets/TCN1", headers={"Origin": "http://evil.example", "x-goog-api-key": key}
    )
    assert cross.status_code == 403  # refused by the guard, before the key is looked at: audited too
    with db.tx() as s:
        rows = [
            (a.key_name, a.project, a.method, a.http_status, a.status) for a in s.query(AuditRow).order_by(AuditRow.id)
        ]
        assert key not in json.dumps(
            [[str(getattr(a, c.name)) for c in AuditRow.__table__.columns] for a in s.query(AuditRow)]
        )
    assert rows == [
        ("anonymous", "p1", "CreateDataset", 200, "OK"),
        ("anonymous", "p1", "ListDatasets", 401, "UNAUTHENTICATED"),
        ("ed", "p1", "CreateDataset", 200, "OK"),
        ("ed", "p2", "CreateDataset", 403, "PERMISSION_DENIED"),
        ("(not checked)", "p1", "DeleteDataset", 403, "PERMISSION_DENIED"),
    ]


def test_every_route_declares_a_known_permission() -> None:
    from automill.api.routes import ROUTES

    assert ROUTES and all(r.permission in PERMISSIONS and r.rpc for r in ROUTES)
    reads = {r.rpc for r in ROUTES if not r.mutating}
    assert {"Predict", "WaitOperation", "GetModel", "ListOperations"} <= reads
    assert not reads & {"CreateDataset", "DeleteOperation", "CancelOperation", "BatchPredict", "DeployModel"}


@pytest.mark.postgres
def test_keys_and_audit_on_postgres(postgres_url: str) -> None:
    from automill.services import audit

    db = Database(postgres_url)
    try:
        db.migrate()
        _, key = create_key(db, project="*", role="admin", name="pg")
        auth = Authenticator(db, open_when_keyless=False)
        assert auth.authenticate(key).name == "pg" and keys_exist(db)
        audit.record(
            db,
            key_name="pg",
            project="p",
            method="CreateModel",
            http_method="POST",
            resource="projects/p/locations/l",
            http_status=200,
            status="OK",
        )
        got = audit.entries(db, project="p", since=utcnow() - timedelta(minutes=1))
        assert [(e.key_name, e.method, e.http_status) for e in got] == [("pg", "CreateModel", 200)]
        assert revoke_key(db, "pg")[1] and list_keys(db)[0].revoked_at is not None
    finally:
        db.dispose()
