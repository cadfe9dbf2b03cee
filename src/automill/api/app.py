"""The ASGI app: /healthz plus /{v1,v1beta1}/... dispatched through api.routes.

Every answer, including those for unknown paths, wrong methods and refused requests, is JSON; every
error a google.rpc.Status. Request checks that need no route (Host, Origin, Content-Type, body
size) run first, in api.guard.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automill.api import codec
from automill.api.errors import error_body
from automill.api.guard import HostPolicy, RequestGuard
from automill.api.routes import Call, resolve
from automill.core.errors import AutomillError, Internal, InvalidArgument, NotFound, Unimplemented
from automill.services.container import Services

log = logging.getLogger("automill.api")

#: Starlette's own refusals (no route, wrong method) as the google.rpc codes they stand for.
_HTTP_ERRORS: dict[int, type[AutomillError]] = {404: NotFound, 405: Unimplemented}


def error_response(exc: AutomillError) -> JSONResponse:
    status, payload = error_body(exc)
    retry = getattr(exc, "retry_after", None)
    return JSONResponse(payload, status_code=status, headers={"Retry-After": str(retry)} if retry else None)


def create_app(services: Services) -> Any:
    settings = services.settings

    async def healthz(_: Request) -> Response:
        def check() -> None:
            with services.db.tx() as s:
                s.connection().exec_driver_sql("SELECT 1")

        try:
            await run_in_threadpool(check)
        except Exception as exc:  # noqa: BLE001
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "error": "the database cannot be reached"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def api(request: Request) -> Response:
        version = request.path_params["version"]
        path = request.path_params["path"]
        try:
            if version not in codec.VERSIONS:
                raise NotFound(f"unknown API version {version!r}; use v1 or v1beta1")
            handler, name = resolve("GET" if request.method == "HEAD" else request.method, version, path)
            body: dict[str, Any] = {}
            if request.method in ("POST", "PATCH", "PUT"):
                raw = await request.body()
                body = await run_in_threadpool(codec.parse_body, raw) if len(raw) > 65536 else codec.parse_body(raw)
            query = {k: v for k, v in request.query_params.items() if not k.startswith("$")}
            call = Call(version=version, name=name, body=body, query=query, sv=services)
            call.google_client = "x-goog-api-client" in request.headers
            if inspect.iscoroutinefunction(handler):
                result: Any = await handler(call)
            else:
                result = await run_in_threadpool(handler, call)
            return JSONResponse(result if result is not None else {})
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; the request changed nothing
        except AutomillError as exc:
            return error_response(exc)
        except RecursionError:
            return error_response(InvalidArgument("the request is nested too deeply"))
        except Exception:  # noqa: BLE001 - a bug must still answer with a google.rpc.Status
            ref = uuid.uuid4().hex[:12]
            log.exception("internal error %s on %s %s", ref, request.method, request.url.path)
            return error_response(Internal(f"internal error (reference {ref} in the server log)"))

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own refusals (no route: 404, wrong method: 405) as google.rpc.Status JSON."""
        assert isinstance(exc, HTTPException)
        cls = _HTTP_ERRORS.get(exc.status_code, InvalidArgument)
        what = "no such resource" if exc.status_code == 404 else f"{request.method} is not allowed here"
        _, payload = error_body(cls(f"{what}: {request.url.path[:200]}"))
        payload["error"]["code"] = exc.status_code
        return JSONResponse(payload, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/{version}/{path:path}", api, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    policy = HostPolicy(settings.host, settings.allowed_hosts)
    return RequestGuard(app, policy=policy, max_body_bytes=settings.max_request_bytes)
