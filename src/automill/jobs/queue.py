"""One function per job transition; each persists the transition in one transaction.

Claims are optimistic (``UPDATE … WHERE state='QUEUED'``; on PostgreSQL the candidate is picked with
``FOR UPDATE SKIP LOCKED``), so any number of workers on any number of machines can share a database.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from automill.jobs.registry import JobResult
from automill.jobs.states import MAX_PARTIAL_FAILURES, JobState
from automill.store.db import Database, utcnow
from automill.store.tables import OperationRow


def claim(db: Database, owner: str, lease_seconds: float, kinds: set[str] | None = None) -> OperationRow | None:
    """Take the oldest queued job, or None."""
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
        res = s.execute(
            update(OperationRow)
            .where(OperationRow.id == op_id, OperationRow.state == JobState.QUEUED)
            .values(
                state=JobState.RUNNING,
                lease_owner=owner,
                lease_expires_at=time.time() + lease_seconds,
                attempt=OperationRow.attempt + 1,
                updated_at=utcnow(),
            )
        )
        if res.rowcount != 1:
            return None
        return s.get(OperationRow, op_id)


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
        res = s.execute(
            update(OperationRow)
            .where(*_owned(op_id, owner, attempt))
            .values(lease_expires_at=time.time() + lease_seconds)
        )
        if res.rowcount != 1:
            return False, False
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
        return s.execute(update(OperationRow).where(*conds).values(**values)).rowcount == 1


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
