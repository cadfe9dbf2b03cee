"""Operations: creating the job row behind an LRO, and the google.longrunning views of it."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from automill.core import filters, paging
from automill.core.errors import FailedPrecondition, ResourceExhausted
from automill.core.ids import make_id, split_parent
from automill.jobs import queue
from automill.jobs.states import JobState
from automill.services.access import acting_key
from automill.services.lookup import find
from automill.services.render import OperationView, operation_view
from automill.store.db import next_number, utcnow
from automill.store.tables import OperationRow

if TYPE_CHECKING:
    from automill.services.container import Services

OPERATION_FILTER_FIELDS = {"done", "operationId", "operation_id", "worksOn", "works_on"}

#: The API version (v1, v1beta1) of the call being served; new operations keep it in their request
#: (``_api_version``) so that gRPC's version-less google.longrunning service answers in those types.
api_version: ContextVar[str] = ContextVar("automill_api_version", default="")


def new_operation(
    s: Session,
    *,
    project: str,
    location: str,
    prefix: str,
    kind: str,
    details_key: str,
    works_on: str,
    request: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    result_type: str = "Empty",
    done_result: dict[str, Any] | None = None,
    done: bool = False,
    max_attempts: int = 2,
    limit: int = 0,
) -> OperationRow:
    """Insert an operation: QUEUED for a worker, or already SUCCEEDED for work done in the request.

    ``limit``: the most queued or running operations the project may have (0 = no limit); one more
    is refused with RESOURCE_EXHAUSTED. Counted in the caller's transaction, so requests for
    different resources at the same moment may pass it by their number."""
    if limit and not done:
        running = s.execute(
            select(func.count())
            .select_from(OperationRow)
            .where(OperationRow.project == project, OperationRow.state.in_([JobState.QUEUED, JobState.RUNNING]))
        ).scalar_one()
        if running >= limit:
            busy = ResourceExhausted(
                f"project {project} has {running} operations queued or running, the server's "
                f"limit (max_running_operations_per_project); wait for one to end"
            )
            busy.retry_after = 30
            raise busy
    n = next_number(s, "operation")
    now = utcnow()
    row = OperationRow(
        id=make_id(prefix, n),
        project=project,
        location=location,
        kind=kind,
        details_key=details_key,
        details=details or {},
        works_on=works_on,
        request={**(request or {}), **({"_api_version": api_version.get()} if api_version.get() else {})},
        state=JobState.SUCCEEDED if done else JobState.QUEUED,
        progress_percent=100 if done else 0,
        partial_failures=[],
        result_type=result_type,
        result=done_result,
        error_code=0,
        error_message="",
        cancel_requested=False,
        attempt=0,
        max_attempts=max_attempts,
        lease_owner="",
        lease_expires_at=0.0,
        created_at=now,
        updated_at=now,
        seq=n,
        created_by=acting_key.get(),
    )
    s.add(row)
    s.flush()
    return row


class OperationService:
    def __init__(self, services: Services) -> None:
        self.sv = services

    def _row(self, s: Session, name: str) -> OperationRow:
        return find(s, OperationRow, name, "operations", "operation")

    def get(self, name: str) -> OperationView:
        with self.sv.db.tx() as s:
            return operation_view(self._row(s, name))

    def list(
        self, parent: str, filter_: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[OperationView], str]:
        project, location = split_parent(parent)
        terms = filters.parse_filter(filter_, OPERATION_FILTER_FIELDS)
        scope = f"ops|{parent}|{filter_}"
        after = paging.decode_token(page_token, scope)

        def keep(row: OperationRow) -> bool:
            return _match_ops(
                terms,
                {
                    "done": JobState(row.state).done,
                    "operationId": row.id,
                    "operation_id": row.id,
                    "worksOn": row.works_on,
                    "works_on": row.works_on,
                },
            )

        with self.sv.db.tx() as s:
            q = (
                select(OperationRow)
                .where(OperationRow.project == project, OperationRow.location == location, OperationRow.seq > after)
                .order_by(OperationRow.seq)
            )
            return paging.paginate(
                s.execute(q).scalars(),
                keep=keep,
                render=operation_view,
                seq=lambda r: r.seq,
                size=paging.page_size(page_size),
                scope=scope,
            )

    def cancel(self, name: str) -> None:
        with self.sv.db.tx() as s:
            queue.request_cancel(s, self._row(s, name))

    def delete(self, name: str) -> None:
        with self.sv.db.tx() as s:
            row = self._row(s, name)
            if not JobState(row.state).done:
                raise FailedPrecondition(f"operation {name} is still running: cancel it first, then delete it")
            s.execute(delete(OperationRow).where(OperationRow.id == row.id))


def _match_ops(terms: list[filters.Term], record: dict[str, Any]) -> bool:
    for t in terms:
        if t.field in ("worksOn", "works_on") and t.kind in ("eq", "ne"):
            works_on = str(record["worksOn"])
            equal = works_on == t.value or works_on.rsplit("/", 1)[-1] == t.value
            if equal != (t.kind == "eq"):
                return False
        elif not filters.matches([t], record):
            return False
    return True
