"""Blob I/O through fsspec. ``gs://BUCKET/key`` resolves to the bucket's configured root.

By default a bucket is the local folder ``<data_dir>/buckets/BUCKET``; ``--bucket NAME=PATH`` maps it
to any folder, or to an fsspec URL (``s3://real-bucket/prefix``, ``gs://real-bucket``) for real
object stores. A key can never reach outside its bucket's root: ``..`` segments, absolute keys and
symlinks that point outside are refused with PermissionDenied.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import fsspec

from automill.core.errors import InvalidArgument, NotFound, PermissionDenied

GS = "gs://"


def split_gs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ("bucket", "a/b")."""
    if not uri.startswith(GS):
        raise InvalidArgument(f"{uri!r} is not a gs:// URI")
    bucket, _, key = uri[len(GS):].partition("/")
    if not bucket:
        raise InvalidArgument(f"{uri!r} has no bucket name")
    return bucket, key


def _clean_key(uri: str, key: str) -> str:
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise PermissionDenied(f"{uri}: path is outside its bucket")
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PermissionDenied(f"{uri}: path is outside its bucket ('..' is not allowed)")
    return "/".join(parts)


class BlobStore:
    def __init__(self, data_dir: Path, buckets: dict[str, str]) -> None:
        self.data_dir = Path(data_dir)
        self.buckets = dict(buckets)

    # -- resolution -------------------------------------------------------------------------------
    def resolve(self, uri: str) -> tuple[Any, str]:
        """-> (fsspec filesystem, path inside it), refusing anything outside the bucket."""
        bucket, key = split_gs(uri)
        key = _clean_key(uri, key)
        root = self.buckets.get(bucket)
        if root is None:
            root = str(self.data_dir / "buckets" / bucket)
        if "://" in root:
            fs, base = fsspec.core.url_to_fs(root)
            return fs, posixpath.join(base.rstrip("/"), key) if key else base
        base_path = Path(root).resolve()
        path = base_path / key if key else base_path
        real = Path(os.path.realpath(path))
        if real != base_path and base_path not in real.parents:
            raise PermissionDenied(f"{uri}: path leads outside its bucket (symlink)")
        return fsspec.filesystem("file"), str(path)

    # -- reading ----------------------------------------------------------------------------------
    def read_bytes(self, uri: str, *, max_bytes: int | None = None) -> bytes:
        fs, path = self.resolve(uri)
        try:
            if max_bytes is not None:
                size = fs.size(path)
                if size is not None and size > max_bytes:
                    raise InvalidArgument(f"{uri} is {size} bytes, over the limit of {max_bytes}")
            with fs.open(path, "rb") as fh:
                return fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"{uri} not found") from None

    def read_text(self, uri: str, *, max_bytes: int | None = None) -> str:
        data = self.read_bytes(uri, max_bytes=max_bytes)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidArgument(f"{uri} is not UTF-8 text: {exc}") from None

    def exists(self, uri: str) -> bool:
        fs, path = self.resolve(uri)
        return bool(fs.exists(path))

    def expand(self, uri: str) -> list[str]:
        """A URI or a wildcard (``gs://b/dir/*.csv``) -> the matching gs:// URIs, sorted."""
        if not any(ch in uri for ch in "*?["):
            return [uri]
        bucket, _ = split_gs(uri)
        fs, path = self.resolve(uri)
        _, root = self.resolve(f"{GS}{bucket}/")
        out = []
        for match in sorted(fs.glob(path)):
            rel = posixpath.relpath(str(match), root.rstrip("/")) if "://" not in root else str(match)[len(root):]
            out.append(f"{GS}{bucket}/{rel.lstrip('/')}")
        return out

    # -- writing ----------------------------------------------------------------------------------
    @contextmanager
    def open_write(self, uri: str, mode: str = "wb") -> Iterator[IO[Any]]:
        fs, path = self.resolve(uri)
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with fs.open(path, mode) as fh:
            yield fh

    def write_text(self, uri: str, text: str) -> None:
        with self.open_write(uri, "wb") as fh:
            fh.write(text.encode("utf-8"))
