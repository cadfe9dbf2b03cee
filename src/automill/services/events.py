"""Ended operations as events: what the console's notification badge polls and what services.notify sends.

An event is an operation of one of :data:`EVENT_KINDS` that reached a final state (SUCCEEDED, FAILED or
CANCELLED), read from the operations table itself (no table of its own): every path that ends an
operation (a worker's result, a cancel, the sweep after a lost worker, on any machine) writes the row,
so every end is seen, wherever it happened.

Events are ordered by the time the operation ended (``updated_at``, then ``seq``); a cursor names a
place in that order. An operation that ended less than :data:`SETTLE_SECONDS` ago is not shown yet, so
that a transaction that stamped its end time but has not committed yet cannot be skipped by a cursor
that moved past it. An event may be seen twice (e.g. by two servers); ``operation`` identifies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from automill.core.errors import InvalidArgument
from automill.core.ids import parent_of
from automill.jobs.states import JobState
from automill.services.render import rfc3339
from automill.store.db import Database, utcnow
from automill.store.tables import DatasetRow, ModelRow, OperationRow

#: Operation kind -> the event's ``kind``. Trainings, imports, exports and batch predictions (the issue's
#: notifications) and deployments (the console shows when a model is ready to serve).
EVENT_KINDS = {
    "create_model": "training",
    "import_data": "import",
    "export_data": "dataExport",
    "export_model": "modelExport",
    "batch_predict": "batchPrediction",
    "deploy_model": "deployment",
}
#: The kinds e-mails and webhooks are sent for.
NOTIFY_KINDS = frozenset({"create_model", "import_data", "export_data", "export_model", "batch_predict"})
SETTLE_SECONDS = 1.0
MAX_PAGE = 200
DEFAULT_PAGE = 50
_CURSOR = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")
_DONE = [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Cursor:
    """A place in the order of ended operations: after the one that ended at ``time`` with ``seq``."""

    time: datetime
    seq: int

    def encode(self) -> str:
        micros = (self.time - _EPOCH) // timedelta(microseconds=1)
        return f"{max(0, micros)}-{self.seq}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """``""`` = the beginning; ``"now"`` = events from now on; else a cursor an earlier answer gave."""
        if not text:
            return START
        if text == "now":
            return cls(utcnow() - timedelta(seconds=SETTLE_SECONDS), 1 << 62)
        m = _CURSOR.match(text)
        if not m:
            raise InvalidArgument(f"after {text[:40]!r} is not a cursor this server gave", field="after")
        try:
            return cls(_EPOCH + timedelta(microseconds=int(m.group(1))), int(m.group(2)))
        except OverflowError:
            raise InvalidArgument(f"after {text[:40]!r} is not a cursor this server gave", field="after") from None


START = Cursor(_EPOCH, -1)


def ended(
    db: Database,
    after: Cursor,
    *,
    project: str | None = None,
    limit: int = DEFAULT_PAGE,
    kinds: frozenset[str] | set[str] | None = None,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], Cursor]:
    """Up to ``limit`` events after ``after`` (of one project, or all) -> (events, the cursor to ask next)."""
    settled = (now or utcnow()) - timedelta(seconds=SETTLE_SECONDS)
    q = (
        select(OperationRow)
        .where(
            OperationRow.state.in_(_DONE),
            OperationRow.kind.in_(sorted(kinds or EVENT_KINDS)),
            or_(
                OperationRow.updated_at > after.time,
                and_(OperationRow.updated_at == after.time, OperationRow.seq > after.seq),
            ),
            OperationRow.updated_at <= settled,
        )
        .order_by(OperationRow.updated_at, OperationRow.seq)
        .limit(max(1, min(MAX_PAGE, limit)))
    )
    if project is not None:
        q = q.where(OperationRow.project == project)
    with db.tx() as s:
        rows = list(s.execute(q).scalars())
        events = [event_json(s, r) for r in rows]
    return events, (Cursor(rows[-1].updated_at, rows[-1].seq) if rows else after)


def page_size(raw: str) -> int:
    if not raw:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidArgument(f"pageSize must be an integer in 1..{MAX_PAGE}, got {raw[:20]!r}", field="pageSize")
    return int(raw)


def event_json(s: Session, row: OperationRow) -> dict[str, Any]:
    """One ended operation as an event (names, state, error, training outcome, the console page's path)."""
    parent = parent_of(row.project, row.location)
    out: dict[str, Any] = {
        "operation": f"{parent}/operations/{row.id}",
        "kind": EVENT_KINDS.get(row.kind, row.kind),
        "state": row.state,
        "project": row.project,
        "location": row.location,
        "createTime": rfc3339(row.created_at),
        "endTime": rfc3339(row.updated_at),
    }
    if row.state != JobState.SUCCEEDED:
        out["error"] = {"code": row.error_code, "message": row.error_message}
    request = row.request or {}
    ui = f"/ui/{parent}"
    link = f"{ui}/operations"
    if row.kind == "create_model":
        dataset = f"{parent}/datasets/{request.get('dataset_id', '')}"
        out["dataset"] = dataset
        out["displayName"] = str(request.get("display_name", ""))
        out["modelType"] = str(request.get("model_type", ""))
        out["trainBudgetMilliNodeHours"] = str(request.get("budget", ""))
        model = row.result if row.state == JobState.SUCCEEDED and isinstance(row.result, dict) else None
        if model and model.get("name"):
            out["model"] = model["name"]
            meta = next((v for k, v in model.items() if k.endswith("ModelMetadata") and isinstance(v, dict)), {})
            for key in ("stopReason", "trainCostMilliNodeHours"):
                if meta.get(key):
                    out[key] = str(meta[key])
            stored = s.get(ModelRow, model["name"].rsplit("/", 1)[-1])
            if stored is not None:
                out["stopReason"] = stored.stop_reason
                out["trainCostMilliNodeHours"] = str(stored.train_cost_milli_node_hours)
                link = f"{ui}/models/{stored.id}"
        elif s.get(DatasetRow, dataset.rsplit("/", 1)[-1]) is not None:
            link = f"{ui}/datasets/{dataset.rsplit('/', 1)[-1]}?tab=train"
    elif row.kind in ("import_data", "export_data"):
        out["dataset"] = row.works_on
        ds = s.get(DatasetRow, row.works_on.rsplit("/", 1)[-1])
        if ds is not None and ds.project == row.project:
            out["displayName"] = ds.display_name
            link = f"{ui}/datasets/{ds.id}?tab=import" if row.kind == "import_data" else f"{ui}/datasets/{ds.id}"
    else:  # export_model, batch_predict, deploy_model: a model's operation
        out["model"] = row.works_on
        m = s.get(ModelRow, row.works_on.rsplit("/", 1)[-1])
        if m is not None and m.project == row.project:
            out["displayName"] = m.display_name
            tab = {"export_model": "export", "batch_predict": "predict", "deploy_model": "predict"}[row.kind]
            link = f"{ui}/models/{m.id}?tab={tab}"
    output = _output_directory(row.details or {})
    if output:
        out["outputDirectory"] = output
    out["link"] = link
    return out


def _output_directory(details: dict[str, Any]) -> str:
    """The gs:// folder an export or batch prediction wrote (from its OperationMetadata details)."""
    info = details.get("outputInfo") if isinstance(details, dict) else None
    if isinstance(info, dict):
        directory = info.get("gcsOutputDirectory")
        if isinstance(directory, str):
            return directory
    return ""
