"""The ASGI app: /healthz plus /{v1,v1beta1}/... dispatched through api.routes.

Every answer, including those for unknown paths, wrong methods and refused requests, is JSON; every
error a google.rpc.Status. Request checks that need no route (Host, Origin, Content-Type, body
size) run first, in api.guard. Then, for every /v1 and /v1beta1 request, api.dispatch's door (shared
with the gRPC server, api.grpc_server):

1. authentication: the key sent as ``x-goog-api-key: KEY`` or ``Authorization: Bearer KEY`` (none needed
   while the server has no key and is on a loopback address): 401 UNAUTHENTICATED otherwise;
2. authorization: the route's permission (api.routes) on the project of the URL's resource name, before
   anything is read: 403 PERMISSION_DENIED otherwise;
3. the handler, with the key's name in ``services.access.acting_key`` (new operations record it);
4. the audit log: every request that changes something, and every 401 and 403.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from automill.api import codec, download, events, session, upload
from automill.api.dispatch import Door, Incoming, describe
from automill.api.errors import error_response, http_error
from automill.api.guard import HostPolicy, RequestGuard
from automill.api.openapi import document as openapi_document
from automill.api.routes import project_of
from automill.console import console_routes
from automill.core.errors import AutomillError
from automill.services import audit
from automill.services.container import Services

log = logging.getLogger("automill.api")


def credential(headers: Any) -> str | None:
    """The key a request sends: ``x-goog-api-key`` (client_options.api_key, curl -H), else
    ``Authorization: Bearer`` (google.oauth2.credentials.Credentials(token=...)); None when neither is
    sent, "" when something unusable is (another scheme, an empty value). A browser signed in to the
    web console sends neither: its key is the session cookie (api.session)."""
    key: str | None = headers.get("x-goog-api-key")
    if key is not None:
        return key.strip()
    auth: str | None = headers.get("authorization")
    if auth is None:
        return session.cookie_value(headers)
    scheme, _, token = auth.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def create_app(services: Services, door: Door | None = None) -> Any:
    """The ASGI app; ``door`` is shared with the gRPC server of the same process (one rate limit per key)."""
    settings = services.settings
    door = door or Door(services)

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
        async def read_body() -> dict[str, Any]:
            raw = await request.body()
            return await run_in_threadpool(codec.parse_body, raw) if len(raw) > 65536 else codec.parse_body(raw)

        incoming = Incoming(
            method=request.method,
            version=request.path_params["version"],
            path=request.path_params["path"],
            credential=credential(request.headers),
            client=request.client.host if request.client else "",
            query={k: v for k, v in request.query_params.items() if not k.startswith("$")},
            read_body=read_body,
            google_client="x-goog-api-client" in request.headers,
            transport=request.method,
        )
        try:
            result = await door.call(incoming)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; nothing changed
        except AutomillError as exc:
            return error_response(exc)
        return result if isinstance(result, Response) else JSONResponse(result if result is not None else {})

    async def openapi(_: Request) -> Response:
        return JSONResponse(await run_in_threadpool(openapi_document))

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *console_routes(services),
        # Automill extensions a browser needs (before the catch-all below): uploads, ended-operation events,
        # bucket folder reads.
        Route(upload.PATH, upload.endpoint(services, credential, door.limiter), methods=["POST"]),
        Route(events.PATH, events.endpoint(services, credential, door.limiter), methods=["GET"]),
        Route(download.PATH, download.endpoint(services, credential, door.limiter), methods=["GET"]),
        Route("/{version}/{path:path}", api, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})

    async def refused(
        method: str, path: str, headers: dict[str, str], client: str, status: int, exc: AutomillError
    ) -> None:
        """A request the guard refused (Host, Origin, Content-Type, size): audited like the API's own."""
        version, _, rest = path.lstrip("/").partition("/")
        if path.startswith(upload.PREFIX):
            (rpc, name), changes = upload.describe(path), True
        elif version not in codec.VERSIONS:
            return
        else:
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
    return RequestGuard(
        app,
        policy=policy,
        max_body_bytes=settings.max_request_bytes,
        on_refusal=refused,
        uploads=(upload.PREFIX, upload.body_limit(settings.max_upload_bytes)),
    )
