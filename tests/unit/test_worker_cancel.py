"""A real Worker: handlers run in forked children; a cancel kills even code that never checks a flag."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automill.core.errors import InvalidArgument
from automill.jobs import queue, registry
from automill.jobs.context import JobContext
from automill.jobs.result import JobResult
from automill.jobs.states import JobState
from automill.jobs.worker import Worker
from automill.services.operations import new_operation
from automill.store.db import Database
from automill.store.tables import OperationRow

KINDS = ("test_sleep", "test_ok", "test_boom", "test_crash", "test_exit")


# Registered at import time: the worker forks a child per job, and the child looks the handler up.
@registry.register("test_sleep")
def _sleep_forever(ctx: JobContext) -> JobResult:
    pid_file = ctx.request.get("pid_file")
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    while True:
        time.sleep(0.1)


@registry.register("test_ok")
def _ok(ctx: JobContext) -> JobResult:
    return JobResult(result_type="Empty", result={})


@registry.register("test_boom")
def _boom(ctx: JobContext) -> JobResult:
    raise InvalidArgument("bad thing")


@registry.register("test_crash")
def _crash(ctx: JobContext) -> JobResult:
    raise KeyError("oops")


@registry.register("test_exit")
def _exit(ctx: JobContext) -> JobResult:
    os._exit(7)


@pytest.fixture(scope="module", autouse=True)
def _unregister_handlers() -> Iterator[None]:
    yield
    for kind in KINDS:
        registry.unregister(kind)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/w.db")
    database.migrate()
    yield database
    database.dispose()


def make_worker(db: Database) -> Worker:
    return Worker(db, lambda: None, lease_seconds=10.0, heartbeat_seconds=0.2)


def enqueue(db: Database, kind: str, request: dict[str, Any] | None = None) -> str:
    with db.tx() as s:
        return new_operation(
            s,
            project="p",
            location="l",
            prefix="TCN",
            kind=kind,
            details_key="importDataDetails",
            works_on="x",
            request=request,
        ).id


def get(db: Database, op_id: str) -> OperationRow:
    with db.tx() as s:
        row = s.get(OperationRow, op_id)
        assert row is not None
        return row


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_kills_a_handler_that_never_checks(db: Database, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    op = enqueue(db, "test_sleep", {"pid_file": str(pid_file)})
    worker = make_worker(db)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["ran"] = worker.run_once()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert wait_for(lambda: get(db, op).state == JobState.RUNNING and pid_file.exists(), 10), get(db, op).state
    child_pid = int(pid_file.read_text())
    assert child_pid != os.getpid() and pid_alive(child_pid)
    time.sleep(0.3)  # a few heartbeats while it runs
    assert get(db, op).state == JobState.RUNNING

    cancelled_at = time.monotonic()
    with db.tx() as s:
        queue.request_cancel(s, s.get(OperationRow, op))
    assert wait_for(lambda: get(db, op).state == JobState.CANCELLED, 5), get(db, op).state
    thread.join(5)
    assert not thread.is_alive(), "run_once did not return after the cancel"
    assert time.monotonic() - cancelled_at < 5
    assert "error" not in outcome, outcome
    assert outcome["ran"] is True

    row = get(db, op)
    assert row.state == JobState.CANCELLED and row.error_code == 1
    assert "cancel" in row.error_message.lower()
    assert row.result is None
    assert wait_for(lambda: not pid_alive(child_pid), 2), "the job's child process is still alive"


def test_ok_handler_succeeds(db: Database) -> None:
    op = enqueue(db, "test_ok")
    worker = make_worker(db)
    assert worker.run_once() is True
    row = get(db, op)
    assert row.state == JobState.SUCCEEDED, (row.state, row.error_code, row.error_message)
    assert row.error_code == 0 and row.result_type == "Empty" and row.result == {}
    assert row.progress_percent == 100 and row.attempt == 1
    assert worker.run_once() is False  # nothing left


def test_automill_error_fails_with_its_code(db: Database) -> None:
    op = enqueue(db, "test_boom")
    assert make_worker(db).run_once() is True
    row = get(db, op)
    assert row.state == JobState.FAILED
    assert row.error_code == 3
    assert row.error_message == "bad thing"


def test_unexpected_exception_is_internal(db: Database) -> None:
    op = enqueue(db, "test_crash")
    assert make_worker(db).run_once() is True
    row = get(db, op)
    assert row.state == JobState.FAILED and row.error_code == 13
    assert "KeyError" in row.error_message and "test_crash" in row.error_message


def test_child_that_dies_fails_the_op(db: Database) -> None:
    op = enqueue(db, "test_exit")
    assert make_worker(db).run_once() is True
    row = get(db, op)
    assert row.state == JobState.FAILED and row.error_code == 13
    assert "exit code 7" in row.error_message


def test_hard_timeout_stops_the_job(db: Database) -> None:
    op = enqueue(db, "test_sleep", {"_hard_timeout_s": 0.5})
    started = time.monotonic()
    assert make_worker(db).run_once() is True
    assert time.monotonic() - started < 5
    row = get(db, op)
    assert row.state == JobState.FAILED and row.error_code == 4


def test_run_once_with_nothing_queued(db: Database) -> None:
    assert make_worker(db).run_once() is False
