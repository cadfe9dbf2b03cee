"""Housekeeping (issue 33): ``automill check [--repair]`` on a data folder seeded with every kind of
leftover, media freed by reference under concurrency (pins), and the deploy lease heartbeat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from automill.settings import Settings
from automill.store.db import Database, new_etag, utcnow
from automill.store.media import MediaStore
from automill.store.tables import DatasetRow, ExampleRow, ModelRow, OperationRow

ROOT = Path(__file__).resolve().parents[2]


def run_check(data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("AUTOMILL_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "automill", "check", "--data-dir", str(data_dir), "-o", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def add_dataset(db: Database, ds_id: str, problem_type: str = "image_classification") -> None:
    now = utcnow()
    with db.tx() as s:
        s.add(
            DatasetRow(
                id=ds_id,
                project="p",
                location="us-central1",
                display_name=ds_id,
                description="",
                problem_type=problem_type,
                problem_metadata={},
                labels={},
                etag="e",
                create_time=now,
                seq=int(ds_id[3:]),
            )
        )


def add_example(db: Database, ds_id: str, key: str) -> None:
    with db.tx() as s:
        s.add(
            ExampleRow(
                dataset_id=ds_id, content_hash=key[:64], content=key, source_uri=None, ml_use="TRAIN", annotations=[]
            )
        )


def add_model(db: Database, model_id: str, folder: Path) -> None:
    now = utcnow()
    with db.tx() as s:
        s.add(
            ModelRow(
                id=model_id,
                project="p",
                location="us-central1",
                display_name=model_id,
                dataset_id="ICN1",
                problem_type="image_classification",
                problem_metadata={},
                labels={},
                etag=new_etag(model_id, now),
                deployment_state="UNDEPLOYED",
                create_time=now,
                update_time=now,
                artifact_dir=str(folder),
                seq=int(model_id[3:]),
            )
        )


def add_operation(db: Database, op_id: str, state: str, kind: str = "import_data") -> None:
    now = utcnow()
    with db.tx() as s:
        s.add(
            OperationRow(
                id=op_id,
                project="p",
                location="us-central1",
                kind=kind,
                details_key="importDataDetails",
                details={},
                works_on="",
                request={},
                state=state,
                progress_percent=0,
                partial_failures=[],
                result_type="Empty",
                result=None,
                error_code=0,
                error_message="",
                cancel_requested=False,
                attempt=1,
                max_attempts=2,
                lease_owner="w",
                lease_expires_at=time.time() + 600,
                created_at=now,
                updated_at=now,
                seq=int(op_id[3:]),
            )
        )


def fresh(tmp_path: Path) -> tuple[Path, Database]:
    data = tmp_path / "data"
    data.mkdir()
    db = Database(Settings(data_dir=data).db_url)
    db.migrate()
    return data, db


def write(path: Path, data: bytes = b"x" * 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_clean_folder_exits_0(tmp_path: Path) -> None:
    data, db = fresh(tmp_path)
    media = MediaStore(data)
    add_dataset(db, "ICN1")
    key = media.put(b"referenced image", "png")
    add_example(db, "ICN1", key)
    write(data / "models" / "ICN2" / "model.json")
    add_model(db, "ICN2", data / "models" / "ICN2")
    add_operation(db, "TCN3", "RUNNING")  # a running import: its files are in use
    write(data / "tmp" / "TCN3" / "staging.bin")
    write(data / "models" / ".tmp-TCN3-1" / "model.pt")
    media.put(b"being imported", "png", pin="TCN3")
    code, out = run_check(data)
    assert (code, out["clean"], out["count"]) == (0, True, 0), out


def test_every_kind_is_reported_and_repaired(tmp_path: Path) -> None:
    data, db = fresh(tmp_path)
    media = MediaStore(data)
    add_dataset(db, "ICN1")
    kept = media.put(b"referenced image", "png")
    add_example(db, "ICN1", kept)
    write(data / "models" / "ICN2" / "model.json")
    add_model(db, "ICN2", data / "models" / "ICN2")  # a model with its files: nothing to say
    # leftovers, each kind (two unreferenced images)
    write(data / "models" / "ICN9" / "model.pt", b"w" * 1000)  # model_folder
    write(data / "models" / ".deleted-ICN8-0a1b2c3d" / "model.pt", b"w" * 10)  # tombstone
    add_operation(db, "TCN4", "SUCCEEDED", kind="create_model")
    write(data / "models" / ".tmp-TCN4-1" / "model.pt")  # training_tmp, ended operation
    write(data / "models" / ".tmp-TCN77-2" / "model.pt")  # training_tmp, unknown operation
    write(data / "tmp" / "TCN5" / "export-x" / "model.tflite")  # job_tmp, unknown operation
    orphan = media.put(b"orphan image one", "png", pin="TCN6")  # media + media_pin (unknown op)
    orphan2 = media.put(b"orphan image two", "jpg")
    partial = write(data / "media" / "ab" / ".tmp-half-written")  # media_tmp, an hour old
    os.utime(partial, (time.time() - 3600, time.time() - 3600))
    fresh_partial = write(data / "media" / "cd" / ".tmp-being-written")  # too young: left alone
    # the other way round: rows whose files are gone
    add_model(db, "ICN3", data / "models" / "ICN3")  # model_files_missing
    add_example(db, "ICN1", "f" * 64 + ".png")  # media_missing

    code, out = run_check(data)
    assert code == 1 and not out["clean"]
    counts = {kind: v["count"] for kind, v in out["summary"].items()}
    assert counts == {
        "model_folder": 1,
        "tombstone": 1,
        "training_tmp": 2,
        "job_tmp": 1,
        "media_pin": 1,
        "media": 2,
        "media_tmp": 1,
        "model_files_missing": 1,
        "media_missing": 1,
    }, out["summary"]
    assert out["summary"]["model_folder"]["bytes"] == 1000
    assert out["summary"]["media"]["bytes"] == len(b"orphan image one") + len(b"orphan image two")
    names = {(f["kind"], f["name"]) for f in out["findings"]}
    assert {
        ("model_folder", "ICN9"),
        ("media", orphan),
        ("media", orphan2),
        ("training_tmp", "TCN77"),
        ("model_files_missing", "ICN3"),
    } <= names
    assert not any(f["repairable"] for f in out["findings"] if f["kind"].endswith("_missing"))

    code, out = run_check(data, "--repair")
    assert code == 1 and out["removedCount"] == 9, out
    assert not (data / "models" / "ICN9").exists() and not (data / "models" / ".deleted-ICN8-0a1b2c3d").exists()
    assert not (data / "models" / ".tmp-TCN4-1").exists() and not (data / "tmp" / "TCN5").exists()
    assert not media.exists(orphan) and not media.exists(orphan2) and not (data / "media" / ".pins" / "TCN6").exists()
    assert not partial.exists() and fresh_partial.exists()
    assert media.exists(kept) and (data / "models" / "ICN2" / "model.json").exists()

    code, out = run_check(data)  # what repair cannot mend is still reported
    assert code == 1 and {f["kind"] for f in out["findings"]} == {"model_files_missing", "media_missing"}
    with db.tx() as s:
        s.query(ModelRow).filter(ModelRow.id == "ICN3").delete()
        s.query(ExampleRow).filter(ExampleRow.content == "f" * 64 + ".png").delete()
    code, out = run_check(data)
    assert (code, out["count"]) == (0, 0), out


def test_a_delete_freeing_an_image_that_an_import_is_storing_loses_nothing(tmp_path: Path) -> None:
    """The race of a dataset delete (free_media) with an import of the same image into another
    dataset: the import's pin keeps the bytes, and its commit puts the file back under the media lock."""
    from automill.store.housekeeping import free_media, media_lock

    data, db = fresh(tmp_path)
    media = MediaStore(data)
    add_dataset(db, "ICN1")
    add_dataset(db, "ICN2")
    key = media.put(b"shared image", "png")
    # the import into ICN2 stores the same image (pinned) while ICN1's delete frees it
    assert media.put(b"shared image", "png", pin="TCN7") == key
    assert free_media(db, media, [key]) == (1, len(b"shared image"))
    assert not media.exists(key)
    with db.tx() as s:  # the import's commit
        media_lock(s)
        media.restore("TCN7")
        media.unpin("TCN7")
        s.add(
            ExampleRow(
                dataset_id="ICN2", content_hash=key[:64], content=key, source_uri=None, ml_use="TRAIN", annotations=[]
            )
        )
    assert media.read(key) == b"shared image"
    assert free_media(db, media, [key]) == (0, 0)  # referenced now: kept
    assert media.exists(key)


def test_free_media_waits_for_an_import_commit_holding_the_media_lock(tmp_path: Path) -> None:
    from automill.store.housekeeping import free_media, media_lock

    data, db = fresh(tmp_path)
    media = MediaStore(data)
    add_dataset(db, "ICN2")
    key = media.put(b"img", "png", pin="TCN8")
    locked, release = threading.Event(), threading.Event()

    def importer() -> None:
        with db.tx() as s:
            media_lock(s)
            locked.set()
            release.wait(10)
            s.add(
                ExampleRow(
                    dataset_id="ICN2",
                    content_hash=key[:64],
                    content=key,
                    source_uri=None,
                    ml_use="TRAIN",
                    annotations=[],
                )
            )

    t = threading.Thread(target=importer)
    t.start()
    assert locked.wait(10)
    result: list[tuple[int, int]] = []
    freer = threading.Thread(target=lambda: result.append(free_media(db, media, [key])))
    freer.start()
    time.sleep(0.5)
    assert freer.is_alive(), "free_media must wait for the import's transaction"
    release.set()
    t.join(10)
    freer.join(40)
    assert result == [(0, 0)] and media.exists(key)


def test_model_delete_renames_to_a_tombstone_first(tmp_path: Path) -> None:
    from automill.store.housekeeping import remove_model_files

    folder = write(tmp_path / "models" / "ICN5" / "model.pt").parent
    seen: list[list[str]] = []
    import shutil as _shutil

    real = _shutil.rmtree

    def spy(path: Any, *a: Any, **kw: Any) -> None:
        seen.append(sorted(p.name for p in (tmp_path / "models").iterdir()))
        real(path, *a, **kw)

    _shutil.rmtree = spy  # type: ignore[assignment]
    try:
        remove_model_files(folder)
    finally:
        _shutil.rmtree = real  # type: ignore[assignment]
    assert seen and seen[0][0].startswith(".deleted-ICN5-") and "ICN5" not in seen[0]
    assert list((tmp_path / "models").iterdir()) == []


# -- the deploy lease -------------------------------------------------------------------------------------


def test_a_deploy_holds_a_short_lease_renewed_while_it_loads(tmp_path: Path) -> None:
    """The serving process renews a short lease while loading, so a lost serving process is noticed by
    the workers' sweep within seconds (it used to hold a 120 s lease)."""
    from automill.jobs import queue
    from automill.jobs.states import JobState
    from automill.services.container import Services

    folder = write(tmp_path / "models" / "TCN7" / "model.json").parent
    sv = Services(Settings(data_dir=tmp_path, lease_seconds=1.0, heartbeat_seconds=0.2))
    sv.db.migrate()
    add_model(sv.db, "TCN7", folder)
    release, started = threading.Event(), threading.Event()

    def held(*_: Any) -> Any:
        started.set()
        assert release.wait(30)
        return object()

    sv.serving.load = held  # type: ignore[method-assign]
    sv.deployment.deploy("projects/p/locations/us-central1/models/TCN7", {})
    assert started.wait(10)
    try:
        time.sleep(2.5)  # longer than the lease: only the heartbeat keeps it
        with sv.db.tx() as s:
            row = s.execute(select(OperationRow).where(OperationRow.kind == "deploy_model")).scalar_one()
            op_id, expires, state = row.id, row.lease_expires_at, row.state
        assert state == JobState.RUNNING
        assert time.time() < expires <= time.time() + 1.5, "the lease must be short and renewed"
        assert queue.sweep(sv.db) == []
    finally:
        release.set()
        sv.deployment.wait_idle()
    with sv.db.tx() as s:
        assert s.get(OperationRow, op_id).state == JobState.SUCCEEDED
    sv.db.dispose()
