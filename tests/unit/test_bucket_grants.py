"""Bucket grants: parsing NAME=PATH@PROJECT,... and the check by acting project."""

from __future__ import annotations

from pathlib import Path

import pytest

from automill.core.errors import PermissionDenied
from automill.settings import Settings, parse_buckets
from automill.store.blobs import BlobStore, acting_project, split_grants


def test_parse_and_round_trip(tmp_path: Path) -> None:
    specs = parse_buckets("aaa=/srv/a@p1,p2,bbb=/srv/b,ccc=s3://c/x@p3")
    assert specs == {"aaa": "/srv/a@p1,p2", "bbb": "/srv/b", "ccc": "s3://c/x@p3"}
    assert parse_buckets(["aaa=/srv/a@p1,p2", "bbb=/srv/b"]) == {"aaa": "/srv/a@p1,p2", "bbb": "/srv/b"}
    env = Settings(data_dir=tmp_path, buckets=specs).to_env()["AUTOMILL_BUCKETS"]
    assert parse_buckets(env) == specs  # a worker reads the same grants
    assert split_grants("/srv/a@p1,p2") == ("/srv/a", ("p1", "p2"))
    assert split_grants("/srv/b") == ("/srv/b", ())


def test_access_by_acting_project(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    blobs = BlobStore(tmp_path / "data", {"aaa": f"{tmp_path / 'a'}@p1"})
    assert blobs.read_text("gs://aaa/f.txt") == "x"  # no acting project: server-side work
    token = acting_project.set("p1")
    assert blobs.read_text("gs://aaa/f.txt") == "x"
    acting_project.reset(token)
    token = acting_project.set("p2")
    try:
        with pytest.raises(PermissionDenied, match="not granted to project p2"):
            blobs.read_text("gs://aaa/f.txt")
        with pytest.raises(PermissionDenied), blobs.open_write("gs://aaa/new.txt") as fh:
            fh.write(b"x")
        assert blobs.exists("gs://other/x.csv") is False  # buckets without grants stay open
    finally:
        acting_project.reset(token)
    assert not (tmp_path / "a" / "new.txt").exists()
