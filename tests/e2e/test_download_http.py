"""Reads of a bucket folder through a real ``automill serve`` (issue 23): the listing and the streamed zip
of a folder (what the console's "Download zip" and batch-prediction result list use), and every
refusal: a path that would leave the bucket, a bucket granted to another project, a folder over the
size or file cap, a link out of the bucket, roles; refusals are google.rpc.Status answers, audited."""

from __future__ import annotations

import io
import sqlite3
import zipfile
from pathlib import Path

import requests

from automill.services.keys import create_key
from automill.store.db import Database
from tests.conftest import serving

PARENT = "projects/down/locations/us-central1"
OBJECTS = f"/download/v1/{PARENT}/buckets/{{bucket}}/objects"


def get(endpoint: str, bucket: str, prefix: str | None, *, alt: str = "", **kw: object) -> requests.Response:
    params = {"prefix": prefix} if prefix is not None else {}
    if alt:
        params["alt"] = alt
    return requests.get(endpoint + OBJECTS.format(bucket=bucket), params=params, timeout=30, **kw)  # type: ignore[arg-type]


def refused(resp: requests.Response, http: int, status: str, field: str | None = None) -> str:
    assert resp.status_code == http, resp.text
    err = resp.json()["error"]
    assert err["status"] == status, err
    if field:
        assert err["details"][0]["fieldViolations"][0]["field"] == field, err
    assert "pytest-" not in err["message"], err["message"]  # never a server path
    return str(err["message"])


def test_list_and_zip_a_folder_and_every_refusal(tmp_path: Path) -> None:
    grant = tmp_path / "granted"
    (grant / "out").mkdir(parents=True)
    (grant / "out" / "secret.txt").write_text("theirs")
    outside = tmp_path / "outside.txt"
    outside.write_text("server file")
    env = {"AUTOMILL_MAX_DOWNLOAD_BYTES": "20000"}
    with serving(tmp_path / "data", workers=0, env=env, args=["--bucket", f"theirs={grant}@someone-else"]) as server:
        ep = server.endpoint
        folder = server.bucket_path("exp") / "model-export-x"
        (folder / "sub").mkdir(parents=True)
        (folder / "model.tflite").write_bytes(bytes(range(256)) * 20)
        (folder / "dict.txt").write_text("cat\ndog\n")
        (folder / "sub" / "été.json").write_text('{"a": 1}')
        (folder / "link-out.txt").symlink_to(outside)  # a link out of the bucket: never listed nor read
        (folder / "linked-dir").symlink_to(tmp_path)
        (server.bucket_path("exp") / "model-export-x-other.txt").write_text("a sibling, not inside the folder")

        listing = get(ep, "exp", "model-export-x/")
        assert listing.status_code == 200, listing.text
        body = listing.json()
        assert body["folder"] == "gs://exp/model-export-x/"
        assert [(o["name"], o["size"]) for o in body["objects"]] == [
            ("dict.txt", "8"),
            ("model.tflite", "5120"),
            ("sub/été.json", "8"),
        ]
        assert body["objects"][1]["uri"] == "gs://exp/model-export-x/model.tflite" and body["totalBytes"] == "5136"

        z = get(ep, "exp", "model-export-x", alt="zip")
        assert z.status_code == 200 and z.headers["content-type"] == "application/zip", z.text[:300]
        assert 'filename="model-export-x.zip"' in z.headers["content-disposition"]
        archive = zipfile.ZipFile(io.BytesIO(z.content))
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["dict.txt", "model.tflite", "sub/été.json"]
        assert archive.read("model.tflite") == bytes(range(256)) * 20
        assert archive.read("sub/été.json") == b'{"a": 1}'
        # The built-in samples are readable too.
        samples = get(ep, "automill-samples", "raccoons/")
        assert samples.status_code == 200 and len(samples.json()["objects"]) == 41, samples.text[:300]

        # Paths that would leave the bucket or the folder: 400 naming "prefix", whatever exists there.
        for prefix in ("..", "../data", "a/../../x", "/etc", "model-export-x/../..", "C:/x", "x\\y", "in\x00", "*"):
            for alt in ("", "zip"):
                refused(get(ep, "exp", prefix, alt=alt), 400, "INVALID_ARGUMENT", "prefix")
        refused(get(ep, "BAD_NAME", "x"), 400, "INVALID_ARGUMENT", "bucket")
        refused(get(ep, "exp", "x", alt="tar"), 400, "INVALID_ARGUMENT", "alt")
        # A link out of the bucket, named as the folder: refused (the store never follows it out).
        assert "symlink" in refused(get(ep, "exp", "model-export-x/link-out.txt"), 403, "PERMISSION_DENIED")
        refused(get(ep, "exp", "model-export-x/linked-dir", alt="zip"), 403, "PERMISSION_DENIED")
        assert "has no files" in refused(get(ep, "exp", "nothing-here", alt="zip"), 404, "NOT_FOUND")
        # Another project's bucket: 403 whether the folder exists or not.
        a = refused(get(ep, "theirs", "out", alt="zip"), 403, "PERMISSION_DENIED")
        b = refused(get(ep, "theirs", "missing"), 403, "PERMISSION_DENIED")
        assert a == b and "secret" not in a
        # Over the cap (20,000 bytes here): refused before a byte of the zip is sent.
        (folder / "sub" / "big.bin").write_bytes(b"x" * 20_000)
        msg = refused(get(ep, "exp", "model-export-x", alt="zip"), 400, "FAILED_PRECONDITION")
        assert "20000" in msg and "gs://exp/model-export-x/" in msg, msg
        assert get(ep, "exp", "model-export-x/sub", alt="zip").status_code == 400  # big.bin alone is over too
        assert get(ep, "exp", "model-export-x/sub").status_code == 200  # a listing has no byte cap
        (folder / "sub" / "big.bin").unlink()

        # Roles: viewer, editor and admin may read their project's folders; predictor and others may not.
        db = Database(f"sqlite:///{server.data_dir / 'automill.db'}")
        keys = {
            role: create_key(db, project="down", role=role, name=f"{role}-down")[1]
            for role in ("admin", "editor", "viewer", "predictor")
        }
        keys["stranger"] = create_key(db, project="elsewhere", role="admin", name="stranger")[1]
        db.dispose()
        refused(get(ep, "exp", "model-export-x", alt="zip"), 401, "UNAUTHENTICATED")
        for role, expect in (("admin", 200), ("editor", 200), ("viewer", 200), ("predictor", 403), ("stranger", 403)):
            for alt in ("", "zip"):
                resp = get(ep, "exp", "model-export-x", alt=alt, headers={"x-goog-api-key": keys[role]})
                assert resp.status_code == expect, (role, alt, resp.text[:300])
        # The console's session cookie is a key like any other.
        jar = {"automill_session": keys["viewer"]}
        assert get(ep, "exp", "model-export-x", alt="zip", cookies=jar).status_code == 200

        with sqlite3.connect(server.data_dir / "automill.db") as conn:
            rows = conn.execute(
                "SELECT method, http_status, key_name FROM audit_log WHERE method IN ('ListObjects', 'DownloadObjects')"
            ).fetchall()
        assert ("DownloadObjects", 403, "predictor-down") in rows and ("ListObjects", 403, "stranger") in rows
        assert ("DownloadObjects", 401, "anonymous") in rows
        assert ("DownloadObjects", 403, "anonymous") in rows  # the other project's bucket, before keys existed
        assert (
            all(r[1] in (401, 403) for r in rows) and len(rows) == 9
        )  # reads are not audited, as no read of the API is
        assert "Traceback" not in server.log(), server.log()[-3000:]
