"""The browser upload endpoint through a real ``automill serve`` (issue 23): files written into a bucket
folder, then imported; every refusal (names that would leave the folder, sizes, read-only and other
projects' buckets, forgery, roles) is a google.rpc.Status naming the field, writes nothing, and is audited."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import requests

from automill.services.keys import create_key
from automill.store.db import Database
from tests.conftest import serving
from tests.e2e.rest import Rest

PARENT = "projects/up/locations/us-central1"
UPLOAD = f"/upload/v1/{PARENT}/buckets/{{bucket}}/objects"
XHR = {"X-Requested-With": "XMLHttpRequest"}
CSV = "".join(f"TRAIN,upload row {i} about {lbl},{lbl}\n" for i in range(6) for lbl in ("ham", "spam"))


def post(
    endpoint: str, bucket: str, files: list[tuple[str, bytes]], prefix: str | None = "in", **kw: object
) -> requests.Response:
    headers = dict(kw.pop("headers", XHR))  # type: ignore[arg-type]
    params = {"prefix": prefix} if prefix is not None else {}
    url = endpoint + (kw.pop("path", None) or UPLOAD.format(bucket=bucket))  # type: ignore[operator]
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return requests.post(url, params=params, files=parts, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


def refused(resp: requests.Response, http: int, status: str, field: str | None = None) -> str:
    assert resp.status_code == http, resp.text
    err = resp.json()["error"]
    assert err["status"] == status, err
    if field:
        assert err["details"][0]["fieldViolations"][0]["field"] == field, err
    assert "pytest-" not in err["message"], err["message"]  # never a server path (the data folder is a tmp_path)
    return str(err["message"])


def test_upload_then_import_and_every_refusal(tmp_path: Path) -> None:
    env = {"AUTOMILL_MAX_UPLOAD_FILE_BYTES": "4000", "AUTOMILL_MAX_UPLOAD_BYTES": "6000"}
    grant = tmp_path / "granted"
    with serving(tmp_path / "data", env=env, args=["--bucket", f"theirs={grant}@someone-else"]) as server:
        ep = server.endpoint
        bucket = server.bucket_path("upl")

        # Two files (one in a sub-folder, one with a non-ASCII name) land under the prefix.
        ok = post(ep, "upl", [("rows.csv", CSV.encode()), ("more/été.csv", b"TRAIN,x,ham\n")], prefix="in/batch1/")
        assert ok.status_code == 200, ok.text
        assert ok.json() == {
            "objects": [
                {
                    "uri": "gs://upl/in/batch1/rows.csv",
                    "bucket": "upl",
                    "name": "in/batch1/rows.csv",
                    "size": str(len(CSV)),
                },
                {
                    "uri": "gs://upl/in/batch1/more/été.csv",
                    "bucket": "upl",
                    "name": "in/batch1/more/été.csv",
                    "size": "12",
                },
            ]
        }
        assert (bucket / "in/batch1/rows.csv").read_text() == CSV
        assert (bucket / "in/batch1/more/été.csv").read_bytes() == b"TRAIN,x,ham\n"

        # What was uploaded imports like any bucket file.
        api = Rest(ep)
        ds = api.wait(
            api.call(
                "POST",
                f"{PARENT}/datasets",
                {"displayName": "uploaded", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
            )
        )["response"]["name"]
        imp = api.wait(
            api.call(
                "POST",
                f"{ds}:importData",
                {"inputConfig": {"gcsSource": {"inputUris": [ok.json()["objects"][0]["uri"]]}}},
            )
        )
        assert "error" not in imp, imp
        assert api.call("GET", ds)["exampleCount"] == 12

        before = sorted(
            p.relative_to(server.data_dir)
            for p in server.data_dir.rglob("*")
            if p.is_file() and "server-" not in p.name
        )

        # Names that would leave the folder, or cannot be named in an import: 400, field "files" (or "prefix").
        for name in (
            "../escape.csv",
            "a/../../escape.csv",
            "/etc/passwd",
            "a//b.csv",
            "./a.csv",
            "..",
            "bad\x01.csv",
            "tab\there.csv",
            "x\\y.csv",
            "what*.csv",
            "b[1].csv",
            "é" * 200 + ".csv",
            "\u202egpj.exe",
        ):
            msg = refused(post(ep, "upl", [("fine.csv", b"a"), (name, b"data")]), 400, "INVALID_ARGUMENT", "files")
            assert "file name" in msg, msg
        for prefix in ("../up", "/abs", "a/../b", "in\x00", "C:/x"):
            refused(post(ep, "upl", [("fine.csv", b"a")], prefix=prefix), 400, "INVALID_ARGUMENT", "prefix")
        # A Windows browser's full path: the multipart library keeps only its last part.
        win = post(ep, "upl", [("C:\\Users\\me\\photo.csv", b"w")], prefix="win")
        assert win.status_code == 200 and win.json()["objects"][0]["name"] == "win/photo.csv", win.text
        (bucket / "win/photo.csv").unlink()
        refused(post(ep, "upl", [("same.csv", b"a"), ("same.csv", b"b")]), 400, "INVALID_ARGUMENT", "files")
        only_field = b'--zz\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--zz--\r\n'
        multipart = {**XHR, "Content-Type": "multipart/form-data; boundary=zz"}
        no_files = requests.post(ep + UPLOAD.format(bucket="upl"), data=only_field, headers=multipart, timeout=30)
        refused(no_files, 400, "INVALID_ARGUMENT", "files")
        refused(post(ep, "BAD_NAME", [("a.csv", b"a")]), 400, "INVALID_ARGUMENT", "bucket")

        # Sizes: one file over 4000 bytes, or all of them over 6000: 413, nothing written.
        msg = refused(
            post(ep, "upl", [("small.csv", b"a"), ("big.csv", b"x" * 4001)]), 413, "INVALID_ARGUMENT", "files"
        )
        assert "big.csv" in msg and "4000" in msg
        msg = refused(post(ep, "upl", [(f"f{i}.csv", b"x" * 3000) for i in range(3)]), 413, "INVALID_ARGUMENT", "files")
        assert "6000" in msg
        huge = requests.post(
            ep + UPLOAD.format(bucket="upl"),
            data=b"x" * 2_000_000,
            headers={**XHR, "Content-Type": "multipart/form-data; boundary=zz"},
            timeout=30,
        )
        assert huge.status_code == 413, huge.text

        # Not a multipart body; no boundary; a JSON body; a malformed body.
        refused(
            requests.post(ep + UPLOAD.format(bucket="upl"), json={"a": 1}, headers=XHR, timeout=30),
            415,
            "INVALID_ARGUMENT",
            "Content-Type",
        )
        refused(
            requests.post(
                ep + UPLOAD.format(bucket="upl"),
                data=b"--zz\r\nnonsense",
                headers={**XHR, "Content-Type": "multipart/form-data; boundary=zz"},
                timeout=30,
            ),
            400,
            "INVALID_ARGUMENT",
            "files",
        )

        # The read-only samples bucket; a bucket granted to another project.
        assert "read-only" in refused(post(ep, "automill-samples", [("a.csv", b"a")]), 403, "PERMISSION_DENIED")
        refused(post(ep, "theirs", [("a.csv", b"a")]), 403, "PERMISSION_DENIED")
        assert not grant.exists() or not any(grant.rglob("*"))
        # A cross-site form can send none of the required headers; another origin is refused by the door.
        refused(post(ep, "upl", [("a.csv", b"a")], headers={}), 403, "PERMISSION_DENIED")
        refused(
            post(ep, "upl", [("a.csv", b"a")], headers={**XHR, "Origin": "https://evil.example"}),
            403,
            "PERMISSION_DENIED",
        )

        after = sorted(
            p.relative_to(server.data_dir)
            for p in server.data_dir.rglob("*")
            if p.is_file() and "server-" not in p.name
        )
        assert [p for p in after if str(p).startswith("buckets")] == [p for p in before if str(p).startswith("buckets")]

        # With API keys: editor and admin may upload to their project; viewer, predictor and others may not.
        db = Database(f"sqlite:///{server.data_dir / 'automill.db'}")
        keys = {
            role: create_key(db, project="up", role=role, name=f"{role}-up")[1]
            for role in ("admin", "editor", "viewer", "predictor")
        }
        keys["stranger"] = create_key(db, project="elsewhere", role="admin", name="stranger")[1]
        db.dispose()
        refused(post(ep, "upl", [("a.csv", b"a")]), 401, "UNAUTHENTICATED")
        for role, expect in (("admin", 200), ("editor", 200), ("viewer", 403), ("predictor", 403), ("stranger", 403)):
            resp = post(ep, "upl", [(f"{role}.csv", b"k")], headers={"x-goog-api-key": keys[role]})
            assert resp.status_code == expect, (role, resp.text)
        assert sorted(p.name for p in (bucket / "in").iterdir() if p.is_file()) == ["admin.csv", "editor.csv"]
        # The events feed is behind the same door.
        feed = f"{ep}/ui-api/v1/projects/up/events"
        assert requests.get(feed, timeout=10).status_code == 401
        assert requests.get(feed, headers={"x-goog-api-key": keys["predictor"]}, timeout=10).status_code == 403
        assert requests.get(feed, headers={"x-goog-api-key": keys["stranger"]}, timeout=10).status_code == 403
        events = requests.get(feed, headers={"x-goog-api-key": keys["viewer"]}, timeout=10).json()["events"]
        assert [e["kind"] for e in events] == ["import"]

        # Every upload, allowed or refused, is in the audit log (a refusal by the door too).
        with sqlite3.connect(server.data_dir / "automill.db") as conn:
            rows = conn.execute(
                "SELECT method, http_status, key_name, resource FROM audit_log WHERE method='UploadObjects'"
            ).fetchall()
        statuses = [r[1] for r in rows]
        assert (
            statuses.count(200) == 4
            and statuses.count(413) == 3
            and statuses.count(401) == 1
            and statuses.count(415) == 1
        )
        assert ("UploadObjects", 200, "editor-up", f"{PARENT}/buckets/upl") in rows
        assert sum(1 for r in rows if r[1] == 403) == 7  # 3 roles, 2 buckets, 2 forgeries
        assert "Traceback" not in server.log(), server.log()[-3000:]
