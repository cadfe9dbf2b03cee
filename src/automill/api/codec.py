"""JSON <-> API messages, per version, through google.protobuf.json_format.

Requests are parsed strictly into the caller's version of the message (camelCase or snake_case,
enum names or numbers, int64 as strings or numbers) and handed to the services as the v1 JSON
form. Responses go the other way. The few differences between v1 and v1beta1 live here.
"""

from __future__ import annotations

import json
from typing import Any

from google.cloud import automl_v1, automl_v1beta1
from google.protobuf import json_format

from automill.core.errors import InvalidArgument
from automill.services.render import OperationView

VERSIONS = {"v1": automl_v1, "v1beta1": automl_v1beta1}

#: Automill fields inside text model metadata (no budget field exists there in Google's API).
TEXT_MODEL_KEYS = ("textClassificationModelMetadata", "textSentimentModelMetadata", "textExtractionModelMetadata")
_EXTENSION_FIELDS = {"trainBudgetMilliNodeHours": "trainBudgetMilliNodeHours",
                     "train_budget_milli_node_hours": "trainBudgetMilliNodeHours",
                     "modelType": "modelType", "model_type": "modelType",
                     "baseModelId": "baseModelId", "base_model_id": "baseModelId"}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def message_type(version: str, type_name: str) -> Any:
    return getattr(VERSIONS[version], type_name)


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw or not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"Invalid JSON payload received: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidArgument("Invalid JSON payload received: the body must be a JSON object")
    return body


def decode(version: str, type_name: str, body: dict[str, Any], *, field: str = "") -> dict[str, Any]:
    """Validate ``body`` as ``type_name`` of ``version`` and return its v1 JSON form."""
    cls = message_type(version, type_name)
    msg = cls.pb()()
    try:
        json_format.ParseDict(body, msg, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        where = f" in {field}" if field else ""
        raise InvalidArgument(f"Invalid JSON payload received{where}: {exc}") from None
    out = json_format.MessageToDict(msg, preserving_proto_field_name=False)
    return to_v1(version, type_name, out)


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
            base = model.pop(alias)
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
                    ext[canonical] = meta.pop(name)
            model[key] = meta
        if version == "v1" and ckey == "imageClassificationModelMetadata" and isinstance(model[key], dict):
            meta = dict(model[key])
            for alias in ("trainBudget", "train_budget"):
                if alias in meta:
                    hours = meta.pop(alias)
                    try:
                        meta.setdefault("trainBudgetMilliNodeHours", str(int(float(hours) * 1000)))
                    except (TypeError, ValueError):
                        raise InvalidArgument(f"trainBudget must be a number of node hours, got {hours!r}") from None
            model[key] = meta
    return ext


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


def operation_json(view: OperationView, version: str) -> dict[str, Any]:
    """A google.longrunning.Operation with exactly the fields the strict operations client knows."""
    meta: dict[str, Any] = {"@type": _type_url(version, "OperationMetadata"),
                            "createTime": view.create_time, "updateTime": view.update_time}
    if view.details_key in _METADATA_FIELDS[version]:
        details = view.details
        if view.details_key == "batchPredictDetails" and "inputConfig" in details:
            details = {**details, "inputConfig": from_v1(version, "BatchPredictInputConfig", details["inputConfig"])}
        meta[view.details_key] = details
    if view.progress_percent:
        meta["progressPercent"] = view.progress_percent
    if view.partial_failures:
        meta["partialFailures"] = [{"code": int(f.get("code", 2)), "message": str(f.get("message", ""))}
                                   for f in view.partial_failures[:20]]
    out: dict[str, Any] = {"name": view.name, "metadata": meta}
    if view.done:
        out["done"] = True
        if view.error_code:
            out["error"] = {"code": view.error_code, "message": view.error_message}
        else:
            body = from_v1(version, view.result_type, view.result or {}) if view.result_type != "Empty" else {}
            out["response"] = {"@type": _type_url(version, view.result_type), **body}
    return out
