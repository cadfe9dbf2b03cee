"""What a job handler sees: its request, progress reporting, cancellation, a deadline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from automill.jobs import queue
from automill.store.db import Database


@dataclass
class JobContext:
    db: Database
    op_id: str
    kind: str
    request: dict[str, Any]
    owner: str
    attempt: int
    project: str
    location: str
    services: Any = None  # the services container (set by the worker); jobs know no services
    partial_failures: list[dict[str, Any]] = field(default_factory=list)
    _last_progress: int = -1

    def progress(self, percent: float) -> None:
        pct = int(percent)
        if pct != self._last_progress:
            self._last_progress = pct
            queue.set_progress(self.db, self.op_id, self.owner, self.attempt, pct)

    def add_partial_failure(self, code: int, message: str) -> None:
        self.partial_failures.append({"code": code, "message": message})
