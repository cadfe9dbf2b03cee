"""Reading a bucket folder for a browser: its files listed, or all of them as one zip, streamed.

What the console's "Download zip" (an export's ``gcsOutputDirectory``) and a batch prediction's
result list use (api.download). The folder's files are listed first, against the limits (at most
``MAX_FILES`` files and ``max_bytes`` in all), so that a refusal is an error answer rather than a
broken download; then the zip is written file by file into small chunks while the browser reads
it, never held whole in memory. Entries are named relative to the folder (``model.tflite``,
``sub/x.csv``).
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from automill.core.errors import FailedPrecondition, NotFound
from automill.store.blobs import GS, BlobStore

#: The most files a listing or a zip holds.
MAX_FILES = 10_000
#: Bytes read from a file at a time while zipping.
CHUNK = 256 * 1024


@dataclass(frozen=True)
class FolderFile:
    uri: str
    #: the path inside the folder: the zip entry's name
    name: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "name": self.name, "size": str(self.size)}


@dataclass(frozen=True)
class Folder:
    uri: str
    files: tuple[FolderFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def as_json(self) -> dict[str, Any]:
        return {"folder": self.uri, "objects": [f.as_json() for f in self.files], "totalBytes": str(self.total_bytes)}


def folder_uri(bucket: str, prefix: str) -> str:
    """``gs://bucket/prefix/`` (``gs://bucket/`` for the whole bucket); ``prefix`` is already checked."""
    return f"{GS}{bucket}/{prefix}/" if prefix else f"{GS}{bucket}/"


def list_folder(blobs: BlobStore, uri: str, *, max_bytes: int | None = None, max_files: int = MAX_FILES) -> Folder:
    """The files under ``uri``; NotFound for an empty or missing folder, FailedPrecondition over a limit
    (``max_bytes``: the zip's; None for a listing)."""
    found = blobs.list_folder(uri, max_files)
    if not found:
        raise NotFound(f"{uri} has no files")
    if len(found) > max_files:
        raise FailedPrecondition(
            f"{uri} holds more than {max_files} files, over the limit of one download: download a folder inside it"
        )
    files = tuple(FolderFile(u, u[len(uri) :], size) for u, size in found)
    folder = Folder(uri, files)
    if max_bytes is not None and folder.total_bytes > max_bytes:
        raise FailedPrecondition(
            f"{uri} holds {folder.total_bytes} bytes, over the limit of {max_bytes} bytes a download "
            "(max_download_bytes): download a folder inside it"
        )
    return folder


class _Chunks:
    """A write-only stream zipfile writes into; ``take()`` hands over what was written since the last call."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def tell(self) -> int:
        raise OSError("not seekable")  # zipfile then writes data descriptors, as for a pipe

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_chunks(blobs: BlobStore, folder: Folder) -> Iterator[bytes]:
    """The folder as one zip archive, in chunks. Each file is read up to its listed size (a file that
    grows meanwhile does not push the download past the limit it was checked against)."""
    out = _Chunks()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for f in folder.files:
            info = zipfile.ZipInfo(f.name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = f.size  # zipfile picks ZIP64 for a large file from this
            info.external_attr = 0o644 << 16
            info.date_time = time.localtime()[:6]
            with blobs.open_read(f.uri) as src, archive.open(info, "w") as dst:
                left = f.size
                while left > 0:
                    data = src.read(min(CHUNK, left))
                    if not data:
                        break
                    left -= len(data)
                    dst.write(data)
                    chunk = out.take()
                    if chunk:
                        yield chunk
            chunk = out.take()
            if chunk:
                yield chunk
    yield out.take()


def zip_file_name(uri: str) -> str:
    """The download's file name: the folder's last part (``model-export-x-2024...``) + ``.zip``."""
    parts = [p for p in uri[len(GS) :].split("/") if p]
    stem = parts[-1] if parts else "download"
    return f"{stem}.zip"
