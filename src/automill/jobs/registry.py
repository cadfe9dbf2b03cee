"""Job handlers register by name; the queue and workers know no ML."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from automill.jobs.context import JobContext


@dataclass
class JobResult:
    result_type: str = "Empty"
    result: dict[str, Any] | None = None
    #: Runs inside the transaction that marks the job SUCCEEDED: the job's side effect (a new model
    #: row, imported examples) and its completion commit together or not at all.
    commit: Callable[[Session], dict[str, Any] | None] | None = None
    details: dict[str, Any] = field(default_factory=dict)


Handler = Callable[["JobContext"], JobResult]
_HANDLERS: dict[str, Handler] = {}


def register(kind: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        existing = _HANDLERS.get(kind)
        if existing is not None and existing is not fn:
            raise ValueError(f"job handler {kind!r} is already registered by {existing.__module__}.{existing.__name__}")
        _HANDLERS[kind] = fn
        return fn

    return deco


def unregister(kind: str) -> None:
    _HANDLERS.pop(kind, None)


def get_handler(kind: str) -> Handler:
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise LookupError(f"no job handler registered for {kind!r}; known: {sorted(_HANDLERS)}") from None
