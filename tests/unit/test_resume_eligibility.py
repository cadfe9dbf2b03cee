"""services.eligibility: Google's resumable-training rules on a real SQLite database and real model files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from automill.services.eligibility import RESUME_WINDOW, eligibility, problems
from automill.store.db import Database
from automill.store.tables import AnnotationSpecRow, DatasetRow, ModelRow

NOW = datetime(2025, 3, 20, 12, 0, 0)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'a.db'}")
    database.migrate()
    with database.tx() as s:
        s.add(
            DatasetRow(
                id="TCN1",
                project="p",
                location="l",
                display_name="ds",
                problem_type="text_classification",
                problem_metadata={},
                labels={},
                etag="e",
                create_time=NOW,
                seq=1,
            )
        )
        s.flush()
        for n, name in ((11, "sport"), (12, "tech")):
            s.add(AnnotationSpecRow(id=str(n), dataset_id="TCN1", display_name=name, seq=n))
        folder = tmp_path / "models" / "TCN5"
        folder.mkdir(parents=True)
        (folder / "model.json").write_text(
            json.dumps({"annotation_spec_ids": ["11", "12"], "display_names": ["sport", "tech"]})
        )
        s.add(
            ModelRow(
                id="TCN5",
                project="p",
                location="l",
                display_name="base",
                dataset_id="TCN1",
                problem_type="text_classification",
                problem_metadata={},
                labels={},
                etag="e",
                create_time=NOW - timedelta(days=3),
                update_time=NOW,
                artifact_dir=str(folder),
                model_type="mobile-low-latency-1",
                seq=5,
            )
        )
    yield database
    database.dispose()


def rules(db: Database, model_type: str | None = None, now: datetime = NOW, dataset: str | None = "TCN1") -> list[str]:
    with db.tx() as s:
        base = s.get(ModelRow, "TCN5")
        ds = s.get(DatasetRow, dataset) if dataset else None
        return [p.rule for p in problems(s, base, ds, model_type, now)]


def test_a_fresh_model_of_the_same_type_and_labels_is_eligible(db: Database) -> None:
    assert rules(db) == [] and rules(db, "mobile-low-latency-1") == []
    with db.tx() as s:
        out = eligibility(s, s.get(ModelRow, "TCN5"), NOW).as_json()
    assert out == {
        "model": "projects/p/locations/l/models/TCN5",
        "eligible": True,
        "modelType": "mobile-low-latency-1",
        "trainTime": "2025-03-17T12:00:00.000Z",
        "eligibleUntil": "2025-03-31T12:00:00.000Z",
    }


def test_the_14_day_window(db: Database) -> None:
    trained = NOW - timedelta(days=3)
    assert timedelta(days=14) == RESUME_WINDOW
    assert rules(db, now=trained + timedelta(days=14)) == []  # the last moment of the window
    assert rules(db, now=trained + timedelta(days=14, seconds=1)) == ["age"]
    with db.tx() as s:
        late = problems(
            s, s.get(ModelRow, "TCN5"), s.get(DatasetRow, "TCN1"), None, trained + timedelta(days=15, hours=1)
        )
    assert "trained on 2025-03-17, 15 days ago" in late[0].message and "14 days" in late[0].message


def test_model_type_labels_files_and_dataset(db: Database, tmp_path: Path) -> None:
    assert rules(db, "mobile-versatile-1") == ["modelType"]
    with db.tx() as s:  # a label added to the dataset since the training
        s.add(AnnotationSpecRow(id="13", dataset_id="TCN1", display_name="food", seq=13))
    assert rules(db) == ["labels"]
    with db.tx() as s:
        msg = problems(s, s.get(ModelRow, "TCN5"), s.get(DatasetRow, "TCN1"), None, NOW)[0].message
    assert "food" in msg and "['sport', 'tech']" in msg
    # Every broken rule is reported, in CreateModel's order (it raises the first).
    assert rules(db, "mobile-versatile-1", now=NOW + timedelta(days=30)) == ["modelType", "age", "labels"]
    (tmp_path / "models" / "TCN5" / "model.json").unlink()
    with db.tx() as s:
        gone = problems(s, s.get(ModelRow, "TCN5"), s.get(DatasetRow, "TCN1"), None, NOW)
    assert [p.rule for p in gone] == ["files"] and str(tmp_path) not in gone[0].message
    assert rules(db, dataset=None) == ["dataset"]
    with db.tx() as s:
        s.delete(s.get(DatasetRow, "TCN1"))
    with db.tx() as s:
        out = eligibility(s, s.get(ModelRow, "TCN5"), NOW).as_json()
    assert out["eligible"] is False and out["reasons"][0]["rule"] == "dataset"
