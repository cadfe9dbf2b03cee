"""Blob I/O through fsspec. ``gs://BUCKET/key`` resolves to the bucket's configured root.

By default a bucket is the local folder ``<data_dir>/buckets/BUCKET``; ``--bucket NAME=PATH`` maps it
to any folder, or to an fsspec URL (``s3://real-bucket/prefix``, ``gs://real-bucket``) for real
object stores. Bucket names follow the GCS naming rules (:func:`bucket_name_problem`), so no name
can point at the data folder itself (``gs://../automill.db``). A key can never reach outside its
bucket's root: ``..`` segments, absolute keys and symlinks that point outside are refused with
PermissionDenied; wildcards only match inside the bucket.

Local files are opened without blocking and without following a final symlink, and only regular
files are read or written: a named pipe, socket or device in a bucket is refused at once instead
of hanging a worker. Errors of the storage become AutomillErrors that name the gs:// URI, never a
server path (:func:`storage_error`).

``gs://automill-samples`` is built in: the package's sample data, read-only, on every server.
"""

from __future__ import annotations

import errno
import glob
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from automill.core.errors import (
    AutomillError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)

GS = "gs://"

#: GCS's bucket naming rules: 3 to 63 characters.
MIN_BUCKET_NAME = 3
MAX_BUCKET_NAME = 63
#: A name with dots may be longer, in dot-separated parts of at most MAX_BUCKET_NAME characters.
MAX_DOTTED_BUCKET_NAME = 222
_BUCKET_CHARS = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
#: The kernel's limit on one file or folder name (NAME_MAX), in bytes.
MAX_NAME_BYTES = 255


# -- names --------------------------------------------------------------------------------------------


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` breaks the GCS bucket naming rules, or None when it follows them."""
    limit = MAX_DOTTED_BUCKET_NAME if "." in name else MAX_BUCKET_NAME
    if not MIN_BUCKET_NAME <= len(name) <= limit:
        return f"a bucket name has {MIN_BUCKET_NAME} to {limit} characters"
    if not _BUCKET_CHARS.fullmatch(name):
        return (
            "a bucket name has only lowercase letters, digits, '-', '_' and '.', and starts and ends "
            "with a letter or digit"
        )
    parts = name.split(".")
    if any(not part for part in parts):
        return "a bucket name cannot contain '..'"
    if any(len(part) > MAX_BUCKET_NAME for part in parts):
        return f"each dot-separated part of a bucket name has at most {MAX_BUCKET_NAME} characters"
    if _IPV4.fullmatch(name):
        return "a bucket name cannot be an IP address"
    return None


def check_bucket_name(name: str, where: str, *, field: str | None = None) -> None:
    """Raise InvalidArgument (naming ``where``: a URI or a setting) unless ``name`` is a valid bucket name."""
    problem = bucket_name_problem(name)
    if problem:
        raise InvalidArgument(f"{where}: bucket name {name!r} is invalid: {problem}", field=field)


def split_gs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ("bucket", "a/b"); the bucket name must follow the GCS rules."""
    if not uri.startswith(GS):
        raise InvalidArgument(f"{uri!r} is not a gs:// URI")
    bucket, _, key = uri[len(GS) :].partition("/")
    if not bucket:
        raise InvalidArgument(f"{uri!r} has no bucket name")
    check_bucket_name(bucket, uri)
    return bucket, key


def _clean_key(uri: str, key: str) -> str:
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise PermissionDenied(f"{uri}: path is outside its bucket")
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PermissionDenied(f"{uri}: path is outside its bucket ('..' is not allowed)")
    return "/".join(parts)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# -- errors ---------------------------------------------------------------------------------------


def storage_error(uri: str, exc: OSError, *, writing: bool, file_in_the_way: str | None = None) -> AutomillError:
    """An OSError of bucket I/O -> the AutomillError a caller should see: it names ``uri``, never a server path.

    ``file_in_the_way``: the gs:// URI of a file that stands where a folder of ``uri`` should be.
    """
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)) and not writing:
        return NotFound(f"{uri} not found")
    if isinstance(exc, IsADirectoryError):
        return FailedPrecondition(f"cannot write {uri}: it is a folder, not a file")
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return FailedPrecondition(
            f"cannot write {uri}: {file_in_the_way or 'a part of its path'} is a file, not a folder"
        )
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"the server is not allowed to {'write' if writing else 'read'} {uri}")
    if exc.errno == errno.ENAMETOOLONG:
        return InvalidArgument(
            f"{uri} is too long for the bucket's storage: each folder or file name in it can "
            f"have at most {MAX_NAME_BYTES} bytes"
        )
    if exc.errno == errno.EINVAL:
        return InvalidArgument(f"{uri} is not a valid object name for the bucket's storage")
    if exc.errno == errno.ENXIO:  # a socket, or a pipe opened for writing that no one reads
        return InvalidArgument(f"{uri} is not a regular file")
    if exc.errno == errno.ELOOP:
        return PermissionDenied(f"{uri}: path leads through a symbolic link that is not allowed here")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return ResourceExhausted(f"no space left in the bucket's storage to write {uri}")
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    return Internal(f"storage error while {'writing' if writing else 'reading'} {uri}: {reason}")


@contextmanager
def _storage_errors(uri: str, *, writing: bool, file_in_the_way: Any = None) -> Iterator[None]:
    """Turn OSErrors inside the block into :func:`storage_error`; ``file_in_the_way()`` is asked lazily."""
    try:
        yield
    except OSError as exc:
        blocker = (
            file_in_the_way() if file_in_the_way and isinstance(exc, (NotADirectoryError, FileExistsError)) else None
        )
        raise storage_error(uri, exc, writing=writing, file_in_the_way=blocker) from None


# -- local files ------------------------------------------------------------------------------------


def _open_local(uri: str, path: str, root: Path, flags: int) -> int:
    """Open a file of a local bucket: no blocking, no final symlink, only a regular file inside ``root``."""
    real = os.path.realpath(path)
    if not _inside(Path(real), root):
        raise PermissionDenied(f"{uri}: path leads outside its bucket (symlink)")
    fd = os.open(real, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        _check_regular_file(uri, fd)
        _check_fd_inside(uri, fd, root)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_regular_file(uri: str, fd: int) -> None:
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory")
    if not stat.S_ISREG(mode):
        raise InvalidArgument(f"{uri} is not a regular file")


def _check_fd_inside(uri: str, fd: int, root: Path) -> None:
    """What the kernel opened must lie inside the bucket, even if a folder was swapped for a symlink meanwhile."""
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc: the realpath check before the open stands alone
        return
    if not _inside(Path(opened), root):
        raise PermissionDenied(f"{uri}: path leads outside its bucket (symlink)")


def _read_limited(uri: str, fh: IO[bytes], size: int | None, max_bytes: int | None) -> bytes:
    """Check the size before reading, and never read more than ``max_bytes`` + 1 bytes."""
    if max_bytes is None:
        return fh.read()
    if size is not None and size > max_bytes:
        raise InvalidArgument(f"{uri} is {size} bytes, over the limit of {max_bytes}")
    data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidArgument(f"{uri} is over the limit of {max_bytes} bytes")
    return data


@dataclass(frozen=True)
class _Target:
    """Where a gs:// URI lives: a filesystem, the path in it, the bucket root, and whether it is a local folder."""

    fs: Any
    path: str
    root: str
    bucket: str
    key: str
    local: bool


#: Buckets every server has, read-only: the sample data shipped in the package (samples/README.md).
BUILTIN_BUCKETS = {"automill-samples": Path(__file__).resolve().parents[1] / "samples"}


#: The project whose request or job is using the blob store now (set by the API for each request and
#: by the worker for each job); a granted bucket is open only to its projects. Empty: no project
#: (server-side work such as the sweep), which grants do not restrict.
acting_project: ContextVar[str] = ContextVar("automill_acting_project", default="")

_PROJECTS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}(,[A-Za-z0-9][A-Za-z0-9._-]{0,62})*$")


def split_grants(mapping: str) -> tuple[str, tuple[str, ...]]:
    """``PATH@p1,p2`` -> (PATH, ("p1", "p2")); ``PATH`` -> (PATH, ()): open to every project."""
    path, sep, projects = mapping.rpartition("@")
    if not sep or not _PROJECTS.match(projects):
        return mapping, ()
    return path, tuple(projects.split(","))


class BlobStore:
    def __init__(self, data_dir: Path, buckets: dict[str, str]) -> None:
        self.data_dir = Path(data_dir)
        self.buckets: dict[str, str] = {}
        #: bucket -> the projects it is granted to (a bucket not listed is open to every project)
        self.grants: dict[str, tuple[str, ...]] = {}
        for name, mapping in buckets.items():
            check_bucket_name(name, "bucket mapping", field="bucket")
            if name in BUILTIN_BUCKETS:
                raise InvalidArgument(
                    f"bucket mapping {name!r}: gs://{name} is built in (the sample data); map another name",
                    field="bucket",
                )
            self.buckets[name], projects = split_grants(mapping)
            if projects:
                self.grants[name] = projects

    def check_access(self, uri: str, project: str | None = None) -> None:
        """Refuse a bucket that is granted to other projects than ``project`` (default: the acting one).
        The message is the same whether or not the path exists."""
        bucket, _ = split_gs(uri)
        project = acting_project.get() if project is None else project
        granted = self.grants.get(bucket)
        if granted and project and project not in granted:
            raise PermissionDenied(f"gs://{bucket} is not granted to project {project}")

    def check_writable(self, uri: str) -> None:
        """Refuse writes to a built-in bucket before any work is queued."""
        bucket, _ = split_gs(uri)
        if bucket in BUILTIN_BUCKETS:
            raise PermissionDenied(
                f"gs://{bucket} is read-only (Automill's sample data): write to a bucket of "
                "your own, e.g. gs://my-bucket/out"
            )

    # -- resolution -------------------------------------------------------------------------------
    def resolve(self, uri: str) -> tuple[Any, str]:
        """-> (fsspec filesystem, path inside it), refusing anything outside the bucket."""
        target = self._target(uri)
        return target.fs, target.path

    def _target(self, uri: str) -> _Target:
        bucket, key = split_gs(uri)
        self.check_access(uri)
        key = _clean_key(uri, key)
        root = self._local_root(uri, bucket)
        if root is None:
            fs, base = fsspec.core.url_to_fs(self.buckets[bucket])
            path = posixpath.join(base.rstrip("/"), key) if key else base
            return _Target(fs, path, base, bucket, key, local=False)
        path = root / key if key else root
        if not _inside(Path(os.path.realpath(path)), root):
            raise PermissionDenied(f"{uri}: path leads outside its bucket (symlink)")
        return _Target(fsspec.filesystem("file"), str(path), str(root), bucket, key, local=True)

    def _local_root(self, uri: str, bucket: str) -> Path | None:
        """The resolved folder of a local bucket, or None for an object store (``s3://...``)."""
        if bucket in BUILTIN_BUCKETS:
            return BUILTIN_BUCKETS[bucket].resolve()
        root = self.buckets.get(bucket)
        if root is None:
            return self._default_root(uri, bucket)
        if "://" in root:
            fs, base = fsspec.core.url_to_fs(root)
            if not isinstance(fs, LocalFileSystem):
                return None
            root = base
        return Path(root).resolve()

    def _default_root(self, uri: str, bucket: str) -> Path:
        """``<data_dir>/buckets/NAME``, which must stay inside ``<data_dir>/buckets`` even through symlinks."""
        area = (self.data_dir / "buckets").resolve()
        root = (area / bucket).resolve()
        if root == area or not _inside(root, area):
            raise PermissionDenied(f"{uri}: the folder of bucket {bucket!r} leads outside the bucket area")
        return root

    def _file_in_the_way(self, target: _Target) -> str | None:
        """The gs:// URI of the first folder on ``target``'s path that exists as a file, if any."""
        parts = target.key.split("/")
        for n in range(1, len(parts)):
            prefix = "/".join(parts[:n])
            path = posixpath.join(target.root.rstrip("/"), prefix)
            if target.fs.exists(path) and not target.fs.isdir(path):
                return f"{GS}{target.bucket}/{prefix}"
        return None

    # -- reading ----------------------------------------------------------------------------------
    def read_bytes(self, uri: str, *, max_bytes: int | None = None) -> bytes:
        target = self._target(uri)
        with _storage_errors(uri, writing=False):
            if not target.local:
                size = target.fs.size(target.path) if max_bytes is not None else None
                with target.fs.open(target.path, "rb") as fh:
                    return _read_limited(uri, fh, size, max_bytes)
            fd = _open_local(uri, target.path, Path(target.root), os.O_RDONLY)
            with os.fdopen(fd, "rb") as fh:
                return _read_limited(uri, fh, os.fstat(fd).st_size, max_bytes)

    def read_text(self, uri: str, *, max_bytes: int | None = None) -> str:
        data = self.read_bytes(uri, max_bytes=max_bytes)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidArgument(f"{uri} is not UTF-8 text: {exc}") from None

    def exists(self, uri: str) -> bool:
        target = self._target(uri)
        with _storage_errors(uri, writing=False):
            return bool(target.fs.exists(target.path))

    def expand(self, uri: str) -> list[str]:
        """A URI or a wildcard (``gs://bkt/dir/*.csv``) -> the matching gs:// URIs inside the bucket, sorted."""
        if not any(ch in uri for ch in "*?["):
            return [uri]
        target = self._target(uri)
        with _storage_errors(uri, writing=False):
            keys = self._glob_local(target) if target.local else self._glob_remote(target)
        return [f"{GS}{target.bucket}/{key}" for key in sorted(keys)]

    @staticmethod
    def _glob_local(target: _Target) -> list[str]:
        """fsspec's glob (which does not descend into symlinked folders, so a symlink loop cannot make it run
        forever) on the bucket folder's escaped path, so that a '[' or '*' in that path is never a pattern;
        matches that lead outside the bucket through a symlink are dropped."""
        root = Path(target.root)
        prefix = f"{root}/"
        matches = (str(m) for m in target.fs.glob(posixpath.join(glob.escape(str(root)), target.key)))
        return [m[len(prefix) :] for m in matches if m.startswith(prefix) and _inside(Path(os.path.realpath(m)), root)]

    @staticmethod
    def _glob_remote(target: _Target) -> list[str]:
        prefix = target.root.rstrip("/") + "/"
        found = (str(m) for m in target.fs.glob(target.path))
        return [m[len(prefix) :] for m in found if m.startswith(prefix) and len(m) > len(prefix)]

    def list_folder(self, uri: str, limit: int) -> list[tuple[str, int]]:
        """The files under the folder ``uri`` (``gs://bkt/dir``), at any depth: (gs:// URI, size in bytes),
        sorted, at most ``limit`` + 1 of them (one more than ``limit`` tells the caller there are more).

        Only regular files count: symbolic links and special files in a local bucket are skipped, and a
        symlinked folder is not entered, so the listing never leaves the bucket. A folder that does not
        exist has no files."""
        target = self._target(uri.rstrip("/") + "/")
        found: list[tuple[str, int]] = []
        with _storage_errors(uri, writing=False):
            if target.local:
                base = Path(target.path)
                if not base.is_dir() or base.is_symlink():
                    return []
                for folder, dirs, files in os.walk(base, followlinks=False):
                    dirs.sort()
                    for name in sorted(files):
                        info = os.lstat(os.path.join(folder, name))
                        if stat.S_ISREG(info.st_mode):
                            rel = Path(folder, name).relative_to(Path(target.root)).as_posix()
                            found.append((f"{GS}{target.bucket}/{rel}", info.st_size))
                            if len(found) > limit:
                                return sorted(found)
                return sorted(found)
            prefix = target.root.rstrip("/") + "/"
            if not target.fs.isdir(target.path):
                return []
            for path, info in sorted(target.fs.find(target.path, detail=True).items()):
                if str(path).startswith(prefix) and info.get("type") == "file":
                    found.append((f"{GS}{target.bucket}/{str(path)[len(prefix) :]}", int(info.get("size") or 0)))
                    if len(found) > limit:
                        break
        return found

    @contextmanager
    def open_read(self, uri: str) -> Iterator[IO[bytes]]:
        """A file of a bucket opened for reading (a regular file inside the bucket, as read_bytes checks)."""
        target = self._target(uri)
        with _storage_errors(uri, writing=False):
            if target.local:
                fh: IO[bytes] = os.fdopen(_open_local(uri, target.path, Path(target.root), os.O_RDONLY), "rb")
            else:
                fh = target.fs.open(target.path, "rb")
        with fh:
            yield fh

    # -- writing ----------------------------------------------------------------------------------
    @contextmanager
    def open_write(self, uri: str, mode: str = "wb") -> Iterator[IO[Any]]:
        self.check_writable(uri)
        target = self._target(uri)
        with _storage_errors(uri, writing=True, file_in_the_way=lambda: self._file_in_the_way(target)):
            fh = self._open_for_write(uri, target, mode)
        with _space_errors(uri), fh:
            yield fh

    def _open_for_write(self, uri: str, target: _Target, mode: str) -> IO[Any]:
        target.fs.makedirs(posixpath.dirname(target.path), exist_ok=True)
        if not target.local:
            remote: IO[Any] = target.fs.open(target.path, mode)
            return remote
        fd = _open_local(uri, target.path, Path(target.root), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        return os.fdopen(fd, mode)

    def write_text(self, uri: str, text: str) -> None:
        with self.open_write(uri, "wb") as fh:
            fh.write(text.encode("utf-8"))


@contextmanager
def _space_errors(uri: str) -> Iterator[None]:
    """While the caller writes: a full disk or quota is ResourceExhausted; the caller's own errors pass."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise storage_error(uri, exc, writing=True) from None
        raise
