"""The sample data in the package (gs://automill-samples): small, complete, documented, read-only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from automill.core.errors import InvalidArgument, PermissionDenied
from automill.store.blobs import BUILTIN_BUCKETS, BlobStore

SAMPLES = BUILTIN_BUCKETS["automill-samples"]
IMPORT_FILES = [
    "sms_spam/sms_spam.csv",
    "sentiment/sentiment.csv",
    "entities/entities.csv",
    "images/images.csv",
    "raccoons/raccoons.csv",
]


def test_small_and_documented() -> None:
    files = [p for p in SAMPLES.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 5_000_000
    readme = (SAMPLES / "README.md").read_text()
    for folder in {p.relative_to(SAMPLES).parts[0] for p in files if p.parent != SAMPLES}:
        assert f"`{folder}/`" in readme, folder
    for import_file in IMPORT_FILES:
        assert import_file.split("/")[1] in readme


@pytest.mark.parametrize("import_file", IMPORT_FILES)
def test_every_referenced_file_is_in_the_bucket(import_file: str) -> None:
    rows = list(csv.reader((SAMPLES / import_file).read_text(encoding="utf-8").splitlines()))
    assert len(rows) >= 3
    uses = {r[0] for r in rows}
    assert uses <= {"TRAIN", "VALIDATE", "TEST"} and "TRAIN" in uses
    for row in rows:
        for cell in row:
            if cell.startswith("gs://"):
                assert cell.startswith("gs://automill-samples/"), cell
                assert (SAMPLES / cell[len("gs://automill-samples/") :]).is_file(), cell
    if import_file.startswith("entities"):
        for row in rows:
            lines = (SAMPLES / row[1][len("gs://automill-samples/") :]).read_text(encoding="utf-8").splitlines()
            docs = [json.loads(line) for line in lines]
            assert docs and all(d["text_snippet"]["content"] for d in docs)


def test_samples_bucket_is_read_only(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path, {})
    assert blobs.read_text("gs://automill-samples/sms_spam/sms_spam.csv").count("\n") == 300
    with pytest.raises(PermissionDenied, match="read-only"), blobs.open_write("gs://automill-samples/new.csv") as fh:
        fh.write(b"x")
    with pytest.raises(PermissionDenied):
        blobs.check_writable("gs://automill-samples/out/")
    assert not (SAMPLES / "new.csv").exists()
    with pytest.raises(InvalidArgument, match="built in"):
        BlobStore(tmp_path, {"automill-samples": str(tmp_path)})
