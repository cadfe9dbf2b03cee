"""``GET /ui-api/v1/projects/P/events?after=CURSOR``: the operations of P that ended (services.events).

What the web console polls for its notification badge and toasts (an Automill extension, outside
Google's API). The answer: ``{"events": [...], "nextCursor": "..."}``, oldest first, at most
``pageSize`` (default 50, at most 200); ask again with ``after=<nextCursor>``. ``after`` omitted: from
the first event; ``after=now``: none, only the cursor to start from. ``waitSeconds`` (0-30) holds the
call until an event comes or the time passes (a long poll; one poll of the database every half
second, no thread held, ended as soon as the caller goes away), so the console learns of an end within
a second without asking every second.

The same door as the API: the caller's key (or the console's session) and the permission
``automl.operations.list`` on P (every role but predictor).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from automill.api.errors import error_response, handler_error
from automill.api.limits import RateLimiter
from automill.core.errors import InvalidArgument, ResourceExhausted
from automill.services import audit, events
from automill.services.access import authorize
from automill.services.container import Services

PATH = "/ui-api/v1/projects/{project}/events"
PERMISSION = "automl.operations.list"
MAX_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.5


def wait_seconds(raw: str) -> float:
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= MAX_WAIT_SECONDS:
        raise InvalidArgument(
            f"waitSeconds must be a number of seconds in 0..{MAX_WAIT_SECONDS:.0f}, got {raw[:20]!r}",
            field="waitSeconds",
        )
    return value


def endpoint(
    services: Services, credential: Callable[[Any], str | None], limiter: RateLimiter | None = None
) -> Callable[[Request], Any]:
    """The route's handler; ``credential`` reads a request's key (api.app's, so a session cookie counts)."""
    waiting = 0

    async def list_events(request: Request) -> Response:
        nonlocal waiting
        project = request.path_params["project"]
        resource = f"projects/{project}"
        sent = credential(request.headers)
        key_name = "anonymous" if sent is None else "(invalid key)"
        try:
            principal = await run_in_threadpool(services.auth.authenticate, sent)
            key_name = principal.name
            if limiter is not None and not principal.anonymous:
                limiter.take(principal.name)
            authorize(principal, PERMISSION, project, resource)
            q = request.query_params
            after = events.Cursor.decode(q.get("after", ""))
            size = events.page_size(q.get("pageSize", ""))
            wait = wait_seconds(q.get("waitSeconds", ""))
            found, cursor = await run_in_threadpool(events.ended, services.db, after, project=project, limit=size)
            if not found and wait > 0:
                if waiting >= services.settings.max_concurrent_waits:
                    busy = ResourceExhausted("too many event polls are being held; retry in a second")
                    busy.retry_after = 1
                    raise busy
                waiting += 1
                try:
                    end = time.monotonic() + wait
                    while not found and time.monotonic() < end:
                        await asyncio.sleep(min(POLL_SECONDS, max(0.0, end - time.monotonic())))
                        if await request.is_disconnected():  # a page closed or left: stop polling for it
                            return Response(status_code=499)
                        found, cursor = await run_in_threadpool(
                            events.ended, services.db, after, project=project, limit=size
                        )
                finally:
                    waiting -= 1
            return JSONResponse({"events": found, "nextCursor": cursor.encode()})
        except Exception as raised:
            exc = handler_error(raised, f"GET {request.url.path[:200]}")
            response = error_response(exc)
            if response.status_code in (401, 403):
                await run_in_threadpool(
                    audit.record,
                    services.db,
                    key_name=getattr(exc, "key_name", key_name),
                    project=project,
                    method="ListEvents",
                    http_method="GET",
                    resource=resource,
                    http_status=response.status_code,
                    status=exc.status,
                    client=request.client.host if request.client else "",
                )
            return response

    return list_events
