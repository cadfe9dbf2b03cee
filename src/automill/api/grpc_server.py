"""The API over gRPC (the official clients' default transport), beside REST in the same process and loop.

Each method of api.grpc_bindings gets a generic handler that transcodes the request into its REST call
and hands it to the same door as REST (api.dispatch: key, rate limit, role, route handler, audit), so
every RPC has one implementation. Errors are the gRPC status of the same google.rpc code REST maps to
HTTP, with a google.rpc.Status in ``grpc-status-details-bin`` (BadRequest naming the field, RetryInfo
for a limit). The key comes from the ``x-goog-api-key`` or ``authorization: Bearer`` metadata. Server
reflection lists the services. Plain text, or TLS with the server's certificate and key.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from grpc_reflection.v1alpha import reflection

from automill.api.dispatch import Door, Incoming
from automill.api.errors import handler_error
from automill.api.grpc_bindings import Binding, bindings, register_service_descriptors
from automill.core.errors import AutomillError, InvalidArgument

log = logging.getLogger("automill.grpc")

#: google.rpc.Code number -> grpc.StatusCode.
STATUS_CODES: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}
DETAILS_KEY = "grpc-status-details-bin"


def credential(metadata: dict[str, str]) -> str | None:
    """The key a call sends, as REST reads it from headers: ``x-goog-api-key``, else ``authorization:
    Bearer KEY`` (what Google's libraries send from credentials); None when neither, "" when unusable."""
    key = metadata.get("x-goog-api-key")
    if key is not None:
        return key.strip()
    auth = metadata.get("authorization")
    if auth is None:
        return None
    scheme, _, token = auth.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def peer_host(peer: str) -> str:
    """``ipv4:127.0.0.1:5000`` / ``ipv6:%5B::1%5D:5000`` -> the address alone."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return peer[:64]
    return unquote(rest).rsplit(":", 1)[0].strip("[]")


def status_of(exc: AutomillError) -> status_pb2.Status:
    """The google.rpc.Status of an error, with its BadRequest field and RetryInfo details."""
    status = status_pb2.Status(code=exc.code, message=exc.message)
    if exc.field:
        bad = error_details_pb2.BadRequest(
            field_violations=[error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=exc.message)]
        )
        status.details.append(_any(bad))
    retry = getattr(exc, "retry_after", None)
    if retry:
        status.details.append(_any(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=int(retry)))))
    return status


def _any(msg: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: AutomillError) -> None:
    status = status_of(exc)
    await context.abort(
        STATUS_CODES.get(exc.code, grpc.StatusCode.UNKNOWN),
        exc.message,
        trailing_metadata=((DETAILS_KEY, status.SerializeToString()),),
    )


def _handler(binding: Binding, door: Door) -> grpc.RpcMethodHandler[bytes, bytes]:
    async def behaviour(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        metadata = {k.lower(): v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        malformed: AutomillError | None = None
        query: dict[str, str]
        body: dict[str, Any]
        path, query, body = "", {}, {}
        try:
            request = binding.request.FromString(raw)
            path, query, body = binding.transcode(request)
        except DecodeError:
            malformed = InvalidArgument(f"the request is not a valid {binding.request.DESCRIPTOR.full_name}")
        except AutomillError as exc:
            malformed = exc

        async def read_body() -> dict[str, Any]:
            return body

        incoming = Incoming(
            method=binding.http_method,
            version=binding.version,
            path=path or f"(malformed {binding.rpc})",
            credential=credential(metadata),
            client=peer_host(context.peer() or ""),
            query=query,
            read_body=read_body,
            google_client=True,  # a protobuf has no room for Automill's JSON extension fields
            transport="GRPC",
            malformed=malformed,
            version_neutral=binding.version_neutral,
            rpc=binding.rpc,
        )
        try:
            result = await door.call(incoming)
            return binding.answer(result).SerializeToString()
        except AutomillError as exc:
            await _abort(context, exc)
        except Exception as exc:  # an answer that would not fit its message: INTERNAL, logged
            await _abort(context, handler_error(exc, binding.full_method))
        raise AssertionError("unreachable: abort raises")

    return grpc.unary_unary_rpc_method_handler(behaviour)  # bytes in, bytes out: decoding errors are ours


def generic_handlers(door: Door) -> list[grpc.GenericRpcHandler]:
    per_service: dict[str, dict[str, grpc.RpcMethodHandler[bytes, bytes]]] = {}
    for b in bindings().values():
        per_service.setdefault(b.service, {})[b.rpc] = _handler(b, door)
    return [grpc.method_handlers_generic_handler(s, methods) for s, methods in per_service.items()]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


async def start(door: Door, host: str, port: int, *, tls: tuple[bytes, bytes] | None = None) -> grpc.aio.Server:
    """Start serving on ``host:port`` in the running event loop (``tls``: PEM key and certificate chain).
    RuntimeError when the port cannot be bound."""
    settings = door.services.settings
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
            ("grpc.so_reuseport", 0),  # a second server on the same port fails to start, as for HTTP
        ],
        maximum_concurrent_rpcs=settings.max_connections,
    )
    server.add_generic_rpc_handlers(generic_handlers(door))
    names = register_service_descriptors()
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
    address = _address(host, port)
    if tls is not None:
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise RuntimeError(f"cannot listen on {address}")
    await server.start()
    return server
