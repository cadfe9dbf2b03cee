"""AutomillError -> google.rpc.Status JSON with the HTTP status the official client expects."""

from __future__ import annotations

from typing import Any

from automill.core.errors import AutomillError

#: google.rpc.Code -> HTTP. 401 (UNAUTHENTICATED) is sent only when a server with API keys gets a request
#: without a valid one. Google's client libraries answer 401 by refreshing their credentials and retrying
#: once: API-key credentials then raise ``Unauthorized`` with this message; AnonymousCredentials raise
#: "Anonymous credentials cannot be refreshed" and ``Credentials(token=...)`` a RefreshError instead.
HTTP_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400,
               12: 501, 13: 500, 14: 503, 15: 500, 16: 401}


def error_body(exc: AutomillError) -> tuple[int, dict[str, Any]]:
    http = getattr(exc, "http_status", None) or HTTP_STATUS.get(exc.code, 500)
    err: dict[str, Any] = {"code": http, "message": exc.message, "status": exc.status}
    if exc.field:
        err["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                           "fieldViolations": [{"field": exc.field, "description": exc.message}]}]
    return http, {"error": err}
