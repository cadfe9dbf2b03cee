"""Progress a person can watch while a model trains (no DB, HTTP or jobs: a callback and a clock).

A training's progress is the larger of two truthful shares: of the budget's time already spent
(the budget caps the wall clock) and of the planned work already done (trials, epochs), mapped
into ``lo..hi`` percent. A timer thread reports it every second, so the number rises between two
trials or epochs too; the callers' own reports (with what is happening now, the ``stage``) go
through the same lock. It never decreases.

    with BudgetProgress(report, deadline, lo=2, hi=90) as tracker:
        fit_text(..., progress=tracker.report)   # report(percent, stage) from the engine
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from automill.core.deadline import Deadline

log = logging.getLogger("automill.engine")

#: ``report(percent, stage)``: stage is None when it did not change.
Report = Callable[[float, "str | None"], None]


def two_args(progress: Callable[..., Any] | None) -> Report:
    """A progress callback that takes ``(percent, stage)``, from one that may take only ``(percent)``."""
    if progress is None:

        def ignore(pct: float, stage: str | None = None) -> None:
            return None

        return ignore
    try:
        inspect.signature(progress).bind(0.0, None)
        return progress
    except (TypeError, ValueError):
        percent_only = progress

        def drop_stage(pct: float, stage: str | None = None) -> None:
            percent_only(pct)

        return drop_stage


class BudgetProgress:
    """max(share of ``deadline`` spent, share of the work reported) mapped into ``lo..hi``, reported
    to ``report`` from a timer thread every ``every`` seconds and at each call of :meth:`report`."""

    def __init__(
        self, report: Callable[..., Any], deadline: Deadline, *, lo: float = 2.0, hi: float = 95.0, every: float = 1.0
    ) -> None:
        self._report = two_args(report)
        self.deadline = deadline
        self.lo, self.hi, self.every = lo, hi, every
        self._last = lo
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def floor(self) -> float:
        """Where the spent budget puts the progress."""
        return self.lo + (self.hi - self.lo) * self.deadline.fraction_used()

    def report(self, percent: float, stage: str | None = None) -> None:
        """The work's own progress (percent, in the caller's scale) and what it is doing now."""
        with self._lock:
            self._last = max(self._last, percent, self.floor())
            self._report(self._last, stage)

    def work(self, fraction: float, stage: str | None = None) -> None:
        """The share of the planned work done (0..1), mapped into ``lo..hi``."""
        self.report(self.lo + (self.hi - self.lo) * min(1.0, max(0.0, fraction)), stage)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with self._lock:
                    floor = self.floor()
                    if floor > self._last:
                        self._last = floor
                        self._report(floor, None)
            except Exception:  # reporting must never stop the training it reports on
                log.warning("progress report failed", exc_info=True)

    def __enter__(self) -> BudgetProgress:
        self._thread = threading.Thread(target=self._run, name="automill-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
