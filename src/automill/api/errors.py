"""AutomillError -> google.rpc.Status JSON with the HTTP status the official client expects."""

from __future__ import annotations

from typing import Any

from automill.core.errors import AutomillError

#: google.rpc.Code -> HTTP (never 401: anonymous credentials would turn it into a refresh error).
HTTP_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400,
               12: 501, 13: 500, 14: 503, 15: 500, 16: 403}


def error_body(exc: AutomillError) -> tuple[int, dict[str, Any]]:
    http = getattr(exc, "http_status", None) or HTTP_STATUS.get(exc.code, 500)
    err: dict[str, Any] = {"code": http, "message": exc.message, "status": exc.status}
    if exc.field:
        err["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                           "fieldViolations": [{"field": exc.field, "description": exc.message}]}]
    return http, {"error": err}
