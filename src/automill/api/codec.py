"""JSON <-> API messages, per version, through google.protobuf.json_format.

Requests are parsed strictly into the caller's version of the message (camelCase or snake_case,
enum names or numbers, int64 as strings or numbers) and handed to the services as the v1 JSON
form. Responses go the other way. The few differences between v1 and v1beta1 live here.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from google.cloud import automl_v1, automl_v1beta1
from google.protobuf import json_format

from automill.core.errors import InvalidArgument
from automill.services.render import OperationView

VERSIONS = {"v1": automl_v1, "v1beta1": automl_v1beta1}

#: Automill fields inside text model metadata (no budget field exists there in Google's API).
TEXT_MODEL_KEYS = ("textClassificationModelMetadata", "textSentimentModelMetadata", "textExtractionModelMetadata")
_EXTENSION_FIELDS = {
    "trainBudgetMilliNodeHours": "trainBudgetMilliNodeHours",
    "train_budget_milli_node_hours": "trainBudgetMilliNodeHours",
    "modelType": "modelType",
    "model_type": "modelType",
    "baseModelId": "baseModelId",
    "base_model_id": "baseModelId",
}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def message_type(version: str, type_name: str) -> Any:
    return getattr(VERSIONS[version], type_name)


#: JSON nested deeper than this is refused (no API message nests more than a dozen levels).
MAX_JSON_DEPTH = 64
#: Integer literals longer than this are read as infinity, which every numeric field refuses by
#: name (Python refuses to convert over 4,300 digits, and no API number needs 40).
MAX_INT_DIGITS = 40


def _int(text: str) -> int | float:
    return int(text) if len(text) <= MAX_INT_DIGITS else float("inf") if text[0] != "-" else float("-inf")


def _no_constant(name: str) -> Any:
    raise InvalidArgument(f"Invalid JSON payload received: {name} is not JSON")


def _depth_ok(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw or not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_int=_int, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidArgument(f"Invalid JSON payload received: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidArgument(f"Invalid JSON payload received: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise InvalidArgument("Invalid JSON payload received: the body must be a JSON object")
    if not _depth_ok(body):
        raise InvalidArgument(f"Invalid JSON payload received: nested deeper than {MAX_JSON_DEPTH} levels")
    return body


def decode(version: str, type_name: str, body: dict[str, Any], *, field: str = "") -> dict[str, Any]:
    """Validate ``body`` as ``type_name`` of ``version`` and return its v1 JSON form."""
    cls = message_type(version, type_name)
    msg = cls.pb()()
    _objects_are_objects(msg.DESCRIPTOR, body, field or type_name[:1].lower() + type_name[1:])
    try:
        json_format.ParseDict(body, msg, ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        where = f" in {field}" if field else ""
        raise InvalidArgument(
            f"Invalid JSON payload received{where}: {str(exc)[:300]}",
            field=_parse_error_field(str(exc)) or field or None,
        ) from None
    out = json_format.MessageToDict(msg, preserving_proto_field_name=False)
    return to_v1(version, type_name, out)


def _parse_error_field(message: str) -> str:
    """json_format's "... at Model.imageClassificationModelMetadata.trainBudgetMilliNodeHours." ->
    "model.imageClassificationModelMetadata.trainBudgetMilliNodeHours" ('' when it names none)."""
    m = re.search(r" at ([A-Za-z_][\w.]*?)\.?$", message.strip())
    if not m or "." not in m.group(1):
        return ""
    head, _, rest = m.group(1).partition(".")
    return f"{head[:1].lower()}{head[1:]}.{rest}"


def _objects_are_objects(descriptor: Any, body: dict[str, Any], where: str) -> None:
    """A message-typed field given as a string or number gets an error naming it (protobuf's own
    message for that case speaks of a field named after the string's first character)."""
    for f in descriptor.fields:
        if f.message_type is None or f.is_repeated:
            continue
        for key in (f.json_name, f.name):
            value = body.get(key)
            if value is not None and not isinstance(value, dict) and f.message_type.full_name not in _WELL_KNOWN:
                raise InvalidArgument(
                    f"{where}.{key} must be a JSON object, got a {type(value).__name__}", field=f"{where}.{key}"
                )


#: Message types whose JSON form is not an object (timestamps, durations, wrappers, values).
_WELL_KNOWN = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.StringValue",
    "google.protobuf.Int64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.UInt64Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BytesValue",
}


def pop_model_extensions(version: str, model: dict[str, Any]) -> dict[str, Any]:
    """Take Automill's and Google-doc aliases out of a Model body before strict parsing.

    - ``<text>ModelMetadata.trainBudgetMilliNodeHours``, ``.modelType``, ``.baseModelId``: Automill's
      text training budget, model type and resumable training (Google's text metadata has none).
    - v1 ``imageClassificationModelMetadata.trainBudget`` (node hours), as Google's Vision Edge
      how-to sends on v1: becomes ``trainBudgetMilliNodeHours`` = 1000 x hours.
    - a top-level ``baseModelId`` (the how-to's resumable-training body) moves into the metadata.
    """
    ext: dict[str, Any] = {}
    for alias in ("baseModelId", "base_model_id"):
        if alias in model:  # Google's resumable-training body puts it at the top level
            base = _extension_value(f"model.{alias}", "baseModelId", model.pop(alias))
            ic = [k for k in model if _camel(k) == "imageClassificationModelMetadata"]
            if ic:
                model[ic[0]] = {**model[ic[0]], "baseModelId": base}
            else:
                ext["baseModelId"] = base
    for key in list(model):
        ckey = _camel(key)
        if ckey in TEXT_MODEL_KEYS and isinstance(model[key], dict):
            meta = dict(model[key])
            for name, canonical in _EXTENSION_FIELDS.items():
                if name in meta:
                    ext[canonical] = _extension_value(f"model.{key}.{name}", canonical, meta.pop(name))
            model[key] = meta
        if version == "v1" and ckey == "imageClassificationModelMetadata" and isinstance(model[key], dict):
            meta = dict(model[key])
            for alias in ("trainBudget", "train_budget"):
                if alias in meta:
                    hours = _number(f"model.{key}.{alias}", meta.pop(alias), "a number of node hours")
                    meta.setdefault("trainBudgetMilliNodeHours", str(round(hours * 1000)))
            model[key] = meta
    return ext


#: The largest budget any field may name: a year of node hours (services check the real limits).
_MAX_BUDGET = 1000 * 24 * 366


def _number(field: str, value: Any, what: str) -> float:
    """A finite, non-negative JSON number or numeric string, at most a year of node hours."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidArgument(f"{field} must be {what}, got a {type(value).__name__}", field=field)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} must be {what}, got {str(value)[:40]!r}", field=field) from None
    if not math.isfinite(number) or not 0 <= number <= _MAX_BUDGET:
        raise InvalidArgument(f"{field} must be {what} between 0 and {_MAX_BUDGET}, got {str(value)[:40]}", field=field)
    return number


def _extension_value(field: str, canonical: str, value: Any) -> Any:
    """Check an Automill extension field's JSON type: the budget an int64 (number or string), the
    model type and base model id strings."""
    if canonical == "trainBudgetMilliNodeHours":
        number = _number(field, value, "an integer number of milli node hours")
        if number != int(number):
            raise InvalidArgument(f"{field} must be an integer, got {value}", field=field)
        return str(int(number))
    if not isinstance(value, str) or len(value) > 128:
        raise InvalidArgument(f"{field} must be a string of at most 128 characters", field=field)
    return value


def to_v1(version: str, type_name: str, data: dict[str, Any]) -> dict[str, Any]:
    if version == "v1":
        return data
    meta = data.get("imageClassificationModelMetadata")
    if isinstance(meta, dict):
        for old, new in (("trainBudget", "trainBudgetMilliNodeHours"), ("trainCost", "trainCostMilliNodeHours")):
            if old in meta:
                meta[new] = str(int(meta.pop(old)) * 1000)
    return data


def from_v1(version: str, type_name: str, data: dict[str, Any], *, strict_types: bool = True) -> dict[str, Any]:
    """v1 JSON -> the caller's version; unknown fields dropped by a round trip through its type."""
    data = json.loads(json.dumps(data))
    if version == "v1beta1":
        meta = data.get("imageClassificationModelMetadata")
        if isinstance(meta, dict):
            for old, new in (("trainBudgetMilliNodeHours", "trainBudget"), ("trainCostMilliNodeHours", "trainCost")):
                if old in meta:
                    meta[new] = str(-(-int(meta.pop(old)) // 1000))
    if not strict_types:
        return data
    msg = message_type(version, type_name).pb()()
    json_format.ParseDict(data, msg, ignore_unknown_fields=True)
    return json_format.MessageToDict(msg, preserving_proto_field_name=False)


def with_extensions(version: str, model_v1: dict[str, Any]) -> dict[str, Any]:
    """A Model for Get/List: the version's fields plus Automill's text training fields."""
    out = from_v1(version, "Model", model_v1)
    for key in TEXT_MODEL_KEYS:
        if key in model_v1:
            extra = {k: v for k, v in model_v1[key].items() if k not in out.get(key, {})}
            out.setdefault(key, {}).update(extra)
    return out


def _type_url(version: str, type_name: str) -> str:
    if type_name == "Empty":
        return "type.googleapis.com/google.protobuf.Empty"
    return f"type.googleapis.com/google.cloud.automl.{version}.{type_name}"


_METADATA_FIELDS = {v: {f.json_name for f in VERSIONS[v].OperationMetadata.pb().DESCRIPTOR.fields} for v in VERSIONS}


def operation_json(view: OperationView, version: str, *, extensions: bool = False) -> dict[str, Any]:
    """A google.longrunning.Operation with exactly the fields the strict operations client knows;
    ``extensions`` (callers that are not Google's client libraries) adds Automill's fields:
    ``metadata.stage``, ``metadata.worksOn`` and a Model response's text training fields (as GetModel has them)."""
    meta: dict[str, Any] = {
        "@type": _type_url(version, "OperationMetadata"),
        "createTime": view.create_time,
        "updateTime": view.update_time,
    }
    if view.details_key in _METADATA_FIELDS[version]:
        details = view.details
        if view.details_key == "batchPredictDetails" and "inputConfig" in details:
            details = {**details, "inputConfig": from_v1(version, "BatchPredictInputConfig", details["inputConfig"])}
        meta[view.details_key] = details
    if view.progress_percent:
        meta["progressPercent"] = view.progress_percent
    if extensions and view.stage:
        meta["stage"] = view.stage
    if extensions and view.works_on:
        meta["worksOn"] = view.works_on
    if view.partial_failures:
        meta["partialFailures"] = [
            {"code": int(f.get("code", 2)), "message": str(f.get("message", ""))} for f in view.partial_failures[:20]
        ]
    out: dict[str, Any] = {"name": view.name, "metadata": meta}
    if view.done:
        out["done"] = True
        if view.error_code:
            out["error"] = {"code": view.error_code, "message": view.error_message}
        else:
            if view.result_type == "Empty":
                body = {}
            elif extensions and view.result_type == "Model":
                body = with_extensions(version, view.result or {})
            else:
                body = from_v1(version, view.result_type, view.result or {})
            out["response"] = {"@type": _type_url(version, view.result_type), **body}
    return out
