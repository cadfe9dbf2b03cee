"""The ASGI app: /healthz plus /{v1,v1beta1}/... dispatched through api.routes."""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automill.api import codec
from automill.api.errors import error_body
from automill.api.routes import Call, resolve
from automill.core.errors import AutomillError, Internal, NotFound
from automill.services.container import Services

log = logging.getLogger("automill.api")


def create_app(services: Services) -> Starlette:
    async def healthz(_: Request) -> Response:
        def check() -> None:
            with services.db.tx() as s:
                s.connection().exec_driver_sql("SELECT 1")

        try:
            await run_in_threadpool(check)
        except Exception as exc:  # noqa: BLE001
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def api(request: Request) -> Response:
        version = request.path_params["version"]
        path = request.path_params["path"]
        try:
            if version not in codec.VERSIONS:
                raise NotFound(f"unknown API version {version!r}; use v1 or v1beta1")
            handler, name = resolve(request.method, version, path)
            body = codec.parse_body(await request.body()) if request.method in ("POST", "PATCH", "PUT") else {}
            query = {k: v for k, v in request.query_params.items() if not k.startswith("$")}
            call = Call(version=version, name=name, body=body, query=query, sv=services)
            result: Any = await run_in_threadpool(handler, call)
            return JSONResponse(result if result is not None else {})
        except AutomillError as exc:
            status, payload = error_body(exc)
            return JSONResponse(payload, status_code=status)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer with a google.rpc.Status
            log.exception("internal error on %s %s", request.method, request.url.path)
            status, payload = error_body(Internal(f"internal error: {type(exc).__name__}: {exc}"))
            return JSONResponse(payload, status_code=status)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/{version}/{path:path}", api, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
    ]
    return Starlette(routes=routes)
