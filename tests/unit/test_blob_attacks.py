"""Attacks on bucket I/O: bucket names that reach the data folder, pipes, sockets, escaping globs, and
storage errors that would show server paths. Real files, pipes and sockets in tmp_path."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from automill.core.errors import AutomillError, FailedPrecondition, InvalidArgument, PermissionDenied
from automill.jobs import registry
from automill.jobs.context import JobContext
from automill.jobs.result import JobResult
from automill.settings import parse_buckets
from automill.store.blobs import BlobStore, split_gs

LONG = "a" * 300  # over the 255-byte limit of one file name


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    (tmp_path / "bucket").mkdir()
    (tmp_path / "data").mkdir()
    return BlobStore(tmp_path / "data", {"bkt": str(tmp_path / "bucket")})


def error_of(fn: Callable[[], Any]) -> AutomillError:
    """The AutomillError ``fn`` raises (any other exception, or none, fails the test)."""
    try:
        fn()
    except AutomillError as exc:
        return exc
    pytest.fail("no error raised")


def finished(seconds: float, fn: Callable[[], Any], unblock: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Run ``fn`` in a thread; it must end within ``seconds`` -> {"value": ...} or {"error": ...}. If it
    hangs, ``unblock()`` frees the thread (so the test run can end) and the test fails."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unblock()
        thread.join(5)
        pytest.fail(f"still running after {seconds} s")
    return outcome


def within(seconds: float, fn: Callable[[], Any], unblock: Callable[[], None]) -> AutomillError:
    """``fn`` must raise an AutomillError within ``seconds``."""
    outcome = finished(seconds, fn, unblock)
    assert isinstance(outcome.get("error"), AutomillError), outcome
    return outcome["error"]  # type: ignore[no-any-return]


def open_and_close(path: Path, flags: int) -> None:
    with contextlib.suppress(OSError):
        os.close(os.open(path, flags | os.O_NONBLOCK))


# -- bucket names ----------------------------------------------------------------------------------

VALID = [
    "my-bucket",
    "abc",
    "automill-bench",
    "a_b",
    "a-b",
    "0day",
    "a.b.c",
    "x" * 63,
    ".".join(["y" * 63] * 3) + "." + "z" * 30,
]  # 222 characters in parts of at most 63
INVALID = [
    "..",
    "b",
    "ab",
    ".",
    "...",
    "UPPER",
    "Bucket",
    "-abc",
    "abc-",
    "_abc",
    "abc_",
    ".abc",
    "abc.",
    "a..b",
    "192.168.1.10",
    "a b",
    "café",
    "a%2e",
    "*",
    "b*",
    "x" * 64,
    ".".join(["y" * 63] * 3) + "." + "z" * 31,
    "a." + "x" * 64,
]


def test_bucket_names_follow_the_gcs_rules() -> None:
    for name in VALID:
        assert split_gs(f"gs://{name}/k.csv") == (name, "k.csv")
    for name in INVALID:
        exc = error_of(lambda name=name: split_gs(f"gs://{name}/k.csv"))
        assert isinstance(exc, InvalidArgument), name
        assert repr(name) in exc.message and f"gs://{name}/k.csv" in exc.message


def test_dot_buckets_cannot_reach_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "models" / "m1").mkdir(parents=True)
    (data / "media" / "ab").mkdir(parents=True)
    (data / "automill.db").write_bytes(b"SQLite format 3\x00 secret rows")
    (data / "models" / "m1" / "model.json").write_text('{"secret": 1}')
    (data / "media" / "ab" / "ab12.png").write_bytes(b"\x89PNG other project's image")
    store = BlobStore(data, {})
    for uri in [
        "gs://../automill.db",
        "gs://../models/m1/model.json",
        "gs://../media/ab/ab12.png",
        "gs://./buckets/../automill.db",
        "gs://.../x",
    ]:
        exc = error_of(lambda uri=uri: store.read_bytes(uri))
        assert isinstance(exc, InvalidArgument) and uri in exc.message, uri
        assert str(tmp_path) not in exc.message
    assert isinstance(error_of(lambda: store.expand("gs://../models/*/model.json")), InvalidArgument)
    assert isinstance(error_of(lambda: store.write_text("gs://../x", "pwned")), InvalidArgument)
    assert isinstance(error_of(lambda: store.write_text("gs://../models/m1/model.json", "pwned")), InvalidArgument)
    assert not (data / "x").exists()
    assert (data / "models" / "m1" / "model.json").read_text() == '{"secret": 1}'


def test_configured_bucket_names_are_checked(tmp_path: Path) -> None:
    assert parse_buckets(["my-data=/srv/x", "bkt=/y"]) == {"my-data": "/srv/x", "bkt": "/y"}
    for spec in ["..=/srv/x", "UPPER=/srv/x", "a/b=/srv/x", "-x=/srv/x"]:
        exc = error_of(lambda spec=spec: parse_buckets([spec]))
        assert isinstance(exc, InvalidArgument) and exc.field == "bucket", spec
        assert "bucket name" in exc.message
    assert isinstance(error_of(lambda: parse_buckets("ok=/a,..=/b")), InvalidArgument)
    assert isinstance(error_of(lambda: BlobStore(tmp_path, {"..": str(tmp_path)})), InvalidArgument)


def test_default_bucket_folder_cannot_lead_outside_the_bucket_area(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    (tmp_path / "data" / "buckets").mkdir(parents=True)
    os.symlink(outside, tmp_path / "data" / "buckets" / "evil")
    store = BlobStore(tmp_path / "data", {})
    for action in (
        lambda: store.read_text("gs://evil/secret.txt"),
        lambda: store.write_text("gs://evil/new.txt", "x"),
        lambda: store.expand("gs://evil/*.txt"),
    ):
        exc = error_of(action)
        assert isinstance(exc, PermissionDenied) and "gs://evil/" in exc.message
        assert str(tmp_path) not in exc.message
    assert not (outside / "new.txt").exists()
    # a valid, unmapped name still lives in the default area
    store.write_text("gs://my-bucket/k/v.txt", "v")
    assert (tmp_path / "data" / "buckets" / "my-bucket" / "k" / "v.txt").read_text() == "v"


# -- wildcards -------------------------------------------------------------------------------------


def test_wildcards_never_match_outside_the_bucket(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("s")
    (tmp_path / "bucket" / "in").mkdir(parents=True)
    (tmp_path / "bucket" / "in" / "a.csv").write_text("a")
    os.symlink(outside, tmp_path / "bucket" / "link")
    os.symlink(outside / "secret.csv", tmp_path / "bucket" / "in" / "s.csv")
    # a bucket folder whose own path holds glob characters: "bkt[x]" must not match the sibling "bktx"
    (tmp_path / "bkt[x]").mkdir()
    (tmp_path / "bkt[x]" / "mine.csv").write_text("m")
    (tmp_path / "bktx").mkdir()
    (tmp_path / "bktx" / "theirs.csv").write_text("t")
    # symlink loops inside the bucket: a recursive wildcard must still end
    os.symlink("..", tmp_path / "bucket" / "in" / "up")
    os.symlink(".", tmp_path / "bucket" / "in" / "self")
    store = BlobStore(tmp_path / "data", {"bkt": str(tmp_path / "bucket"), "brk": str(tmp_path / "bkt[x]")})
    assert store.expand("gs://bkt/*/*.csv") == ["gs://bkt/in/a.csv"]
    assert finished(5.0, lambda: store.expand("gs://bkt/**/*.csv")) == {"value": ["gs://bkt/in/a.csv"]}
    assert store.expand("gs://brk/*.csv") == ["gs://brk/mine.csv"]
    for pattern in ["gs://bkt/*/../..", "gs://bkt/in/../../*", "gs://*/x.csv", "gs://b*/x.csv"]:
        exc = error_of(lambda pattern=pattern: store.expand(pattern))
        assert isinstance(exc, (PermissionDenied, InvalidArgument)), pattern


# -- only regular files ----------------------------------------------------------------------------


def test_reading_a_named_pipe_fails_at_once(store: BlobStore, tmp_path: Path) -> None:
    pipe = tmp_path / "bucket" / "pipe.csv"
    os.mkfifo(pipe)
    os.symlink(pipe, tmp_path / "bucket" / "alias.csv")
    store.buckets["fbk"] = f"file://{tmp_path / 'bucket'}"  # a bucket mapped by file:// URL is local too

    def free_reader() -> None:
        open_and_close(pipe, os.O_WRONLY)

    for read in (
        lambda: store.read_bytes("gs://bkt/pipe.csv"),
        lambda: store.read_text("gs://bkt/pipe.csv", max_bytes=10),
        lambda: store.read_text("gs://bkt/alias.csv"),
        lambda: store.read_bytes("gs://fbk/pipe.csv"),
    ):
        exc = within(1.0, read, free_reader)
        assert isinstance(exc, InvalidArgument) and "is not a regular file" in exc.message, exc
        assert "gs://" in exc.message and str(tmp_path) not in exc.message


def test_writing_over_a_named_pipe_fails_at_once(store: BlobStore, tmp_path: Path) -> None:
    pipe = tmp_path / "bucket" / "out.csv"
    os.mkfifo(pipe)
    exc = within(1.0, lambda: store.write_text("gs://bkt/out.csv", "x"), lambda: open_and_close(pipe, os.O_RDONLY))
    assert isinstance(exc, InvalidArgument) and exc.message == "gs://bkt/out.csv is not a regular file"


def test_sockets_are_not_regular_files(store: BlobStore, tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "bucket" / "sock"))
        for action in (lambda: store.read_bytes("gs://bkt/sock"), lambda: store.write_text("gs://bkt/sock", "x")):
            exc = error_of(action)
            assert isinstance(exc, InvalidArgument) and exc.message == "gs://bkt/sock is not a regular file"


# -- storage errors name the URI, never the path ---------------------------------------------------


def test_a_file_where_a_folder_should_be(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "bucket" / "out").write_text("I am a file")
    for uri in ["gs://bkt/out/x.csv", "gs://bkt/out/sub/deeper/x.csv"]:
        exc = error_of(lambda uri=uri: store.write_text(uri, "x"))
        assert isinstance(exc, FailedPrecondition), exc
        assert f"cannot write {uri}: gs://bkt/out is a file, not a folder" == exc.message
    (tmp_path / "bucket" / "dir").mkdir()
    exc = error_of(lambda: store.write_text("gs://bkt/dir", "x"))
    assert (
        isinstance(exc, FailedPrecondition) and exc.message == "cannot write gs://bkt/dir: it is a folder, not a file"
    )
    assert (tmp_path / "bucket" / "out").read_text() == "I am a file"


def test_a_name_over_255_bytes_is_invalid_argument(store: BlobStore, tmp_path: Path) -> None:
    for action in (
        lambda: store.write_text(f"gs://bkt/out/{LONG}/x.csv", "x"),
        lambda: store.write_text(f"gs://bkt/{LONG}", "x"),
        lambda: store.read_bytes(f"gs://bkt/{LONG}.csv"),
    ):
        exc = error_of(action)
        assert isinstance(exc, InvalidArgument), exc
        assert "255 bytes" in exc.message and "gs://bkt/" in exc.message and str(tmp_path) not in exc.message
    assert store.exists(f"gs://bkt/{LONG}.csv") is False


def test_storage_error_codes_and_messages() -> None:
    from automill.store.blobs import storage_error

    secret = "/srv/automill-data/buckets/b/x"
    cases = [
        (OSError(errno.ENOSPC, "No space left on device", secret), True, 8),
        (OSError(errno.EDQUOT, "Disk quota exceeded", secret), True, 8),
        (PermissionError(errno.EACCES, "Permission denied", secret), False, 7),
        (PermissionError(errno.EACCES, "Permission denied", secret), True, 7),
        (OSError(errno.ENAMETOOLONG, "File name too long", secret), True, 3),
        (OSError(errno.EINVAL, "Invalid argument", secret), True, 3),
        (FileNotFoundError(errno.ENOENT, "No such file", secret), False, 5),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", secret), True, 9),
        (FileExistsError(errno.EEXIST, "File exists", secret), True, 9),
        (IsADirectoryError(errno.EISDIR, "Is a directory", secret), True, 9),
        (OSError(errno.EIO, "Input/output error", secret), False, 13),
    ]
    for exc, writing, code in cases:
        err = storage_error("gs://bkt/x", exc, writing=writing)
        assert err.code == code, (exc, err)
        assert "gs://bkt/x" in err.message and "/srv" not in err.message


# -- unexpected job errors -------------------------------------------------------------------------


@registry.register("test_attack_oserror")
def _open_missing(ctx: JobContext) -> JobResult:
    Path(ctx.request["path"]).read_bytes()  # FileNotFoundError, whose text holds the server path
    return JobResult()


@pytest.fixture
def unregister() -> Iterator[None]:
    yield
    registry.unregister("test_attack_oserror")


def test_unexpected_job_error_hides_server_paths(tmp_path: Path, unregister: None) -> None:
    from automill.jobs.states import JobState
    from automill.jobs.worker import Worker
    from automill.services.operations import new_operation
    from automill.store.db import Database
    from automill.store.tables import OperationRow

    db = Database(f"sqlite:///{tmp_path}/w.db")
    db.migrate()
    try:
        with db.tx() as s:
            op = new_operation(
                s,
                project="p",
                location="l",
                prefix="TCN",
                kind="test_attack_oserror",
                details_key="importDataDetails",
                works_on="x",
                request={"path": str(tmp_path / "server-only" / "model.json")},
            ).id
        assert Worker(db, lambda: None, lease_seconds=10.0, heartbeat_seconds=0.2).run_once()
        with db.tx() as s:
            row = s.get(OperationRow, op)
            state, code, message = row.state, row.error_code, row.error_message
    finally:
        db.dispose()
    assert state == JobState.FAILED and code == 13
    assert str(tmp_path) not in message and "server-only" not in message, message
    assert "test_attack_oserror" in message and "FileNotFoundError" in message and op in message
