"""What a job handler sees: its request, progress reporting, cancellation, a deadline."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from automill.jobs import queue
from automill.store.db import Database

#: At most one progress write per this many seconds (what is held back is written after it).
PROGRESS_WRITE_SECONDS = 1.0
#: A running job never shows more than this; ``queue.complete`` sets 100 when it is done.
MAX_RUNNING_PERCENT = 99


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
    #: Unix time this attempt was claimed, and the seconds of compute its earlier attempts recorded
    #: (a worker that died mid-job leaves its last heartbeat's count): see :meth:`compute_seconds`.
    started_at: float = field(default_factory=time.time)
    earlier_seconds: float = 0.0
    partial_failures: list[dict[str, Any]] = field(default_factory=list)
    _last_progress: int = -1
    _stage: str | None = None
    _written: tuple[int, str | None] = (-1, None)
    _written_at: float = float("-inf")
    _timer: threading.Timer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, percent: float, stage: str | None = None) -> None:
        """Report progress: never lower than before, at most 99 until the job completes; ``stage``
        says what the job is doing now. Safe to call often and from any thread: the DB sees at most
        one write a second, and a value held back is written when that second is over."""
        with self._lock:
            self._last_progress = max(self._last_progress, min(MAX_RUNNING_PERCENT, int(percent)))
            if stage is not None:
                self._stage = stage
            wait = PROGRESS_WRITE_SECONDS - (time.monotonic() - self._written_at)
            if wait <= 0:
                self._write()
            elif self._timer is None and (self._last_progress, self._stage) != self._written:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            self._write()

    def _write(self) -> None:
        """With the lock held: persist what changed since the last write."""
        pct, stage = self._last_progress, self._stage
        if (pct, stage) == self._written or pct < 0:
            return
        changed = stage if stage != self._written[1] else None
        self._written, self._written_at = (pct, stage), time.monotonic()
        queue.set_progress(self.db, self.op_id, self.owner, self.attempt, pct, changed)

    def close(self) -> None:
        """Write what is held back and stop the timer (the job's result or error is written next)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._write()

    def compute_seconds(self) -> float:
        """The operation's compute so far, over all its attempts: what a budget is charged."""
        return self.earlier_seconds + max(0.0, time.time() - self.started_at)

    def add_partial_failure(self, code: int, message: str) -> None:
        self.partial_failures.append({"code": code, "message": message})
