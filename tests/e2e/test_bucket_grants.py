"""Buckets granted to projects (--bucket NAME=PATH@PROJECT,...): imports, exports and batch
predictions of other projects can neither read nor write them, not even through a file named
inside an import CSV of an open bucket."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Server
from tests.e2e.rest import Rest

ROWS = [f'"{w} story {i}",{lab}' for i in range(20) for w, lab in (("goal match", "sport"), ("chip code", "tech"))]


def parent(project: str) -> str:
    return f"projects/{project}/locations/us-central1"


def dataset(api: Rest, project: str) -> str:
    op = api.call(
        "POST",
        f"{parent(project)}/datasets",
        {"displayName": "grants", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    return api.wait(op)["response"]["name"]


def import_body(uri: str) -> dict:
    return {"inputConfig": {"gcsSource": {"inputUris": [uri]}}}


def test_granted_bucket_is_closed_to_other_projects(tmp_path: Path) -> None:
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "rows.csv").write_text("\n".join(ROWS) + "\n")
    (granted / "secret.txt").write_text("the quarterly numbers of team a")
    # "team-c" after a comma continues team-a's grant (the env var's own separator is a comma too)
    server = Server(
        data_dir=tmp_path / "data",
        database_url="",
        workers=1,
        env={"AUTOMILL_BUCKETS": f"granted={granted}@team-a,team-c"},
    )
    server.data_dir.mkdir()
    open_bucket = server.bucket_path("open")
    open_bucket.mkdir(parents=True)
    (open_bucket / "rows.csv").write_text("\n".join([*ROWS, "gs://granted/secret.txt,sport"]) + "\n")
    server.start()
    try:
        api = Rest(server.endpoint)
        for project in ("team-a", "team-c"):  # granted: the import reads the bucket
            done = api.wait(
                api.call("POST", f"{dataset(api, project)}:importData", import_body("gs://granted/rows.csv"))
            )
            assert "error" not in done, done

        other = dataset(api, "team-b")
        ops_before = api.call("GET", f"{parent('team-b')}/operations").get("operations", [])
        for uri in ("gs://granted/rows.csv", "gs://granted/missing.csv"):  # same answer, existing or not
            err = api.call("POST", f"{other}:importData", import_body(uri), expect=403)
            assert err["error"]["status"] == "PERMISSION_DENIED"
            assert err["error"]["message"] == "gs://granted is not granted to project team-b"
        err = api.call(
            "POST",
            f"{other}:exportData",
            {"outputConfig": {"gcsDestination": {"outputUriPrefix": "gs://granted/leak"}}},
            expect=403,
        )
        assert err["error"]["status"] == "PERMISSION_DENIED"
        assert api.call("GET", f"{parent('team-b')}/operations").get("operations", []) == ops_before
        assert not (granted / "leak").exists()

        # a CSV in an open bucket that names a file of the granted bucket: that row fails, nothing of it is read
        done = api.wait(api.call("POST", f"{other}:importData", import_body("gs://open/rows.csv")))
        assert "error" not in done, done
        failures = done["metadata"].get("partialFailures", [])
        assert any("not granted to project team-b" in f["message"] for f in failures), failures
        assert int(api.call("GET", other)["exampleCount"]) == len(ROWS)
    finally:
        server.stop()
