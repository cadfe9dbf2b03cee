"""The door every API call passes through, whatever carried it: REST (api.app) or gRPC (api.grpc_server).

A transport turns its request into an ``Incoming`` (HTTP method, version and path of the RPC's REST
binding, the credential, the body and query), and ``Door.call`` does the rest, the same way for both:

1. authentication (services.keys) and the per-key rate limit (api.limits);
2. the route (api.routes, the one RPC table) and its permission on the project of the resource name
   (services.access), before anything is read;
3. the handler, with the key's name (``acting_key``), the project (``acting_project``) and the API
   version (``api_version``: new operations remember it, so gRPC's version-less google.longrunning
   service answers them in the caller's types);
4. the audit log: every call that changes something, and every 401 and 403.

``call`` returns the handler's result (v1 or v1beta1 JSON, or a Response object of a console route),
or raises an AutomillError (any other exception becomes INTERNAL with a reference to the log).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from automill.api import codec
from automill.api.errors import error_body, handler_error
from automill.api.guard import MUTATING
from automill.api.limits import RateLimiter
from automill.api.routes import Call, project_of, resolve
from automill.core.errors import AutomillError, NotFound
from automill.services import audit
from automill.services.access import acting_key, authorize
from automill.services.container import Services
from automill.services.operations import api_version
from automill.store.blobs import acting_project

log = logging.getLogger("automill.api")


async def _no_body() -> dict[str, Any]:
    return {}


@dataclass
class Incoming:
    """One API call, as the REST binding of its RPC names it."""

    method: str  # GET, POST, PATCH, DELETE (HEAD is read as GET)
    version: str  # v1 or v1beta1
    path: str  # after /{version}/, e.g. projects/p/locations/l/datasets
    credential: str | None  # the key sent (None: none; "": something unusable)
    client: str = ""  # the caller's address, for the audit log
    query: dict[str, str] = field(default_factory=dict)
    #: The body, read only once the caller is known to be allowed (REST reads and parses it then).
    read_body: Callable[[], Awaitable[dict[str, Any]]] = _no_body
    #: One of Google's client libraries (their strict parsers refuse Automill's extension fields).
    google_client: bool = False
    #: What the audit log's http_method column says: the HTTP method, or GRPC.
    transport: str = ""
    #: A request the transport found malformed before routing (a gRPC name that does not fit its
    #: RPC): raised once the caller is authenticated, so a caller without a key learns nothing more.
    malformed: AutomillError | None = None
    #: google.longrunning over gRPC has no version: operations answer in the version that made them.
    version_neutral: bool = False
    #: The RPC's name when the transport knows it (gRPC), for the audit log; else the route's.
    rpc: str = ""


def describe(method: str, version: str, path: str) -> tuple[str, str, bool]:
    """-> (RPC name, resource name, changes something) of a request, for the audit log; never raises."""
    try:
        r, name = resolve("GET" if method == "HEAD" else method, version, path)
    except NotFound:
        return "", path[:1000], method in MUTATING
    return r.rpc, name, r.mutating


class Door:
    """Authentication, rate limit, authorization, the route's handler and the audit log (see the module)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.limiter = RateLimiter(services.settings.max_requests_per_minute)

    async def call(self, req: Incoming) -> Any:
        sv = self.services
        method = "GET" if req.method == "HEAD" else req.method
        key_name = "anonymous" if req.credential is None else "(invalid key)"
        rpc, name, changes = describe(method, req.version, req.path)
        rpc = req.rpc or rpc
        status, http = "OK", 200
        try:
            principal = await run_in_threadpool(sv.auth.authenticate, req.credential)
            key_name = principal.name
            if not principal.anonymous:  # the machine's own user of a keyless loopback server is not limited
                self.limiter.take(principal.name)
            if req.version not in codec.VERSIONS:
                raise NotFound(f"unknown API version {req.version!r}; use v1 or v1beta1")
            if req.malformed is not None:
                raise req.malformed
            route, name = resolve(method, req.version, req.path)
            authorize(principal, route.permission, project_of(name), name)
            acting_key.set(principal.name)
            acting_project.set(project_of(name))  # buckets granted to other projects are closed to this call
            api_version.set(req.version)
            body = await req.read_body() if method in ("POST", "PATCH", "PUT") else {}
            call = Call(version=req.version, name=name, body=body, query=req.query, sv=sv)
            call.google_client = req.google_client
            call.version_neutral = req.version_neutral
            if inspect.iscoroutinefunction(route.handler):
                return await route.handler(call)
            return await run_in_threadpool(route.handler, call)
        except (ClientDisconnect, asyncio.CancelledError):  # the caller left (a gRPC call cancelled)
            status, http = "CANCELLED", 499
            raise
        except Exception as raised:
            exc = handler_error(raised, f"{req.transport or method} {req.version}/{req.path[:200]}")
            status, http = exc.status, error_body(exc)[0]
            key_name = getattr(exc, "key_name", key_name)
            raise exc from None
        finally:
            if changes or http in (401, 403):
                await run_in_threadpool(
                    audit.record,
                    sv.db,
                    key_name=key_name,
                    project=project_of(name),
                    method=rpc,
                    http_method=req.transport or method,
                    resource=name,
                    http_status=http,
                    status=status,
                    client=req.client,
                )
