"""Every gRPC method Automill serves, as the REST call it stands for: one RPC table for both transports.

Built from the API's own descriptions, nothing written by hand per RPC: the HTTP rules
(``google.api.http``) that the official client's REST transport carries, and the protobuf descriptors
of the request and response messages (both read by api.openapi). A gRPC request is transcoded the way
Google's gateways do it, in reverse: the fields the rule's URI template binds make the path, the body
field (or the whole request, ``*``) the JSON body, the other fields the query. The call then takes
exactly the REST door and route (api.dispatch, api.routes); the JSON answer is parsed into the RPC's
response message.

Services: google.cloud.automl.v1.AutoMl and PredictionService, their v1beta1 counterparts, and
google.longrunning.Operations (at the location-scoped paths Automill serves; its operations answer
in the version of the call that started them). Server reflection gets a file descriptor for each
(the client package carries the messages but not the service definitions).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2, json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from automill.api.openapi import _automill_routes, _google_routes
from automill.core.errors import InvalidArgument

OPERATIONS_SERVICE = "google.longrunning.Operations"


@dataclass(frozen=True)
class PathField:
    """One ``{field.path=template}`` of a URI template."""

    field: str  # a.b: a field of the request, or of one of its message fields
    template: str  # projects/*/locations/*
    pattern: re.Pattern[str]

    def value(self, request: Message) -> str:
        msg: Any = request
        for part in self.field.split("."):
            msg = getattr(msg, part)
        return str(msg)


@dataclass(frozen=True)
class Binding:
    service: str  # google.cloud.automl.v1.AutoMl
    rpc: str  # CreateDataset
    version: str  # v1, v1beta1 (v1 for the version-less google.longrunning service)
    http_method: str  # GET, POST, PATCH, DELETE
    template: str  # /v1/{parent=projects/*/locations/*}/datasets
    body: str  # "" (none), "*" (the request less its path fields) or a field name
    request: type[Message]
    response: type[Message]
    path_fields: tuple[PathField, ...]
    version_neutral: bool = False

    @property
    def full_method(self) -> str:
        return f"/{self.service}/{self.rpc}"

    def transcode(self, request: Message) -> tuple[str, dict[str, str], dict[str, Any]]:
        """-> (path after /{version}/, query, JSON body) of the REST call; InvalidArgument when a bound
        field does not fit its template (it would name another resource, or none)."""
        values: dict[str, str] = {}
        for pf in self.path_fields:
            value = pf.value(request)
            if not pf.pattern.fullmatch(value):
                shown = value[:200] if value else "empty"
                raise InvalidArgument(
                    f"{pf.field} must be a resource name like {pf.template} for {self.rpc}, got {shown!r}",
                    field=pf.field,
                )
            values[pf.field] = value
        path = re.sub(r"\{([^}=]+)(=[^}]*)?\}", lambda m: values[m.group(1)], self.template)
        path = path.split("/", 2)[2]  # /v1/rest -> rest
        bound = {pf.field.split(".")[0] for pf in self.path_fields}
        if self.body == "*":
            body = to_json(request)
            for f in request.DESCRIPTOR.fields:
                if f.name in bound:
                    body.pop(f.json_name, None)
            return path, {}, body
        body = {}
        if self.body:
            body = to_json(getattr(request, self.body))
        query: dict[str, str] = {}
        for key, value in to_json(request).items():
            name = _field_name(request.DESCRIPTOR, key)
            if name in bound or name == self.body or isinstance(value, (dict, list)):
                continue
            query[key] = json.dumps(value) if isinstance(value, bool) else str(value)
        return path, query, body

    def answer(self, result: Any) -> Message:
        """The route's JSON answer as the response message (fields it does not know are dropped:
        Automill's REST extensions have no place in the protobuf)."""
        msg = self.response()
        json_format.ParseDict(result if isinstance(result, dict) else {}, msg, ignore_unknown_fields=True)
        return msg


def to_json(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=False)


def _field_name(desc: Any, json_name: str) -> str:
    for f in desc.fields:
        if f.json_name == json_name:
            return str(f.name)
    return json_name


def _path_fields(template: str) -> tuple[PathField, ...]:
    out = []
    for m in re.finditer(r"\{([^}=]+)(?:=([^}]*))?\}", template):
        field, pattern = m.group(1), m.group(2) or "*"
        regex = "/".join("[^/]+" if p == "**" else "[^/:]+" if p == "*" else re.escape(p) for p in pattern.split("/"))
        out.append(PathField(field, pattern, re.compile(regex)))
    return tuple(out)


def _cls(desc: Descriptor | None) -> type[Message]:
    if desc is None:
        return empty_pb2.Empty
    return message_factory.GetMessageClass(desc)


@lru_cache(maxsize=1)
def bindings() -> dict[str, Binding]:
    """Full gRPC method name (``/google.cloud.automl.v1.AutoMl/CreateDataset``) -> its binding."""
    out: dict[str, Binding] = {}
    for version in ("v1", "v1beta1"):
        for method, uri, rpc, request, response, body, service in _google_routes(version):
            if service == "Operations":
                continue
            b = Binding(
                service=f"google.cloud.automl.{version}.{service}",
                rpc=rpc,
                version=version,
                http_method=method.upper(),
                template=uri,
                body=body,
                request=_cls(request),
                response=_cls(response),
                path_fields=_path_fields(uri),
            )
            out.setdefault(b.full_method, b)  # the first rule of an RPC; additional bindings are aliases
    for method, uri, rpc, request, response, body, _ in _automill_routes("v1"):
        b = Binding(
            service=OPERATIONS_SERVICE,
            rpc=rpc,
            version="v1",
            http_method=method.upper(),
            template=uri,
            body=body,
            request=_cls(request),
            response=_cls(response),
            path_fields=_path_fields(uri),
            version_neutral=True,
        )
        out[b.full_method] = b
    return out


def services() -> dict[str, list[Binding]]:
    """Service full name -> its bindings."""
    out: dict[str, list[Binding]] = {}
    for b in bindings().values():
        out.setdefault(b.service, []).append(b)
    return out


@lru_cache(maxsize=1)
def register_service_descriptors() -> tuple[str, ...]:
    """Add a file descriptor for each AutoMl and PredictionService of both versions to the default pool
    (google.longrunning's is there already), so that server reflection can describe them. -> the
    services' full names."""
    pool = descriptor_pool.Default()
    names = []
    for service, binds in sorted(services().items()):
        names.append(service)
        if service == OPERATIONS_SERVICE:
            continue
        try:
            pool.FindServiceByName(service)
            continue
        except KeyError:
            pass
        package, _, short = service.rpartition(".")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", short).lower()
        fdp = descriptor_pb2.FileDescriptorProto(
            name=f"{package.replace('.', '/')}/{snake}_service.proto", package=package, syntax="proto3"
        )
        deps = set()
        svc = fdp.service.add(name=short)
        for b in sorted(binds, key=lambda b: b.rpc):
            req, resp = b.request.DESCRIPTOR, b.response.DESCRIPTOR
            deps.update({req.file.name, resp.file.name})
            svc.method.add(name=b.rpc, input_type=f".{req.full_name}", output_type=f".{resp.full_name}")
        fdp.dependency.extend(sorted(deps))
        pool.AddSerializedFile(fdp.SerializeToString())
    return tuple(names)
