"""One function per job transition; each persists the transition in one transaction.

Claims are optimistic (``UPDATE … WHERE state='QUEUED'``; on PostgreSQL the candidate is picked with
``FOR UPDATE SKIP LOCKED``), so any number of workers on any number of machines can share a database.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.orm import Session

from automill.jobs.result import JobResult
from automill.jobs.states import MAX_PARTIAL_FAILURES, JobState
from automill.store.db import Database, updated_rows, utcnow
from automill.store.tables import AttemptRow, OperationRow


def claim(db: Database, owner: str, lease_seconds: float, kinds: set[str] | None = None) -> OperationRow | None:
    """Take the oldest queued job, or None. The attempt starts its clock (``operation_attempts``) here."""
    with db.tx() as s:
        q = select(OperationRow.id).where(OperationRow.state == JobState.QUEUED)
        if kinds:
            q = q.where(OperationRow.kind.in_(kinds))
        q = q.order_by(OperationRow.seq).limit(1)
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True)
        op_id = s.execute(q).scalar_one_or_none()
        if op_id is None:
            return None
        claimed = updated_rows(
            s,
            update(OperationRow)
            .where(OperationRow.id == op_id, OperationRow.state == JobState.QUEUED)
            .values(
                state=JobState.RUNNING,
                lease_owner=owner,
                lease_expires_at=time.time() + lease_seconds,
                attempt=OperationRow.attempt + 1,
                updated_at=utcnow(),
            ),
        )
        if claimed != 1:
            return None
        row = s.get(OperationRow, op_id)
        if row is None:
            return None
        s.add(AttemptRow(operation_id=op_id, attempt=row.attempt, owner=owner, started_at=time.time(), seconds=0.0))
        return row


def clock_attempt(s: Session, op_id: str, attempt: int) -> None:
    """Record an attempt's compute so far: the seconds since its claim."""
    s.execute(
        update(AttemptRow)
        .where(AttemptRow.operation_id == op_id, AttemptRow.attempt == attempt)
        .values(seconds=literal(time.time()) - AttemptRow.started_at)
    )


def attempt_clock(db: Database, op_id: str, attempt: int) -> tuple[float, float]:
    """-> (unix time this attempt was claimed, seconds the earlier attempts recorded). A job's compute
    so far is the second plus the time since the first."""
    with db.tx() as s:
        started = s.execute(
            select(AttemptRow.started_at).where(AttemptRow.operation_id == op_id, AttemptRow.attempt == attempt)
        ).scalar_one_or_none()
        earlier = s.execute(
            select(func.coalesce(func.sum(AttemptRow.seconds), 0.0)).where(
                AttemptRow.operation_id == op_id, AttemptRow.attempt < attempt
            )
        ).scalar_one()
    return (time.time() if started is None else float(started)), float(earlier)


def attempts(db: Database, op_id: str) -> list[AttemptRow]:
    """Every attempt at an operation, the first first."""
    with db.tx() as s:
        return list(
            s.execute(select(AttemptRow).where(AttemptRow.operation_id == op_id).order_by(AttemptRow.attempt)).scalars()
        )


def _owned(op_id: str, owner: str, attempt: int) -> Any:
    return (
        OperationRow.id == op_id,
        OperationRow.state == JobState.RUNNING,
        OperationRow.lease_owner == owner,
        OperationRow.attempt == attempt,
    )


def heartbeat(db: Database, op_id: str, owner: str, attempt: int, lease_seconds: float) -> tuple[bool, bool]:
    """Renew the lease -> (still ours, cancel requested)."""
    with db.tx() as s:
        renewed = updated_rows(
            s,
            update(OperationRow)
            .where(*_owned(op_id, owner, attempt))
            .values(lease_expires_at=time.time() + lease_seconds),
        )
        if renewed != 1:
            return False, False
        clock_attempt(s, op_id, attempt)
        cancel = s.execute(select(OperationRow.cancel_requested).where(OperationRow.id == op_id)).scalar_one()
        return True, bool(cancel)


def set_progress(db: Database, op_id: str, owner: str, attempt: int, percent: int, stage: str | None = None) -> None:
    """Record a running job's progress (never lowered here: a stale write cannot undo a newer one)
    and, when given, what it is doing now."""
    pct = max(0, min(99, int(percent)))
    values: dict[str, Any] = {
        "progress_percent": case((OperationRow.progress_percent > pct, OperationRow.progress_percent), else_=pct),
        "updated_at": utcnow(),
    }
    if stage is not None:
        values["stage"] = stage[:500]
    with db.tx() as s:
        s.execute(update(OperationRow).where(*_owned(op_id, owner, attempt)).values(**values))


def complete(
    db: Database, op_id: str, owner: str, attempt: int, result: JobResult, partial_failures: list[dict[str, Any]]
) -> bool:
    """Mark SUCCEEDED and apply the job's side effect in the same transaction."""
    with db.tx() as s:
        row = s.execute(
            select(OperationRow).where(*_owned(op_id, owner, attempt)).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            return False
        clock_attempt(s, op_id, attempt)
        if row.cancel_requested:  # the cancel won the race: nothing of the result is kept
            row.state, row.error_code = JobState.CANCELLED, 1
            row.error_message = "Operation cancelled by the caller."
            row.updated_at = utcnow()
            return False
        payload = result.result
        if result.commit is not None:
            payload = result.commit(s) or payload
        row.state = JobState.SUCCEEDED
        row.result_type = result.result_type
        row.result = payload
        row.details = {**row.details, **result.details}
        row.partial_failures = partial_failures[:MAX_PARTIAL_FAILURES]
        row.progress_percent = 100
        row.stage = None
        row.updated_at = utcnow()
        return True


def fail(
    db: Database,
    op_id: str,
    code: int,
    message: str,
    *,
    owner: str | None = None,
    attempt: int | None = None,
    partial_failures: list[dict[str, Any]] | None = None,
    state: JobState = JobState.FAILED,
) -> bool:
    with db.tx() as s:
        conds = [OperationRow.id == op_id, OperationRow.state.in_([JobState.RUNNING, JobState.QUEUED])]
        if owner is not None:
            conds += [OperationRow.lease_owner == owner, OperationRow.attempt == attempt]
        values: dict[str, Any] = {"state": state, "error_code": code, "error_message": message, "updated_at": utcnow()}
        if partial_failures is not None:
            values["partial_failures"] = partial_failures[:MAX_PARTIAL_FAILURES]
        done = updated_rows(s, update(OperationRow).where(*conds).values(**values)) == 1
        if done and owner is not None and attempt is not None:
            clock_attempt(s, op_id, attempt)
        return done


def request_cancel(s: Session, row: OperationRow) -> None:
    """A queued job is cancelled at once; a running one is stopped by its worker within a heartbeat."""
    if JobState(row.state).done:
        return
    if row.state == JobState.QUEUED:
        row.state = JobState.CANCELLED
        row.error_code = 1
        row.error_message = "Operation cancelled by the caller before it started."
    else:
        row.cancel_requested = True
    row.updated_at = utcnow()


def sweep(db: Database, now: float | None = None) -> list[str]:
    """Requeue or fail jobs whose worker stopped heartbeating (killed, crashed, machine lost)."""
    now = time.time() if now is None else now
    touched: list[str] = []
    with db.tx() as s:
        rows = (
            s.execute(
                select(OperationRow).where(OperationRow.state == JobState.RUNNING, OperationRow.lease_expires_at < now)
            )
            .scalars()
            .all()
        )
        for row in rows:
            touched.append(row.id)
            row.updated_at = utcnow()
            if row.cancel_requested:
                row.state, row.error_code = JobState.CANCELLED, 1
                row.error_message = "Operation cancelled by the caller."
            elif row.attempt < row.max_attempts:
                row.state = JobState.QUEUED
                row.lease_owner = ""
                row.progress_percent = 0
                row.stage = "queued again: its worker stopped"
            else:
                row.state, row.error_code = JobState.FAILED, 10  # ABORTED
                row.error_message = (
                    f"The worker running this operation stopped (attempt {row.attempt} of {row.max_attempts}): "
                    "it was killed or its machine was lost. No partial results were kept; run the request again."
                )
    return touched
