"""The audit log: every mutating API request and every refused one (401, 403), in the database.

A row says when, which key (or "anonymous"), which project, which RPC on which resource, and the answer
(HTTP status and google.rpc status). Never a request body, a header or a secret.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from automill.store.db import Database, utcnow
from automill.store.tables import AuditRow

log = logging.getLogger("automill.audit")


@dataclass(frozen=True)
class AuditEntry:
    time: datetime
    key_name: str
    project: str
    method: str
    http_method: str
    resource: str
    http_status: int
    status: str
    client: str

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(timespec="milliseconds") + "Z",
            "key": self.key_name,
            "project": self.project,
            "method": self.method,
            "httpMethod": self.http_method,
            "resource": self.resource,
            "httpStatus": self.http_status,
            "status": self.status,
            "client": self.client,
        }


def record(
    db: Database,
    *,
    key_name: str,
    project: str,
    method: str,
    http_method: str,
    resource: str,
    http_status: int,
    status: str,
    client: str = "",
) -> None:
    """Write one row; a failure is logged, never raised (the request has been answered already)."""
    try:
        with db.tx() as s:
            s.add(
                AuditRow(
                    time=utcnow(),
                    key_name=key_name[:64],
                    project=project[:128],
                    method=method[:64],
                    http_method=http_method[:8],
                    resource=resource[:1000],
                    http_status=http_status,
                    status=status[:32],
                    client=client[:64],
                )
            )
    except Exception:
        log.exception("could not write the audit log (%s %s -> %d)", method, resource[:200], http_status)


def entries(db: Database, *, project: str = "", since: datetime | None = None, limit: int = 100) -> list[AuditEntry]:
    """The newest ``limit`` rows (newest first), of one project and/or since a time."""
    q = select(AuditRow)
    if project:
        q = q.where(AuditRow.project == project)
    if since is not None:
        q = q.where(AuditRow.time >= since)
    q = q.order_by(AuditRow.id.desc()).limit(max(1, limit))
    with db.tx() as s:
        return [
            AuditEntry(
                time=r.time,
                key_name=r.key_name,
                project=r.project,
                method=r.method,
                http_method=r.http_method,
                resource=r.resource,
                http_status=r.http_status,
                status=r.status,
                client=r.client,
            )
            for r in s.execute(q).scalars()
        ]
