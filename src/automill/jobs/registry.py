"""Job handlers register by name; the queue and workers know no ML."""

from __future__ import annotations

from collections.abc import Callable

from automill.jobs.context import JobContext
from automill.jobs.result import JobResult

Handler = Callable[[JobContext], JobResult]
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
