"""Worker processes: claim a job, run its handler in a child process, heartbeat, cancel, sweep.

The handler runs in a forked child so that a cancel (or a blown budget) can stop any code, even a
library call that never checks a flag: the parent kills the child within one heartbeat. The child
commits the job's result itself; the parent only records what the child could not (a crash, a
kill). All processes ask the kernel to kill them when their parent dies (PR_SET_PDEATHSIG), so a
server killed with SIGKILL leaves no orphaned training behind; its leases expire and the sweep on
the next start resumes or fails those jobs.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from automill.core.errors import AutomillError
from automill.jobs import queue
from automill.jobs.context import JobContext
from automill.jobs.registry import get_handler
from automill.jobs.states import JobState
from automill.store.blobs import acting_project
from automill.store.db import Database
from automill.store.tables import OperationRow

log = logging.getLogger("automill.worker")

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: get SIGKILL when the parent process exits (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def internal_error_message(op: dict[str, Any], exc: BaseException) -> str:
    """The stored message of an unexpected failure: its type only. ``str(exc)`` may hold server paths or
    other internals; the traceback goes to the server log."""
    return (
        f"Internal error while running {op['kind']} ({type(exc).__name__}); see the server log for operation {op['id']}"
    )


def _run_child(db_url: str, services_factory: Callable[[], Any], op: dict[str, Any], owner: str) -> None:
    die_with_parent()
    os.setpgrp()  # own process group: a cancel kills the child and anything it started
    db = Database(db_url)
    started_at, earlier_seconds = queue.attempt_clock(db, op["id"], op["attempt"])
    ctx = JobContext(
        db=db,
        op_id=op["id"],
        kind=op["kind"],
        request=op["request"],
        owner=owner,
        attempt=op["attempt"],
        project=op["project"],
        location=op["location"],
        started_at=started_at,
        earlier_seconds=earlier_seconds,
    )
    acting_project.set(op["project"])  # the job reads and writes only buckets open to its project
    try:
        ctx.services = services_factory()
        result = get_handler(op["kind"])(ctx)
        ctx.close()
        queue.complete(db, op["id"], owner, op["attempt"], result, ctx.partial_failures)
    except AutomillError as exc:
        queue.fail(
            db,
            op["id"],
            exc.code,
            exc.message,
            owner=owner,
            attempt=op["attempt"],
            partial_failures=ctx.partial_failures,
        )
    except Exception as exc:
        log.error("job %s failed:\n%s", op["id"], traceback.format_exc())
        queue.fail(
            db,
            op["id"],
            13,
            internal_error_message(op, exc),
            owner=owner,
            attempt=op["attempt"],
            partial_failures=ctx.partial_failures,
        )
    finally:
        ctx.close()
        db.dispose()


class Worker:
    def __init__(
        self,
        db: Database,
        services_factory: Callable[[], Any],
        *,
        lease_seconds: float = 10.0,
        heartbeat_seconds: float = 1.0,
        poll_seconds: float = 0.3,
        sweep_seconds: float = 2.0,
    ) -> None:
        self.db = db
        self.services_factory = services_factory
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        self.sweep_seconds = sweep_seconds
        self._stop = False
        self._last_sweep = 0.0

    def stop(self, *_: object) -> None:
        self._stop = True

    def run_forever(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        log.info("worker %s started", self.owner)
        while not self._stop:
            if not self.run_once():
                time.sleep(self.poll_seconds)

    def run_once(self) -> bool:
        """Sweep if due, then run at most one job. -> whether a job ran."""
        now = time.monotonic()
        if now - self._last_sweep >= self.sweep_seconds:
            self._last_sweep = now
            for op_id in queue.sweep(self.db):
                log.warning("operation %s lost its worker; requeued or failed", op_id)
        row = queue.claim(self.db, self.owner, self.lease_seconds)
        if row is None:
            return False
        self._supervise(row)
        return True

    def _supervise(self, row: OperationRow) -> None:
        op = {
            "id": row.id,
            "kind": row.kind,
            "request": row.request,
            "attempt": row.attempt,
            "project": row.project,
            "location": row.location,
        }
        hard_timeout = float(row.request.get("_hard_timeout_s", 0) or 0)
        log.info("running %s %s (attempt %d)", row.kind, row.id, row.attempt)
        self.db.engine.dispose(close=False)
        child = mp.get_context("fork").Process(
            target=_run_child, args=(self.db.url, self.services_factory, op, self.owner), daemon=False
        )
        child.start()
        started = time.monotonic()
        reason = ""
        while True:
            child.join(self.heartbeat_seconds)
            if not child.is_alive():
                break
            ours, cancel = queue.heartbeat(self.db, row.id, self.owner, row.attempt, self.lease_seconds)
            if cancel or not ours:
                reason = "cancel" if cancel else "lost"
            elif hard_timeout and time.monotonic() - started > hard_timeout:
                reason = "timeout"
            elif self._stop:
                reason = "shutdown"
            if reason:
                self._kill(child)
                break
        if reason == "cancel":
            queue.fail(
                self.db,
                row.id,
                1,
                "Operation cancelled by the caller.",
                owner=self.owner,
                attempt=row.attempt,
                state=JobState.CANCELLED,
            )
        elif reason == "timeout":
            queue.fail(
                self.db,
                row.id,
                4,
                f"The operation ran past its time limit of {hard_timeout:.0f} s and was stopped.",
                owner=self.owner,
                attempt=row.attempt,
            )
        elif reason == "shutdown":
            if row.attempt < row.max_attempts:
                self._requeue(row)  # give it back: another (or a restarted) worker runs it again
            else:
                queue.fail(
                    self.db,
                    row.id,
                    14,
                    "The worker was shut down while running this operation.",
                    owner=self.owner,
                    attempt=row.attempt,
                )
        elif reason == "" and child.exitcode not in (0, None):
            queue.fail(
                self.db,
                row.id,
                13,
                f"The job process exited unexpectedly (exit code {child.exitcode}).",
                owner=self.owner,
                attempt=row.attempt,
            )

    def _requeue(self, row: OperationRow) -> None:
        from sqlalchemy import update

        with self.db.tx() as s:
            s.execute(
                update(OperationRow)
                .where(
                    OperationRow.id == row.id,
                    OperationRow.state == JobState.RUNNING,
                    OperationRow.lease_owner == self.owner,
                )
                .values(
                    state=JobState.QUEUED,
                    lease_owner="",
                    progress_percent=0,
                    stage="queued again: the worker was shut down",
                )
            )
            queue.clock_attempt(s, row.id, row.attempt)  # what this attempt used counts against a budget

    @staticmethod
    def _kill(child: Any) -> None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.kill()
        child.join(5)
