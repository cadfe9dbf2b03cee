"""The REST surface of AutoMl + PredictionService + google.longrunning, for /v1 and /v1beta1.

Each route: HTTP method, path regex, versions, handler, and the RPC's name and the permission it needs
(services.access: which roles hold it). This file is the one RPC -> permission table: the door
(api.app) checks the permission on the project of the URL's resource name before the handler runs.
Names come from the URL, never the body.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from automill.api import codec
from automill.core.errors import InvalidArgument, NotFound, ResourceExhausted, Unimplemented
from automill.services.container import Services
from automill.services.examples import ExampleService

LOC = r"projects/[^/:]+/locations/[^/:]+"
SEG = r"[^/:]+"


@dataclass
class Call:
    version: str
    name: str
    body: dict[str, Any]
    query: dict[str, str]
    sv: Services
    #: The caller is one of Google's client libraries (it sends ``x-goog-api-client``): its strict
    #: operations client refuses Automill's extension fields inside an Operation.
    google_client: bool = False
    #: gRPC's google.longrunning service has no version: each operation answers in the version of the
    #: call that started it (``OperationView.api_version``), ``version`` when it has none.
    version_neutral: bool = False

    def q_int(self, key: str) -> int:
        raw = self.query.get(key, "")
        try:
            return int(raw) if raw else 0
        except ValueError:
            raise InvalidArgument(f"{key} must be an integer, got {raw!r}", field=key) from None


Handler = Callable[[Call], Any]
BOTH = ("v1", "v1beta1")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    versions: tuple[str, ...]
    handler: Handler
    #: The URL ends in a collection (``.../datasets``); the bound name is its parent.
    collection: bool
    #: The RPC's name (the audit log's method), e.g. CreateModel.
    rpc: str
    #: What the caller's role must hold on the name's project (services.access.PERMISSIONS).
    permission: str

    @property
    def mutating(self) -> bool:
        """The RPC may change something (the audit log records it): all but get, list, Predict and :wait."""
        return self.permission.rsplit(".", 1)[1] not in ("get", "list", "predict")


ROUTES: list[Route] = []


def route(
    method: str, pattern: str, versions: tuple[str, ...] = BOTH, *, rpc: str, permission: str, collection: bool = False
) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        ROUTES.append(Route(method, re.compile(f"^{pattern}$"), versions, fn, collection, rpc, permission))
        return fn

    return deco


def op(c: Call, view: Any) -> dict[str, Any]:
    version = (view.api_version or c.version) if c.version_neutral else c.version
    return codec.operation_json(view, version, extensions=not c.google_client)


def no_bigquery(config: dict[str, Any], key: str) -> None:
    if key in config:
        raise Unimplemented(f"BigQuery ({key}) is not supported by Automill: use gcs_source / gcs_destination")


def listing(items: list[dict[str, Any]], key: str, token: str) -> dict[str, Any]:
    out: dict[str, Any] = {key: items} if items else {}
    if token:
        out["nextPageToken"] = token
    return out


# -- datasets -----------------------------------------------------------------------------------------
@route("POST", rf"{LOC}/datasets", collection=True, rpc="CreateDataset", permission="automl.datasets.create")
def create_dataset(c: Call) -> Any:
    dataset = codec.decode(c.version, "Dataset", c.body, field="dataset")
    if c.version == "v1beta1":
        return codec.from_v1(c.version, "Dataset", c.sv.datasets.create(c.name, dataset))
    return op(c, c.sv.datasets.create_operation(c.name, dataset))


@route("GET", rf"{LOC}/datasets", collection=True, rpc="ListDatasets", permission="automl.datasets.list")
def list_datasets(c: Call) -> Any:
    items, token = c.sv.datasets.list(
        c.name, c.query.get("filter", ""), c.q_int("pageSize"), c.query.get("pageToken", "")
    )
    return listing([codec.from_v1(c.version, "Dataset", d) for d in items], "datasets", token)


@route("GET", rf"{LOC}/datasets/{SEG}", rpc="GetDataset", permission="automl.datasets.get")
def get_dataset(c: Call) -> Any:
    return codec.from_v1(c.version, "Dataset", c.sv.datasets.get(c.name))


@route("PATCH", rf"{LOC}/datasets/{SEG}", rpc="UpdateDataset", permission="automl.datasets.update")
def update_dataset(c: Call) -> Any:
    body = dict(c.body)
    body.pop("name", None)
    dataset = codec.decode(c.version, "Dataset", body, field="dataset")
    dataset["name"] = c.name
    mask = c.query.get("updateMask", c.query.get("update_mask"))
    return codec.from_v1(c.version, "Dataset", c.sv.datasets.update(dataset, mask))


@route("DELETE", rf"{LOC}/datasets/{SEG}", rpc="DeleteDataset", permission="automl.datasets.delete")
def delete_dataset(c: Call) -> Any:
    return op(c, c.sv.datasets.delete(c.name))


@route("POST", rf"{LOC}/datasets/{SEG}:importData", rpc="ImportData", permission="automl.datasets.import")
def import_data(c: Call) -> Any:
    req = codec.decode(c.version, "ImportDataRequest", c.body)
    no_bigquery(req.get("inputConfig", {}), "bigquerySource")
    return op(c, c.sv.datasets.import_data(c.name, req.get("inputConfig", {})))


@route("POST", rf"{LOC}/datasets/{SEG}:exportData", rpc="ExportData", permission="automl.datasets.export")
def export_data(c: Call) -> Any:
    req = codec.decode(c.version, "ExportDataRequest", c.body)
    out = req.get("outputConfig", {})
    no_bigquery(out, "bigqueryDestination")
    return op(c, c.sv.datasets.export_data(c.name, out))


@route(
    "GET",
    rf"{LOC}/datasets/{SEG}/annotationSpecs/{SEG}",
    rpc="GetAnnotationSpec",
    permission="automl.annotationSpecs.get",
)
def get_annotation_spec(c: Call) -> Any:
    return codec.from_v1(c.version, "AnnotationSpec", c.sv.datasets.get_annotation_spec(c.name))


@route(
    "GET",
    rf"{LOC}/datasets/{SEG}/annotationSpecs",
    collection=True,
    rpc="ListAnnotationSpecs",
    permission="automl.annotationSpecs.list",
)
def list_annotation_specs(c: Call) -> Any:
    """Automill extension (no ListAnnotationSpecs RPC exists in Google's API)."""
    specs = c.sv.datasets.list_annotation_specs(c.name)
    return listing([codec.from_v1(c.version, "AnnotationSpec", s) for s in specs], "annotationSpecs", "")


@route(
    "GET",
    rf"{LOC}/datasets/{SEG}/examples",
    collection=True,
    rpc="ListExamples",
    permission="automl.datasets.get",
)
def list_examples(c: Call) -> Any:
    """Automill extension (the web console's Items tab): a dataset's examples with their annotations."""
    return ExampleService(c.sv).list(
        c.name, c.query.get("filter", ""), c.q_int("pageSize"), c.query.get("pageToken", "")
    )


@route("GET", rf"{LOC}/datasets/{SEG}/examples/{SEG}:media", rpc="GetExampleMedia", permission="automl.datasets.get")
def example_media(c: Call) -> Any:
    """Automill extension: the image of an image example (content-addressed, so cached for a day)."""
    data, mime = ExampleService(c.sv).media(c.name)
    return Response(data, media_type=mime, headers={"Cache-Control": "private, max-age=86400"})


# -- models -------------------------------------------------------------------------------------------
@route("POST", rf"{LOC}/models", collection=True, rpc="CreateModel", permission="automl.models.create")
def create_model(c: Call) -> Any:
    body = dict(c.body)
    ext = codec.pop_model_extensions(c.version, body)
    model = codec.decode(c.version, "Model", body, field="model")
    return op(c, c.sv.models.create(c.name, model, ext))


@route("GET", rf"{LOC}/models", collection=True, rpc="ListModels", permission="automl.models.list")
def list_models(c: Call) -> Any:
    items, token = c.sv.models.list(
        c.name, c.query.get("filter", ""), c.q_int("pageSize"), c.query.get("pageToken", "")
    )
    return listing([codec.with_extensions(c.version, m) for m in items], "model", token)


@route("GET", rf"{LOC}/models/{SEG}", rpc="GetModel", permission="automl.models.get")
def get_model(c: Call) -> Any:
    return codec.with_extensions(c.version, c.sv.models.get(c.name))


@route(
    "GET",
    rf"{LOC}/models/{SEG}:resumeEligibility",
    rpc="GetResumeEligibility",
    permission="automl.models.get",
)
def resume_eligibility(c: Call) -> Any:
    """Automill extension: may the model be a CreateModel's baseModelId, and if not, why (services.eligibility)."""
    return c.sv.models.resume_eligibility(c.name)


@route("PATCH", rf"{LOC}/models/{SEG}", ("v1",), rpc="UpdateModel", permission="automl.models.update")
def update_model(c: Call) -> Any:
    body = dict(c.body)
    body.pop("name", None)
    codec.pop_model_extensions(c.version, body)
    model = codec.decode(c.version, "Model", body, field="model")
    model["name"] = c.name
    mask = c.query.get("updateMask", c.query.get("update_mask"))
    return codec.with_extensions(c.version, c.sv.models.update(model, mask))


@route("DELETE", rf"{LOC}/models/{SEG}", rpc="DeleteModel", permission="automl.models.delete")
def delete_model(c: Call) -> Any:
    return op(c, c.sv.models.delete(c.name))


@route("POST", rf"{LOC}/models/{SEG}:deploy", rpc="DeployModel", permission="automl.models.deploy")
def deploy_model(c: Call) -> Any:
    return op(c, c.sv.deployment.deploy(c.name, codec.decode(c.version, "DeployModelRequest", c.body)))


@route("POST", rf"{LOC}/models/{SEG}:undeploy", rpc="UndeployModel", permission="automl.models.undeploy")
def undeploy_model(c: Call) -> Any:
    codec.decode(c.version, "UndeployModelRequest", c.body)
    return op(c, c.sv.deployment.undeploy(c.name))


@route("POST", rf"{LOC}/models/{SEG}:export", rpc="ExportModel", permission="automl.models.export")
def export_model(c: Call) -> Any:
    req = codec.decode(c.version, "ExportModelRequest", c.body)
    return op(c, c.sv.models.export(c.name, req.get("outputConfig", {})))


@route(
    "POST",
    rf"{LOC}/models/{SEG}:exportEvaluatedExamples",
    ("v1beta1",),
    rpc="ExportEvaluatedExamples",
    permission="automl.models.export",
)
def export_evaluated_examples(c: Call) -> Any:
    raise Unimplemented("ExportEvaluatedExamples writes to BigQuery, which Automill does not support")


@route(
    "GET",
    rf"{LOC}/models/{SEG}/modelEvaluations",
    collection=True,
    rpc="ListModelEvaluations",
    permission="automl.modelEvaluations.list",
)
def list_evaluations(c: Call) -> Any:
    items, token = c.sv.models.list_evaluations(
        c.name, c.query.get("filter", ""), c.q_int("pageSize"), c.query.get("pageToken", "")
    )
    return listing([codec.from_v1(c.version, "ModelEvaluation", e) for e in items], "modelEvaluation", token)


@route(
    "GET",
    rf"{LOC}/models/{SEG}/modelEvaluations/{SEG}",
    rpc="GetModelEvaluation",
    permission="automl.modelEvaluations.get",
)
def get_evaluation(c: Call) -> Any:
    return codec.from_v1(c.version, "ModelEvaluation", c.sv.models.get_evaluation(c.name))


@route("POST", rf"{LOC}/models/{SEG}:predict", rpc="Predict", permission="automl.models.predict")
async def predict(c: Call) -> Any:
    """The request's checks (an image is decoded) in a worker thread, then the model's queue, where
    concurrent predictions run as batches (serving.batching): the event loop only waits."""
    queued = await run_in_threadpool(_start_predict, c)
    return codec.from_v1(c.version, "PredictResponse", await asyncio.wrap_future(queued))


def _start_predict(c: Call) -> Future[dict[str, Any]]:
    req = codec.decode(c.version, "PredictRequest", c.body)
    return c.sv.predictions.start(c.name, req.get("payload", {}), req.get("params", {}))


@route("POST", rf"{LOC}/models/{SEG}:batchPredict", rpc="BatchPredict", permission="automl.models.batchPredict")
def batch_predict(c: Call) -> Any:
    req = codec.decode(c.version, "BatchPredictRequest", c.body)
    no_bigquery(req.get("inputConfig", {}), "bigquerySource")
    no_bigquery(req.get("outputConfig", {}), "bigqueryDestination")
    return op(
        c,
        c.sv.predictions.batch_predict(
            c.name, req.get("inputConfig", {}), req.get("outputConfig", {}), req.get("params", {})
        ),
    )


# -- v1beta1 Tables -----------------------------------------------------------------------------------
@route(
    "GET",
    rf"{LOC}/datasets/{SEG}/tableSpecs(/.*)?",
    ("v1beta1",),
    rpc="GetTableSpec",
    permission="automl.tableSpecs.get",
)
@route(
    "PATCH",
    rf"{LOC}/datasets/{SEG}/tableSpecs(/.*)?",
    ("v1beta1",),
    rpc="UpdateTableSpec",
    permission="automl.tableSpecs.update",
)
def tables(c: Call) -> Any:
    raise Unimplemented("AutoML Tables (table and column specs) is not supported by Automill")


# -- operations ---------------------------------------------------------------------------------------
@route("GET", rf"{LOC}/operations", collection=True, rpc="ListOperations", permission="automl.operations.list")
def list_operations(c: Call) -> Any:
    items, token = c.sv.operations.list(
        c.name, c.query.get("filter", ""), c.q_int("pageSize"), c.query.get("pageToken", "")
    )
    return listing([op(c, v) for v in items], "operations", token)


@route("GET", rf"{LOC}/operations/{SEG}", rpc="GetOperation", permission="automl.operations.get")
def get_operation(c: Call) -> Any:
    return op(c, c.sv.operations.get(c.name))


@route("POST", rf"{LOC}/operations/{SEG}:cancel", rpc="CancelOperation", permission="automl.operations.cancel")
def cancel_operation(c: Call) -> Any:
    c.sv.operations.cancel(c.name)
    return {}


@route("DELETE", rf"{LOC}/operations/{SEG}", rpc="DeleteOperation", permission="automl.operations.delete")
def delete_operation(c: Call) -> Any:
    c.sv.operations.delete(c.name)
    return {}


#: :wait calls being held now (all on the event loop's thread, so a plain counter is safe).
_waiting = 0
WAIT_POLL_SECONDS = 0.25
MAX_WAIT_SECONDS = 60.0


def wait_timeout(body: dict[str, Any]) -> float:
    """``timeout`` of a WaitOperationRequest (a Duration: "30s", "1.5s"; default 30 s, at most 60 s)."""
    raw = body.get("timeout", "") or "30s"
    text = str(raw).strip()
    try:
        seconds = float(text[:-1] if text.endswith("s") else text)
    except ValueError:
        seconds = float("nan")
    if not math.isfinite(seconds) or seconds < 0 or len(text) > 32:
        raise InvalidArgument(f"timeout {text[:40]!r} must be a duration like '30s'", field="timeout")
    return min(seconds, MAX_WAIT_SECONDS)


@route("POST", rf"{LOC}/operations/{SEG}:wait", rpc="WaitOperation", permission="automl.operations.get")
async def wait_operation(c: Call) -> Any:
    """Hold the call until the operation is done or the timeout passes, without holding a thread:
    each poll borrows one for a database read, and the wait between polls is a timer."""
    global _waiting
    timeout = wait_timeout(c.body)
    view = await run_in_threadpool(c.sv.operations.get, c.name)
    if view.done or timeout <= 0:
        return op(c, view)
    if _waiting >= c.sv.settings.max_concurrent_waits:
        busy = ResourceExhausted(
            f"too many :wait calls are being held ({c.sv.settings.max_concurrent_waits}); "
            "retry in a second or poll GetOperation"
        )
        busy.retry_after = 1
        raise busy
    _waiting += 1
    try:
        end = time.monotonic() + timeout
        while not view.done and time.monotonic() < end:
            await asyncio.sleep(min(WAIT_POLL_SECONDS, max(0.0, end - time.monotonic())))
            view = await run_in_threadpool(c.sv.operations.get, c.name)
    finally:
        _waiting -= 1
    return op(c, view)


def resolve(method: str, version: str, path: str) -> tuple[Route, str]:
    """-> (route, resource name) or NotFound."""
    known = False
    for r in ROUTES:
        if r.pattern.match(path):
            known = True
            if r.method == method and version in r.versions:
                name = path.split(":", 1)[0] if ":" in path.rsplit("/", 1)[-1] else path
                return r, name.rsplit("/", 1)[0] if r.collection else name
    if known:
        raise NotFound(f"{method} is not supported on /{version}/{path}")
    raise NotFound(f"no such resource or method: /{version}/{path}")


def project_of(name: str) -> str:
    """``projects/P/...`` -> P (every route's name starts so)."""
    parts = name.split("/", 2)
    return parts[1] if len(parts) > 1 and parts[0] == "projects" else ""
