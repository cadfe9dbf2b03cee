"""AutomillError -> google.rpc.Status JSON with the HTTP status the official client expects."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from automill.core.errors import AutomillError, Internal, InvalidArgument, NotFound, Unimplemented

log = logging.getLogger("automill.api")

#: Starlette's own refusals (no route, wrong method) as the google.rpc codes they stand for.
_HTTP_ERRORS: dict[int, type[AutomillError]] = {404: NotFound, 405: Unimplemented}

#: google.rpc.Code -> HTTP. 401 (UNAUTHENTICATED) is sent only when a server with API keys gets a request
#: without a valid one. Google's client libraries answer 401 by refreshing their credentials and retrying
#: once: API-key credentials then raise ``Unauthorized`` with this message; AnonymousCredentials raise
#: "Anonymous credentials cannot be refreshed" and ``Credentials(token=...)`` a RefreshError instead.
HTTP_STATUS = {
    1: 499,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
}


def error_body(exc: AutomillError) -> tuple[int, dict[str, Any]]:
    http = getattr(exc, "http_status", None) or HTTP_STATUS.get(exc.code, 500)
    err: dict[str, Any] = {"code": http, "message": exc.message, "status": exc.status}
    if exc.field:
        err["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": exc.field, "description": exc.message}],
            }
        ]
    return http, {"error": err}


def error_response(exc: AutomillError, status: int | None = None) -> JSONResponse:
    """The JSON answer for ``exc`` (``status`` overrides the HTTP status), with Retry-After for a
    limit that says when to retry and WWW-Authenticate for a 401."""
    http, payload = error_body(exc)
    if status is not None:
        payload["error"]["code"] = http = status
    retry = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry)} if retry else {}
    if http == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="automill"'
    return JSONResponse(payload, status_code=http, headers=headers or None)


def handler_error(exc: Exception, where: str) -> AutomillError:
    """What an exception raised while answering a request answers: itself when it is an AutomillError,
    INVALID_ARGUMENT for a request nested too deeply, and otherwise INTERNAL with a reference to the
    traceback in the server log (never the exception's text, which may hold server paths)."""
    if isinstance(exc, AutomillError):
        return exc
    if isinstance(exc, RecursionError):
        return InvalidArgument("the request is nested too deeply")
    ref = uuid.uuid4().hex[:12]
    log.error("internal error %s on %s", ref, where, exc_info=exc)
    return Internal(f"internal error (reference {ref} in the server log)")


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route: 404, wrong method: 405) as google.rpc.Status JSON."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    cls = _HTTP_ERRORS.get(exc.status_code, InvalidArgument)
    what = "no such resource" if exc.status_code == 404 else f"{request.method} is not allowed here"
    response = error_response(cls(f"{what}: {request.url.path[:200]}"), exc.status_code)
    for key, value in (getattr(exc, "headers", None) or {}).items():
        response.headers[key] = value
    return response
