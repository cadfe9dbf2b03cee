"""services.folders: a bucket folder listed and zipped in chunks, with its caps (files, bytes)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from automill.core.errors import FailedPrecondition, NotFound, PermissionDenied
from automill.services import folders
from automill.store.blobs import BlobStore, acting_project


def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "data", {"theirs": f"{tmp_path / 'theirs'}@other"})


def test_zip_is_streamed_in_chunks_and_holds_every_file(tmp_path: Path) -> None:
    blobs = store(tmp_path)
    big = bytes(range(256)) * 4096  # 1 MiB: several chunks
    blobs.write_text("gs://exp/out/a.txt", "hello")
    with blobs.open_write("gs://exp/out/deep/er/big.bin") as fh:
        fh.write(big)
    blobs.write_text("gs://exp/outside.txt", "not in the folder")
    folder = folders.list_folder(blobs, "gs://exp/out/", max_bytes=2 * len(big))
    assert [f.name for f in folder.files] == ["a.txt", "deep/er/big.bin"] and folder.total_bytes == len(big) + 5
    chunks = list(folders.zip_chunks(blobs, folder))
    assert len(chunks) > 3 and max(len(c) for c in chunks) < len(big)  # never the whole archive at once
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None and archive.read("deep/er/big.bin") == big and archive.read("a.txt") == b"hello"
    assert folders.zip_file_name("gs://exp/out/model-export-m-2024/") == "model-export-m-2024.zip"


def test_caps_empty_folders_and_grants(tmp_path: Path) -> None:
    blobs = store(tmp_path)
    for i in range(4):
        blobs.write_text(f"gs://exp/many/{i}.txt", "x" * 10)
    with pytest.raises(FailedPrecondition, match="more than 3 files"):
        folders.list_folder(blobs, "gs://exp/many/", max_files=3)
    with pytest.raises(FailedPrecondition, match="40 bytes, over the limit of 39"):
        folders.list_folder(blobs, "gs://exp/many/", max_bytes=39)
    assert len(folders.list_folder(blobs, "gs://exp/many/", max_bytes=40).files) == 4
    with pytest.raises(NotFound):
        folders.list_folder(blobs, "gs://exp/none/")
    with pytest.raises(NotFound):  # a file is not a folder
        folders.list_folder(blobs, "gs://exp/many/0.txt/")
    with pytest.raises(PermissionDenied):
        folders.list_folder(blobs, "gs://exp/../data/")
    token = acting_project.set("mine")
    try:
        with pytest.raises(PermissionDenied, match="not granted"):
            folders.list_folder(blobs, "gs://theirs/x/")
    finally:
        acting_project.reset(token)
