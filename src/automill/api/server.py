"""``automill serve``'s listeners: the REST app (uvicorn) and the gRPC server in one process and one event
loop, sharing one door (api.dispatch: keys, rate limits, routes, audit) and one set of services."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import uvicorn

from automill.api import grpc_server
from automill.api.app import create_app
from automill.api.dispatch import Door
from automill.api.protocol import GuardedH11Protocol
from automill.core.net import is_loopback
from automill.services.container import Services

log = logging.getLogger("automill")


def tls_files(cert: str, key: str) -> tuple[bytes, bytes] | None:
    """(PEM key, PEM certificate chain) when both are set; ValueError when only one is or a file is unreadable."""
    if not cert and not key:
        return None
    if not cert or not key:
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    try:
        return Path(key).read_bytes(), Path(cert).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the TLS certificate or key: {exc.strerror}") from None


def serve(services: Services) -> None:
    """Serve until stopped (SIGINT/SIGTERM). ValueError for unusable TLS files; RuntimeError when an
    explicitly set gRPC port cannot be bound (the default one, the HTTP port + 1, is then skipped with
    a warning)."""
    settings = services.settings
    tls = tls_files(settings.tls_cert, settings.tls_key)
    door = Door(services)
    config = uvicorn.Config(
        create_app(services, door),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=GuardedH11Protocol.configure(
            head_timeout=settings.head_timeout_seconds,
            body_idle_timeout=settings.body_idle_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
        ),
        limit_concurrency=settings.max_connections,
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )
    asyncio.run(_serve(uvicorn.Server(config), door, tls))


async def _serve(http: uvicorn.Server, door: Door, tls: tuple[bytes, bytes] | None) -> None:
    settings = door.services.settings
    grpc_port = settings.grpc_listen_port
    grpc = None
    if grpc_port:
        try:
            grpc = await grpc_server.start(door, settings.host, grpc_port, tls=tls)
        except RuntimeError:
            if settings.grpc_port is not None:
                raise RuntimeError(f"cannot serve gRPC on port {grpc_port}: it is in use or not allowed") from None
            log.warning("gRPC is off: port %d (the HTTP port + 1) is in use; set --grpc-port", grpc_port)
        else:
            scheme = "TLS" if tls else "plain text"
            log.info("serving gRPC on %s:%d (%s)", settings.host, grpc_port, scheme)
            if tls is None and not is_loopback(settings.host):
                log.warning(
                    "gRPC on %s is plain text: set --tls-cert/--tls-key or put a TLS proxy in front", settings.host
                )
    try:
        await http.serve()
    finally:
        if grpc is not None:
            await grpc.stop(grace=2)
