"""The job lifecycle, written down.

QUEUED ──claim──> RUNNING ──complete──> SUCCEEDED
  │                 │ ├──fail────────> FAILED
  │                 │ └──cancel──────> CANCELLED
  │                 └──lease expired─> QUEUED (attempt < max_attempts) | FAILED
  └──cancel──> CANCELLED
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def done(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


MAX_PARTIAL_FAILURES = 20
