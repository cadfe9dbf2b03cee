"""The door's checks that run before any route: Host, Origin, Content-Type and body size.

A pure ASGI middleware, so that a refused request costs no body read and no thread:

- ``Host`` must name this server (a browser on a loopback server would otherwise talk to a
  rebinding attacker's DNS name: DNS rebinding). Loopback servers answer to loopback names and
  addresses; others to their address and the names in ``allowed_hosts`` (any host when bound to a
  wildcard address and no names are configured: there the Host header protects nothing).
- A mutating request (POST, PATCH, PUT, DELETE) from a web page of another origin is refused: a
  browser sends ``Origin`` on every cross-origin non-GET request.
- A mutating request signed in by the web console's session cookie must send the session's CSRF
  token (api.session).
- A mutating request with a body must say ``Content-Type: application/json``: the content types a
  cross-site HTML form or ``no-cors`` fetch can send (text/plain, form-urlencoded, multipart) are
  refused, as Google's API does.
- A body over ``max_body_bytes`` is refused with 413 before it is read (declared length), or as
  soon as the bytes read pass the limit (chunked bodies).

Every refusal is a google.rpc.Status JSON body, like the API's own errors, and is reported to
``on_refusal`` (the app writes the audit log's row for it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from automill.api.errors import error_body
from automill.api.session import CSRF_HEADER, csrf_ok
from automill.core.errors import AutomillError, InvalidArgument, PermissionDenied
from automill.core.net import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MUTATING = {"POST", "PATCH", "PUT", "DELETE"}
WILDCARDS = {"0.0.0.0", "::", ""}  # noqa: S104 - the addresses that mean "every interface", to recognise, not bind


class PayloadTooLarge(InvalidArgument):
    """A request body over the server's limit (HTTP 413)."""

    http_status = 413


class UnsupportedMediaType(InvalidArgument):
    """A mutating request whose body is not JSON (HTTP 415)."""

    http_status = 415


def host_only(netloc: str) -> str:
    """``name:port``, ``[::1]:8080`` or ``name`` -> the lower-cased name or address."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    if netloc.count(":") == 1:
        return netloc.split(":", 1)[0]
    return netloc


class HostPolicy:
    """Which ``Host`` header values a server bound to ``bind_host`` answers to."""

    def __init__(self, bind_host: str, allowed_hosts: Iterable[str] = ()) -> None:
        self.names = {host_only(h) for h in allowed_hosts if h.strip()}
        self.any = "*" in self.names or (bind_host.strip("[]") in WILDCARDS and not self.names)
        self.loopback_ok = is_loopback(bind_host) or not self.names or bind_host.strip("[]") in WILDCARDS
        if not is_loopback(bind_host) and bind_host.strip("[]") not in WILDCARDS:
            self.names.add(host_only(bind_host))

    def allows(self, host: str) -> bool:
        if self.any:
            return True
        return host in self.names or (self.loopback_ok and is_loopback(host))


async def send_error(
    send: Send, exc: AutomillError, status: int | None = None, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    http, payload = error_body(exc)
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status or http,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: Told of each refusal: (HTTP method, path, headers, client address, HTTP status, error); the app audits them.
RefusalHook = Callable[[str, str, dict[str, str], str, int, AutomillError], Awaitable[None]]


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: HostPolicy,
        max_body_bytes: int,
        on_refusal: RefusalHook | None = None,
        uploads: tuple[str, int] | None = None,
    ) -> None:
        self.app = app
        self.policy = policy
        self.max_body_bytes = max_body_bytes
        self.on_refusal = on_refusal
        #: (path prefix, body limit): requests under the prefix send files as multipart/form-data (api.upload).
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        upload = self.uploads is not None and path.startswith(self.uploads[0])
        try:
            self.check(scope["method"], headers, upload=upload)
        except AutomillError as exc:
            status = getattr(exc, "http_status", None)
            await send_error(send, exc, status)
            if self.on_refusal is not None:
                client = scope.get("client") or ("", 0)
                await self.on_refusal(
                    scope["method"], scope.get("path", ""), headers, str(client[0]), status or error_body(exc)[0], exc
                )
            return
        limit = self.uploads[1] if upload and self.uploads is not None else self.max_body_bytes
        await self.app(scope, self._limited(receive, limit, upload), send)

    def check(self, method: str, headers: dict[str, str], *, upload: bool = False) -> None:
        """``upload``: a request of the upload route, which sends multipart/form-data up to its own limit."""
        host = headers.get("host", "")
        if not self.policy.allows(host_only(host)):
            raise InvalidArgument(
                f"Host {host[:100]!r} is not a name this server answers to; "
                "add it with --allowed-host (AUTOMILL_ALLOWED_HOSTS)",
                field="Host",
            )
        if method not in MUTATING:
            return
        origin = headers.get("origin", "")
        if origin and origin != "null" and not self._same_origin(origin, host):
            raise PermissionDenied(f"cross-site request refused: Origin {origin[:100]!r} is not this server")
        if origin == "null":
            raise PermissionDenied("cross-site request refused: Origin 'null' (a sandboxed page or file)")
        if not csrf_ok(headers):
            raise PermissionDenied(
                "request refused: a request signed in by the console's session cookie must send its "
                f"CSRF token in the {CSRF_HEADER} header (reload the console page)"
            )
        length = headers.get("content-length", "")
        if length:
            if not length.isdigit():
                raise InvalidArgument("Content-Length must be a number of bytes", field="Content-Length")
            limit = self.uploads[1] if upload and self.uploads is not None else self.max_body_bytes
            if int(length) > limit:
                raise PayloadTooLarge(
                    f"request body of {int(length)} bytes is over this server's limit of "
                    f"{limit} bytes ({'--max-upload-bytes' if upload else '--max-request-bytes'})"
                )
        has_body = (length not in ("", "0")) or "transfer-encoding" in headers
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if upload:
            if ctype != "multipart/form-data":
                raise UnsupportedMediaType(
                    f"Content-Type {ctype or 'missing'!r} is not accepted for an upload: send the files as "
                    "multipart/form-data (curl -F file=@a.csv)",
                    field="Content-Type",
                )
        elif (has_body or ctype) and ctype != "application/json":
            raise UnsupportedMediaType(
                f"Content-Type {ctype or 'missing'!r} is not accepted on {method}: send a JSON body with "
                "'Content-Type: application/json' (curl: -H 'Content-Type: application/json')",
                field="Content-Type",
            )

    @staticmethod
    def _same_origin(origin: str, host: str) -> bool:
        """The page's origin names this server (its scheme is not compared: behind a TLS proxy
        the server sees http while the browser's origin is https)."""
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc.lower() == host.lower()

    def _limited(self, receive: Receive, limit: int, upload: bool = False) -> Receive:
        seen = 0
        flag = "--max-upload-bytes" if upload else "--max-request-bytes"

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"request body is over this server's limit of {limit} bytes ({flag})")
            return message

        return wrapped
