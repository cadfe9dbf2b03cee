"""The ASGI app: /healthz plus /{v1,v1beta1}/... dispatched through api.routes.

Every answer, including those for unknown paths, wrong methods and refused requests, is JSON; every
error a google.rpc.Status. Request checks that need no route (Host, Origin, Content-Type, body
size) run first, in api.guard. Then, for every /v1 and /v1beta1 request:

1. authentication: the key sent as ``x-goog-api-key: KEY`` or ``Authorization: Bearer KEY`` (none needed
   while the server has no key and is on a loopback address): 401 UNAUTHENTICATED otherwise;
2. authorization: the route's permission (api.routes) on the project of the URL's resource name, before
   anything is read: 403 PERMISSION_DENIED otherwise;
3. the handler, with the key's name in ``services.access.acting_key`` (new operations record it);
4. the audit log: every request that changes something, and every 401 and 403.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automill.api import codec
from automill.api.errors import error_response, handler_error, http_error
from automill.api.guard import MUTATING, HostPolicy, RequestGuard
from automill.api.limits import RateLimiter
from automill.api.openapi import document as openapi_document
from automill.api.routes import Call, project_of, resolve
from automill.core.errors import AutomillError, NotFound
from automill.services import audit
from automill.services.access import acting_key, authorize
from automill.services.container import Services
from automill.store.blobs import acting_project

log = logging.getLogger("automill.api")


def credential(headers: Any) -> str | None:
    """The key a request sends: ``x-goog-api-key`` (client_options.api_key, curl -H), else
    ``Authorization: Bearer`` (google.oauth2.credentials.Credentials(token=...)); None when neither is
    sent, "" when something unusable is (another scheme, an empty value)."""
    key = headers.get("x-goog-api-key")
    if key is not None:
        return key.strip()
    auth = headers.get("authorization")
    if auth is None:
        return None
    scheme, _, token = auth.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def describe(method: str, version: str, path: str) -> tuple[str, str, bool]:
    """-> (RPC name, resource name, changes something) of a request, for the audit log; never raises."""
    try:
        r, name = resolve("GET" if method == "HEAD" else method, version, path)
    except NotFound:
        return "", path[:1000], method in MUTATING
    return r.rpc, name, r.mutating


def create_app(services: Services) -> Any:
    settings = services.settings
    limiter = RateLimiter(settings.max_requests_per_minute)

    async def healthz(_: Request) -> Response:
        def check() -> None:
            with services.db.tx() as s:
                s.connection().exec_driver_sql("SELECT 1")

        try:
            await run_in_threadpool(check)
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "error": "the database cannot be reached"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def api(request: Request) -> Response:
        version = request.path_params["version"]
        path = request.path_params["path"]
        method = request.method
        key_name = "anonymous" if credential(request.headers) is None else "(invalid key)"
        rpc, name, changes = describe(method, version, path)
        status = "OK"
        try:
            principal = await run_in_threadpool(services.auth.authenticate, credential(request.headers))
            key_name = principal.name
            if not principal.anonymous:  # the machine's own user of a keyless loopback server is not limited
                limiter.take(principal.name)
            if version not in codec.VERSIONS:
                raise NotFound(f"unknown API version {version!r}; use v1 or v1beta1")
            route, name = resolve("GET" if method == "HEAD" else method, version, path)
            authorize(principal, route.permission, project_of(name), name)
            acting_key.set(principal.name)
            acting_project.set(project_of(name))  # buckets granted to other projects are closed to this request
            body: dict[str, Any] = {}
            if method in ("POST", "PATCH", "PUT"):
                raw = await request.body()
                body = await run_in_threadpool(codec.parse_body, raw) if len(raw) > 65536 else codec.parse_body(raw)
            query = {k: v for k, v in request.query_params.items() if not k.startswith("$")}
            call = Call(version=version, name=name, body=body, query=query, sv=services)
            call.google_client = "x-goog-api-client" in request.headers
            if inspect.iscoroutinefunction(route.handler):
                result: Any = await route.handler(call)
            else:
                result = await run_in_threadpool(route.handler, call)
            response: Response = JSONResponse(result if result is not None else {})
        except ClientDisconnect:
            status, response = "CANCELLED", Response(status_code=400)  # nobody is listening; nothing changed
        except Exception as raised:
            exc = handler_error(raised, f"{method} {request.url.path}")
            status, response = exc.status, error_response(exc)
            key_name = getattr(exc, "key_name", key_name)
        if changes or response.status_code in (401, 403):
            await run_in_threadpool(
                audit.record,
                services.db,
                key_name=key_name,
                project=project_of(name),
                method=rpc,
                http_method=method,
                resource=name,
                http_status=response.status_code,
                status=status,
                client=request.client.host if request.client else "",
            )
        return response

    async def openapi(_: Request) -> Response:
        return JSONResponse(await run_in_threadpool(openapi_document))

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/{version}/{path:path}", api, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})

    async def refused(
        method: str, path: str, headers: dict[str, str], client: str, status: int, exc: AutomillError
    ) -> None:
        """A request the guard refused (Host, Origin, Content-Type, size): audited like the API's own."""
        version, _, rest = path.lstrip("/").partition("/")
        if version not in codec.VERSIONS:
            return
        rpc, name, changes = describe(method, version, rest)
        if changes or status in (401, 403):
            await run_in_threadpool(
                audit.record,
                services.db,
                key_name="anonymous" if credential(headers) is None else "(not checked)",
                project=project_of(name),
                method=rpc,
                http_method=method,
                resource=name,
                http_status=status,
                status=exc.status,
                client=client,
            )

    policy = HostPolicy(settings.host, settings.allowed_hosts)
    return RequestGuard(app, policy=policy, max_body_bytes=settings.max_request_bytes, on_refusal=refused)
