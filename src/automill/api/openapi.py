"""``GET /openapi.json``: an OpenAPI 3.0 description of every REST route of v1 and v1beta1, generated,
not written by hand.

- Paths, methods and bodies come from the HTTP rules of Google's API (``google.api.http``), as the
  official client library's REST transports carry them (``_get_http_options`` of each RPC).
- Request and response shapes are JSON Schemas walked from the protobuf descriptors of the request and
  response messages (field JSON names, int64 as strings, enums by name, maps, repeated fields).
- google.longrunning's operations (get, list, cancel, delete, wait) and Automill's extension (the list
  of a dataset's annotation specs) are added from their own messages, at the paths Automill serves.
- Every error answer is a google.rpc.Status body (``default`` response).

The document is built once per process.
"""

from __future__ import annotations

import importlib
import re
import typing
from functools import lru_cache
from typing import Any

from google.longrunning import operations_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

VERSIONS = ("v1", "v1beta1")
SERVICES = (("auto_ml", "AutoMl"), ("prediction_service", "PredictionService"))
#: Collection -> the path parameter that names one of its items.
_SINGULAR = {
    "projects": "project",
    "locations": "location",
    "datasets": "dataset",
    "models": "model",
    "annotationSpecs": "annotationSpec",
    "modelEvaluations": "modelEvaluation",
    "operations": "operation",
    "tableSpecs": "tableSpec",
    "columnSpecs": "columnSpec",
}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int32", "minimum": 0},
    # int64 in JSON: a decimal string (numbers are accepted too)
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
}
STATUS = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "status": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}


class _Schemas:
    """JSON Schemas of protobuf messages, each message once under components/schemas."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def message(self, desc: Descriptor, *, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
        if desc.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[desc.full_name])
        if skip:  # a request body without its path fields: inline, not shared
            return self._object(desc, skip)
        if desc.full_name not in self.components:
            self.components[desc.full_name] = {}  # placeholder: messages may refer to themselves
            self.components[desc.full_name] = self._object(desc, skip)
        return {"$ref": f"#/components/schemas/{desc.full_name}"}

    def _object(self, desc: Descriptor, skip: frozenset[str]) -> dict[str, Any]:
        props = {f.json_name: self.field(f) for f in desc.fields if f.name not in skip}
        return {"type": "object", "properties": props, "additionalProperties": False}

    def field(self, f: FieldDescriptor) -> dict[str, Any]:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = f.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value)}
        one = self.single(f)
        return {"type": "array", "items": one} if f.is_repeated else one

    def single(self, f: FieldDescriptor) -> dict[str, Any]:
        if f.type == FieldDescriptor.TYPE_ENUM and f.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in f.enum_type.values]}
        if f.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP) and f.message_type is not None:
            return self.message(f.message_type)
        return dict(_SCALARS[f.type])


def _path(uri: str) -> tuple[str, list[str], list[str]]:
    """``/v1/{parent=projects/*/locations/*}/datasets`` -> (OpenAPI path, path parameters, request fields
    bound by the path)."""
    params: list[str] = []
    fields: list[str] = []

    def expand(m: re.Match[str]) -> str:
        field, _, template = m.group(1).partition("=")
        fields.append(field.split(".")[0] if "." not in field else field)
        parts = (template or "*").split("/")
        out = []
        for i, part in enumerate(parts):
            if part == "*":
                name = _SINGULAR.get(parts[i - 1], f"{field.replace('.', '_')}_{i}") if i else field
                params.append(name)
                out.append(f"{{{name}}}")
            else:
                out.append(part)
        return "/".join(out)

    return re.sub(r"\{([^}]+)\}", expand, uri), params, fields


def _response_type(version: str, module: str, service: str, rpc: str) -> Any:
    base = importlib.import_module(f"google.cloud.automl_{version}.services.{module}.transports.base")
    transport = getattr(base, f"{service}Transport")
    prop = getattr(transport, re.sub(r"(?<!^)(?=[A-Z])", "_", rpc).lower())
    callable_type = typing.get_type_hints(prop.fget)["return"]
    result = typing.get_args(callable_type)[1]
    return typing.get_args(result)[0] if typing.get_origin(result) is typing.Union else result


def _pb(message: Any) -> Descriptor:
    desc: Descriptor = message.pb().DESCRIPTOR if hasattr(message, "pb") else message.DESCRIPTOR
    return desc


def _operation(
    schemas: _Schemas,
    method: str,
    path: str,
    params: list[str],
    request: Descriptor,
    response: Descriptor | None,
    body: str,
    bound: list[str],
    op_id: str,
    tag: str,
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[^/:]+$"}} for p in params
    ]
    if body != "*":
        for f in request.fields:
            if (
                f.name in bound
                or f.name == body
                or (f.type == FieldDescriptor.TYPE_MESSAGE and f.name != "update_mask")
            ):
                continue
            parameters.append({"name": f.json_name, "in": "query", "required": False, "schema": schemas.field(f)})
    op: dict[str, Any] = {
        "operationId": op_id,
        "tags": [tag],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": schemas.message(response) if response is not None else {"type": "object"}
                    }
                },
            },
            "default": {
                "description": "a google.rpc.Status error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}},
            },
        },
    }
    if body:
        schema = (
            schemas.message(request, skip=frozenset(bound))
            if body == "*"
            else schemas.field(request.fields_by_name[body])
        )
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return op


def _google_routes(version: str) -> list[tuple[str, str, str, Descriptor, Descriptor | None, str, str]]:
    """(method, uri, rpc, request, response, body, tag) of every RPC of the two services of ``version``."""
    types = importlib.import_module(f"google.cloud.automl_{version}")
    out: list[tuple[str, str, str, Descriptor, Descriptor | None, str, str]] = []
    for module, service in SERVICES:
        rest = importlib.import_module(f"google.cloud.automl_{version}.services.{module}.transports.rest_base")
        base = getattr(rest, f"_Base{service}RestTransport")
        for attr in sorted(dir(base)):
            if not attr.startswith("_Base") or not hasattr(getattr(base, attr), "_get_http_options"):
                continue
            rpc = attr[len("_Base") :]
            request = _pb(getattr(types, f"{rpc}Request"))
            response = _pb(_response_type(version, module, service, rpc))
            for rule in getattr(base, attr)._get_http_options():
                out.append((rule["method"], rule["uri"], rpc, request, response, rule.get("body", ""), service))
    return out


def _automill_routes(version: str) -> list[tuple[str, str, str, Descriptor, Descriptor | None, str, str]]:
    """google.longrunning at the location (as Automill and Google's AutoML serve it), :wait, and the
    annotation spec list extension."""
    loc = f"/{version}/{{name=projects/*/locations/*}}"
    op = f"/{version}/{{name=projects/*/locations/*/operations/*}}"
    lro = operations_pb2
    return [
        (
            "get",
            f"{loc}/operations",
            "ListOperations",
            lro.ListOperationsRequest.DESCRIPTOR,
            lro.ListOperationsResponse.DESCRIPTOR,
            "",
            "Operations",
        ),
        ("get", op, "GetOperation", lro.GetOperationRequest.DESCRIPTOR, lro.Operation.DESCRIPTOR, "", "Operations"),
        ("delete", op, "DeleteOperation", lro.DeleteOperationRequest.DESCRIPTOR, None, "", "Operations"),
        ("post", f"{op}:cancel", "CancelOperation", lro.CancelOperationRequest.DESCRIPTOR, None, "*", "Operations"),
        (
            "post",
            f"{op}:wait",
            "WaitOperation",
            lro.WaitOperationRequest.DESCRIPTOR,
            lro.Operation.DESCRIPTOR,
            "*",
            "Operations",
        ),
    ]


_SEGMENT = {"type": "string", "pattern": "^[^/:]+$"}
_ERROR = {
    "description": "a google.rpc.Status error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}},
}


def _extension_get(
    op_id: str,
    description: str,
    path_params: tuple[str, ...],
    ok: dict[str, Any],
    query: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A GET of an Automill extension route (no protobuf message describes it): path parameters, the 200
    answer ``ok`` and google.rpc.Status errors."""
    params = [{"name": p, "in": "path", "required": True, "schema": _SEGMENT} for p in path_params]
    return {
        "get": {
            "operationId": op_id,
            "tags": ["Automill extensions"],
            "description": description,
            "parameters": params + (query or []),
            "responses": {"200": ok, "default": _ERROR},
        }
    }


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _extension_paths(version: str, schemas: _Schemas) -> dict[str, Any]:
    """Automill's extension routes: annotation spec listing, resume eligibility (services.eligibility), and
    the web console's example listing and image."""
    loc = f"/{version}/projects/{{project}}/locations/{{location}}"
    spec = schemas.message(_pb(importlib.import_module(f"google.cloud.automl_{version}").AnnotationSpec))
    reason = {"type": "object", "properties": {"rule": {"type": "string"}, "message": {"type": "string"}}}
    eligibility = {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "eligible": {"type": "boolean"},
            "modelType": {"type": "string"},
            "trainTime": {"type": "string", "format": "date-time"},
            "eligibleUntil": {"type": "string", "format": "date-time"},
            "reasons": {"type": "array", "items": reason},
        },
    }
    listing = {
        "type": "object",
        "properties": {
            "examples": {"type": "array", "items": {"type": "object"}},
            "nextPageToken": {"type": "string"},
            "totalSize": {"type": "integer"},
            "labelCounts": {"type": "array", "items": {"type": "object"}},
        },
    }
    query = [
        {"name": "filter", "in": "query", "schema": {"type": "string"}},
        {"name": "pageSize", "in": "query", "schema": {"type": "integer", "format": "int32"}},
        {"name": "pageToken", "in": "query", "schema": {"type": "string"}},
    ]
    dataset = ("project", "location", "dataset")
    examples = f"{loc}/datasets/{{dataset}}/examples"
    return {
        f"{loc}/datasets/{{dataset}}/annotationSpecs": _extension_get(
            f"{version}.ListAnnotationSpecs",
            "All annotation specs of a dataset with their example counts (no such RPC in Google's API).",
            dataset,
            _json({"type": "object", "properties": {"annotationSpecs": {"type": "array", "items": spec}}}),
        ),
        f"{loc}/models/{{model}}:resumeEligibility": _extension_get(
            f"{version}.GetResumeEligibility",
            "Whether the model can be a CreateModel's baseModelId (same model type, labels unchanged, "
            "trained within the last 14 days), and if not, why (no such RPC in Google's API).",
            ("project", "location", "model"),
            _json(eligibility),
        ),
        examples: _extension_get(
            f"{version}.ListExamples",
            "A dataset's examples with their annotations, filtered by mlUse and "
            "annotationSpecId, with the counts per label per split on the first page.",
            dataset,
            _json(listing),
            query,
        ),
        f"{examples}/{{example}}:media": _extension_get(
            f"{version}.GetExampleMedia",
            "The image of an image example.",
            (*dataset, "example"),
            {"description": "the image", "content": {"image/*": {"schema": {"type": "string"}}}},
        ),
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    schemas = _Schemas()
    schemas.components["google.rpc.Status"] = STATUS
    paths: dict[str, dict[str, Any]] = {}
    for version in VERSIONS:
        for method, uri, rpc, request, response, body, tag in _google_routes(version) + _automill_routes(version):
            path, params, bound = _path(uri)
            op_id = f"{version}.{rpc}" if method not in paths.get(path, {}) else f"{version}.{rpc}.{method}"
            paths.setdefault(path, {})[method] = _operation(
                schemas, method, path, params, request, response, body, bound, op_id, tag
            )
        paths.update(_extension_paths(version, schemas))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Automill: the Google Cloud AutoML API (v1, v1beta1)",
            "version": "1",
            "description": "Generated from the API's HTTP rules and protobuf descriptors.",
        },
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-goog-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{}, {"apiKey": []}, {"bearer": []}],
        "paths": dict(sorted(paths.items())),
    }
