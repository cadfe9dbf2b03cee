"""CLI commands that talk to a running server over the same REST API as any client."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any, Optional

import requests
import typer
from rich.console import Console
from rich.table import Table

console = Console()
datasets = typer.Typer(help="Datasets: list, create, import.", no_args_is_help=True)
models = typer.Typer(help="Models: list, create (train), deploy, undeploy.", no_args_is_help=True)
operations = typer.Typer(help="Long-running operations: list, get, cancel.", no_args_is_help=True)

ENDPOINT = typer.Option(os.environ.get("AUTOMILL_ENDPOINT", "http://127.0.0.1:8080"), "--endpoint",
                        help="Server URL (env AUTOMILL_ENDPOINT).")
PARENT = typer.Option("projects/local/locations/us-central1", "--parent", help="projects/P/locations/L")


def _call(method: str, endpoint: str, path: str, body: Optional[dict[str, Any]] = None,
          params: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    resp = requests.request(method, f"{endpoint.rstrip('/')}/v1/{path}", json=body, params=params, timeout=60)
    data = resp.json() if resp.content else {}
    if resp.status_code >= 400:
        err = data.get("error", {})
        console.print(f"[red]error {resp.status_code} {err.get('status', '')}[/red]: {err.get('message', resp.text)}")
        raise typer.Exit(1)
    return data


def _print(data: Any) -> None:
    console.print_json(json.dumps(data))


@datasets.command("list")
def datasets_list(endpoint: str = ENDPOINT, parent: str = PARENT, filter: str = "") -> None:
    data = _call("GET", endpoint, f"{parent}/datasets", params={"filter": filter} if filter else None)
    table = Table("name", "display name", "examples", "created")
    for d in data.get("datasets", []):
        table.add_row(d["name"].rsplit("/", 1)[-1], d["displayName"], str(d.get("exampleCount", 0)), d["createTime"])
    console.print(table)


@datasets.command("create")
def datasets_create(display_name: str, endpoint: str = ENDPOINT, parent: str = PARENT,
                    multilabel: bool = typer.Option(False, help="MULTILABEL instead of MULTICLASS."),
                    sentiment_max: int = typer.Option(0, help="Create a text sentiment dataset with values 0..N."),
                    images: bool = typer.Option(False, help="An image classification dataset."),
                    entities: bool = typer.Option(False, help="A text entity extraction dataset."),
                    objects: bool = typer.Option(False, help="An image object detection dataset.")) -> None:
    body: dict[str, Any] = {"displayName": display_name}
    if entities:
        body["textExtractionDatasetMetadata"] = {}
    elif objects:
        body["imageObjectDetectionDatasetMetadata"] = {}
    elif images:
        body["imageClassificationDatasetMetadata"] = {"classificationType": "MULTILABEL" if multilabel else "MULTICLASS"}
    elif sentiment_max:
        body["textSentimentDatasetMetadata"] = {"sentimentMax": sentiment_max}
    else:
        body["textClassificationDatasetMetadata"] = {"classificationType": "MULTILABEL" if multilabel else "MULTICLASS"}
    _print(_call("POST", endpoint, f"{parent}/datasets", body))


@datasets.command("import")
def datasets_import(dataset: str, uri: list[str], endpoint: str = ENDPOINT, parent: str = PARENT,
                    wait: bool = True) -> None:
    op = _call("POST", endpoint, f"{parent}/datasets/{dataset}:importData",
               {"inputConfig": {"gcsSource": {"inputUris": uri}}})
    _print(_wait(endpoint, op) if wait else op)


@models.command("list")
def models_list(endpoint: str = ENDPOINT, parent: str = PARENT) -> None:
    data = _call("GET", endpoint, f"{parent}/models")
    table = Table("name", "display name", "dataset", "state", "budget", "cost", "stop reason")
    for m in data.get("model", []):
        meta = next((v for k, v in m.items() if k.endswith("ModelMetadata")), {})
        table.add_row(m["name"].rsplit("/", 1)[-1], m["displayName"], m.get("datasetId", ""),
                      m.get("deploymentState", ""), str(meta.get("trainBudgetMilliNodeHours", "")),
                      str(meta.get("trainCostMilliNodeHours", "")), meta.get("stopReason", ""))
    console.print(table)


@models.command("create")
def models_create(display_name: str, dataset: str, endpoint: str = ENDPOINT, parent: str = PARENT,
                  train_budget_milli_node_hours: int = typer.Option(0, help="Training budget; 0 = server default."),
                  model_type: str = typer.Option("", help="mobile-low-latency-1 | mobile-versatile-1 (text default) | "
                                                          "mobile-high-accuracy-1 | cloud (image default)"),
                  base_model_id: str = typer.Option("", help="Resume from this model (same type and labels)."),
                  wait: bool = True) -> None:
    meta: dict[str, Any] = {}
    if train_budget_milli_node_hours:
        meta["trainBudgetMilliNodeHours"] = str(train_budget_milli_node_hours)
    if model_type:
        meta["modelType"] = model_type
    if base_model_id:
        meta["baseModelId"] = base_model_id
    ds = _call("GET", endpoint, f"{parent}/datasets/{dataset}")
    key = next(k for k in ds if k.endswith("DatasetMetadata")).replace("DatasetMetadata", "ModelMetadata")
    op = _call("POST", endpoint, f"{parent}/models", {"displayName": display_name, "datasetId": dataset, key: meta})
    _print(_wait(endpoint, op) if wait else op)


@models.command("deploy")
def models_deploy(model: str, endpoint: str = ENDPOINT, parent: str = PARENT, wait: bool = True) -> None:
    op = _call("POST", endpoint, f"{parent}/models/{model}:deploy", {})
    _print(_wait(endpoint, op) if wait else op)


@models.command("export")
def models_export(model: str, output_uri_prefix: str, endpoint: str = ENDPOINT, parent: str = PARENT,
                  model_format: str = typer.Option("tflite", help="tflite | onnx"),
                  quantization: str = typer.Option("", help="float32 | int8_weights (tflite); empty = the type's default"),
                  wait: bool = True) -> None:
    """Export an image model (model.tflite or model.onnx, dict.txt, metadata with a parity report)."""
    config: dict[str, Any] = {"modelFormat": model_format, "gcsDestination": {"outputUriPrefix": output_uri_prefix}}
    if quantization:
        config["params"] = {"quantization": quantization}
    op = _call("POST", endpoint, f"{parent}/models/{model}:export", {"outputConfig": config})
    _print(_wait(endpoint, op) if wait else op)


@models.command("undeploy")
def models_undeploy(model: str, endpoint: str = ENDPOINT, parent: str = PARENT) -> None:
    _print(_call("POST", endpoint, f"{parent}/models/{model}:undeploy", {}))


@operations.command("list")
def operations_list(endpoint: str = ENDPOINT, parent: str = PARENT, filter: str = "") -> None:
    data = _call("GET", endpoint, f"{parent}/operations", params={"filter": filter} if filter else None)
    table = Table("operation", "kind", "done", "progress", "error")
    for o in data.get("operations", []):
        kind = next((k for k in o["metadata"] if k.endswith("Details")), "")
        table.add_row(o["name"].rsplit("/", 1)[-1], kind, str(o.get("done", False)),
                      str(o["metadata"].get("progressPercent", 0)), o.get("error", {}).get("message", ""))
    console.print(table)


@operations.command("get")
def operations_get(operation: str, endpoint: str = ENDPOINT, parent: str = PARENT) -> None:
    _print(_call("GET", endpoint, f"{parent}/operations/{operation}"))


@operations.command("cancel")
def operations_cancel(operation: str, endpoint: str = ENDPOINT, parent: str = PARENT) -> None:
    _call("POST", endpoint, f"{parent}/operations/{operation}:cancel")
    console.print("cancel requested")


def predict(model: str, text: str = typer.Argument("", help="The text (text models)."), endpoint: str = ENDPOINT,
            parent: str = PARENT, score_threshold: Optional[float] = None,
            image: Optional[Path] = typer.Option(None, help="An image file (image models).")) -> None:
    """Online prediction for one text snippet or one image."""
    if image is not None:
        payload: dict[str, Any] = {"image": {"imageBytes": base64.b64encode(image.read_bytes()).decode()}}
    else:
        payload = {"textSnippet": {"content": text, "mimeType": "text/plain"}}
    body: dict[str, Any] = {"payload": payload}
    if score_threshold is not None:
        body["params"] = {"score_threshold": str(score_threshold)}
    _print(_call("POST", endpoint, f"{parent}/models/{model}:predict", body))


def _wait(endpoint: str, op: dict[str, Any]) -> dict[str, Any]:
    name = op["name"]
    with console.status(f"waiting for {name.rsplit('/', 1)[-1]}") as status:
        while not op.get("done"):
            time.sleep(1)
            op = _call("GET", endpoint, name)
            status.update(f"{name.rsplit('/', 1)[-1]}: {op['metadata'].get('progressPercent', 0)}%")
    return op
