"""What a job handler returns: the queue stores it when it marks the job SUCCEEDED."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session


@dataclass
class JobResult:
    result_type: str = "Empty"
    result: dict[str, Any] | None = None
    #: Runs inside the transaction that marks the job SUCCEEDED: the job's side effect (a new model
    #: row, imported examples) and its completion commit together or not at all.
    commit: Callable[[Session], dict[str, Any] | None] | None = None
    details: dict[str, Any] = field(default_factory=dict)
