"""The durable job queue (jobs/queue.py) and its states (jobs/states.py) on a real SQLite database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from automill.jobs import queue
from automill.jobs.result import JobResult
from automill.jobs.states import MAX_PARTIAL_FAILURES, JobState
from automill.services.operations import new_operation
from automill.store.db import Database, utcnow
from automill.store.tables import DatasetRow, OperationRow

OWNER = "host:1:owner"
FAR_FUTURE = time.time() + 10 * 365 * 24 * 3600


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/q.db")
    database.migrate()
    yield database
    database.dispose()


def enqueue(db: Database, *, kind: str = "k", max_attempts: int = 2) -> str:
    with db.tx() as s:
        row = new_operation(
            s,
            project="p",
            location="l",
            prefix="TCN",
            kind=kind,
            details_key="importDataDetails",
            works_on="x",
            max_attempts=max_attempts,
        )
        return row.id


def get(db: Database, op_id: str) -> OperationRow:
    with db.tx() as s:
        row = s.get(OperationRow, op_id)
        assert row is not None
        return row


def cancel(db: Database, op_id: str) -> None:
    with db.tx() as s:
        queue.request_cancel(s, s.get(OperationRow, op_id))


def claimed(db: Database, owner: str = OWNER, lease: float = 30.0) -> OperationRow:
    row = queue.claim(db, owner, lease)
    assert row is not None
    return row


def dataset_count(db: Database) -> int:
    with db.tx() as s:
        return int(s.execute(select(func.count()).select_from(DatasetRow)).scalar_one())


def add_dataset(s: Any, ds_id: str = "TCN1") -> None:
    s.add(
        DatasetRow(
            id=ds_id,
            project="p",
            location="l",
            display_name="d",
            description="",
            problem_type="text_classification",
            problem_metadata={},
            labels={},
            etag="e",
            create_time=utcnow(),
            seq=1,
        )
    )
    s.flush()


# -- states ----------------------------------------------------------------------------------------


def test_job_states() -> None:
    assert not JobState.QUEUED.done and not JobState.RUNNING.done
    assert JobState.SUCCEEDED.done and JobState.FAILED.done and JobState.CANCELLED.done
    assert JobState("RUNNING") is JobState.RUNNING and JobState.RUNNING == "RUNNING"
    assert MAX_PARTIAL_FAILURES == 20


def test_new_operation_is_queued(db: Database) -> None:
    row = get(db, enqueue(db))
    assert row.id.startswith("TCN")
    assert row.state == JobState.QUEUED and row.attempt == 0 and row.lease_owner == ""
    assert row.details_key == "importDataDetails" and row.works_on == "x" and row.kind == "k"


# -- claim -----------------------------------------------------------------------------------------


def test_claim_takes_the_oldest_queued(db: Database) -> None:
    first, second, third = enqueue(db), enqueue(db), enqueue(db)
    before = time.time()
    row = claimed(db, lease=30)
    assert row.id == first
    assert row.state == JobState.RUNNING and row.attempt == 1 and row.lease_owner == OWNER
    assert before + 30 - 1 <= row.lease_expires_at <= time.time() + 30 + 1
    stored = get(db, first)
    assert stored.state == JobState.RUNNING and stored.attempt == 1 and stored.lease_owner == OWNER
    assert stored.lease_expires_at == pytest.approx(row.lease_expires_at)
    assert claimed(db, "other").id == second
    assert claimed(db, "third").id == third
    assert queue.claim(db, OWNER, 30) is None


def test_second_claim_returns_none_with_one_queued(db: Database) -> None:
    op = enqueue(db)
    assert claimed(db).id == op
    assert queue.claim(db, "someone-else", 30) is None
    assert get(db, op).lease_owner == OWNER


def test_claim_on_an_empty_queue(db: Database) -> None:
    assert queue.claim(db, OWNER, 30) is None


def test_claim_filters_by_kind(db: Database) -> None:
    a = enqueue(db, kind="a")
    b = enqueue(db, kind="b")
    row = queue.claim(db, OWNER, 30, kinds={"b"})
    assert row is not None and row.id == b
    assert queue.claim(db, OWNER, 30, kinds={"b"}) is None
    assert claimed(db).id == a


def test_claim_skips_cancelled_and_finished(db: Database) -> None:
    gone = enqueue(db)
    cancel(db, gone)
    live = enqueue(db)
    assert claimed(db).id == live


# -- heartbeat and cancel --------------------------------------------------------------------------


def test_heartbeat_renews_the_lease(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db, lease=1)
    old = get(db, op).lease_expires_at
    assert queue.heartbeat(db, op, OWNER, row.attempt, 60) == (True, False)
    assert get(db, op).lease_expires_at > old + 30


def test_heartbeat_reports_cancel_on_running(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    cancel(db, op)
    stored = get(db, op)
    assert stored.state == JobState.RUNNING and stored.cancel_requested
    assert queue.heartbeat(db, op, OWNER, row.attempt, 30) == (True, True)


def test_heartbeat_of_someone_else_is_refused(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    assert queue.heartbeat(db, op, "intruder", row.attempt, 30) == (False, False)
    assert queue.heartbeat(db, op, OWNER, row.attempt + 1, 30) == (False, False)
    assert queue.heartbeat(db, "TCN-missing", OWNER, row.attempt, 30) == (False, False)


def test_request_cancel_on_queued_cancels_at_once(db: Database) -> None:
    op = enqueue(db)
    cancel(db, op)
    row = get(db, op)
    assert row.state == JobState.CANCELLED and row.error_code == 1
    assert row.error_message
    assert queue.claim(db, OWNER, 30) is None


def test_request_cancel_on_finished_does_nothing(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    assert queue.complete(db, op, OWNER, row.attempt, JobResult(result={"x": 1}), [])
    cancel(db, op)
    stored = get(db, op)
    assert stored.state == JobState.SUCCEEDED and stored.error_code == 0 and not stored.cancel_requested


# -- complete --------------------------------------------------------------------------------------


def test_complete_commits_side_effect_and_result(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    seen: dict[str, Any] = {}

    def commit(s: Any) -> dict[str, Any]:
        add_dataset(s)
        # the same transaction: the operation row is visible and still RUNNING here
        seen["state"] = s.execute(select(OperationRow.state).where(OperationRow.id == op)).scalar_one()
        return {"name": "projects/p/locations/l/datasets/TCN1"}

    failures = [{"code": 3, "message": f"row {i} is bad"} for i in range(30)]
    ok = queue.complete(
        db,
        op,
        OWNER,
        row.attempt,
        JobResult(result_type="Dataset", result={"ignored": True}, commit=commit, details={"extra": 1}),
        failures,
    )
    assert ok is True
    assert seen["state"] == JobState.RUNNING
    stored = get(db, op)
    assert stored.state == JobState.SUCCEEDED and stored.progress_percent == 100
    assert stored.result_type == "Dataset"
    assert stored.result == {"name": "projects/p/locations/l/datasets/TCN1"}
    assert stored.details == {"extra": 1}
    assert len(stored.partial_failures) == MAX_PARTIAL_FAILURES
    assert stored.partial_failures == failures[:20]
    assert stored.error_code == 0
    assert dataset_count(db) == 1


def test_complete_without_commit_records_result(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    assert queue.complete(db, op, OWNER, row.attempt, JobResult(result_type="Empty", result={}), [])
    stored = get(db, op)
    assert stored.state == JobState.SUCCEEDED and stored.result == {} and stored.partial_failures == []


def test_commit_that_raises_leaves_op_running_and_no_side_effect(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)

    def commit(s: Any) -> None:
        add_dataset(s)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        queue.complete(db, op, OWNER, row.attempt, JobResult(commit=commit), [{"code": 3, "message": "m"}])
    stored = get(db, op)
    assert stored.state == JobState.RUNNING
    assert stored.result is None and stored.partial_failures == [] and stored.progress_percent == 0
    assert dataset_count(db) == 0


def test_complete_after_cancel_requested_returns_false(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    cancel(db, op)
    ran: list[bool] = []

    def commit(s: Any) -> None:
        ran.append(True)
        add_dataset(s)

    assert queue.complete(db, op, OWNER, row.attempt, JobResult(result={"a": 1}, commit=commit), []) is False
    assert ran == []
    stored = get(db, op)
    assert stored.state == JobState.CANCELLED and stored.error_code == 1
    assert stored.result is None
    assert dataset_count(db) == 0


def test_complete_by_someone_else_returns_false(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    assert queue.complete(db, op, "intruder", row.attempt, JobResult(result={}), []) is False
    assert queue.complete(db, op, OWNER, row.attempt + 1, JobResult(result={}), []) is False
    assert get(db, op).state == JobState.RUNNING


# -- fail ------------------------------------------------------------------------------------------


def test_fail_by_owner(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    failures = [{"code": 3, "message": str(i)} for i in range(25)]
    assert queue.fail(db, op, 3, "bad input", owner=OWNER, attempt=row.attempt, partial_failures=failures)
    stored = get(db, op)
    assert stored.state == JobState.FAILED and stored.error_code == 3 and stored.error_message == "bad input"
    assert stored.partial_failures == failures[:20]
    # a finished job cannot fail again
    assert not queue.fail(db, op, 13, "again")
    assert get(db, op).error_code == 3


def test_fail_with_wrong_owner_does_nothing(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    assert queue.fail(db, op, 13, "boom", owner="intruder", attempt=row.attempt) is False
    assert queue.fail(db, op, 13, "boom", owner=OWNER, attempt=row.attempt + 1) is False
    stored = get(db, op)
    assert stored.state == JobState.RUNNING and stored.error_code == 0 and stored.error_message == ""


def test_fail_without_owner_fails_a_queued_op(db: Database) -> None:
    op = enqueue(db)
    assert queue.fail(db, op, 9, "precondition")
    stored = get(db, op)
    assert stored.state == JobState.FAILED and stored.error_code == 9


def test_fail_with_cancelled_state(db: Database) -> None:
    op = enqueue(db)
    row = claimed(db)
    assert queue.fail(
        db, op, 1, "Operation cancelled by the caller.", owner=OWNER, attempt=row.attempt, state=JobState.CANCELLED
    )
    assert get(db, op).state == JobState.CANCELLED


# -- progress --------------------------------------------------------------------------------------


def test_set_progress_is_clamped_monotonic_and_owned(db: Database) -> None:
    """A running job shows at most 99 (100 is ``complete``'s), never less than it showed before."""
    op = enqueue(db)
    row = claimed(db)
    queue.set_progress(db, op, OWNER, row.attempt, 42, "trial 1 of 3")
    assert (get(db, op).progress_percent, get(db, op).stage) == (42, "trial 1 of 3")
    queue.set_progress(db, op, OWNER, row.attempt, 250)
    assert (get(db, op).progress_percent, get(db, op).stage) == (99, "trial 1 of 3")
    queue.set_progress(db, op, OWNER, row.attempt, -5)
    assert get(db, op).progress_percent == 99
    queue.set_progress(db, op, "intruder", row.attempt, 77, "hijacked")
    assert (get(db, op).progress_percent, get(db, op).stage) == (99, "trial 1 of 3")
    assert queue.complete(db, op, OWNER, row.attempt, JobResult(result={}), [])
    assert (get(db, op).progress_percent, get(db, op).stage) == (100, None)


def test_job_context_progress_is_monotonic_and_throttled(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most one write a second; a value held back is written when the second is over."""
    from automill.jobs.context import JobContext

    op = enqueue(db)
    row = claimed(db)
    writes: list[tuple[int, str | None]] = []
    real = queue.set_progress
    monkeypatch.setattr(queue, "set_progress", lambda *a: (writes.append((a[4], a[5])), real(*a))[1])
    ctx = JobContext(db=db, op_id=op, kind="k", request={}, owner=OWNER, attempt=row.attempt, project="p", location="l")
    ctx.progress(10, stage="reading rows: 1 of 3")
    for pct in (20, 5, 30, 150):
        ctx.progress(pct)
    ctx.progress(40, stage="reading rows: 2 of 3")
    assert writes == [(10, "reading rows: 1 of 3")]
    time.sleep(1.3)  # the held-back value is written by the timer
    assert writes == [(10, "reading rows: 1 of 3"), (99, "reading rows: 2 of 3")]
    assert (get(db, op).progress_percent, get(db, op).stage) == (99, "reading rows: 2 of 3")
    ctx.close()


# -- sweep -----------------------------------------------------------------------------------------


def test_sweep_requeues_then_fails(db: Database) -> None:
    op = enqueue(db, max_attempts=2)
    row = claimed(db)
    queue.set_progress(db, op, OWNER, row.attempt, 50)
    assert queue.sweep(db, now=FAR_FUTURE) == [op]
    stored = get(db, op)
    assert stored.state == JobState.QUEUED and stored.lease_owner == "" and stored.attempt == 1
    assert stored.progress_percent == 0 and stored.error_code == 0
    # the old owner can no longer touch it
    assert queue.heartbeat(db, op, OWNER, 1, 30) == (False, False)
    assert queue.complete(db, op, OWNER, 1, JobResult(result={}), []) is False

    row2 = claimed(db, "second-worker")
    assert row2.id == op and row2.attempt == 2
    assert queue.sweep(db, now=FAR_FUTURE) == [op]
    stored = get(db, op)
    assert stored.state == JobState.FAILED and stored.error_code == 10
    assert "attempt 2 of 2" in stored.error_message
    assert queue.claim(db, OWNER, 30) is None


def test_sweep_with_one_attempt_fails_at_once(db: Database) -> None:
    op = enqueue(db, max_attempts=1)
    claimed(db)
    assert queue.sweep(db, now=FAR_FUTURE) == [op]
    stored = get(db, op)
    assert stored.state == JobState.FAILED and stored.error_code == 10 and "attempt 1 of 1" in stored.error_message


def test_sweep_cancels_a_cancel_requested_running_op(db: Database) -> None:
    op = enqueue(db)
    claimed(db)
    cancel(db, op)
    assert queue.sweep(db, now=FAR_FUTURE) == [op]
    stored = get(db, op)
    assert stored.state == JobState.CANCELLED and stored.error_code == 1


def test_sweep_leaves_live_leases_and_other_states_alone(db: Database) -> None:
    first = enqueue(db)
    second = enqueue(db)
    assert claimed(db, lease=3600).id == first
    assert claimed(db, lease=3600).id == second
    queued = enqueue(db)
    done = enqueue(db)
    with db.tx() as s:
        s.get(OperationRow, done).state = JobState.SUCCEEDED
    assert queue.sweep(db) == []
    assert queue.sweep(db, now=time.time() + 60) == []
    assert get(db, first).state == JobState.RUNNING and get(db, second).state == JobState.RUNNING
    assert sorted(queue.sweep(db, now=FAR_FUTURE)) == sorted([first, second])
    assert get(db, queued).state == JobState.QUEUED and get(db, queued).attempt == 0
    assert get(db, done).state == JobState.SUCCEEDED
