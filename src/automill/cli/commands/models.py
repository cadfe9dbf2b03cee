"""``automill models ...``."""

from __future__ import annotations

from typing import Any

import typer

from automill.cli.commands.datasets import problem
from automill.cli.commands.operations import operation_view
from automill.cli.common import ASYNC, FILTER, LIMIT, PAGE_SIZE, QUIET, Ctx, command, confirm_delete, pairs, strip_type
from automill.cli.errors import CliError
from automill.cli.output import Col, console, kv, short, table, when
from automill.cli.progress import wait

models = typer.Typer(
    help="Models: get, list, create (train), update, delete, deploy, undeploy, export, batch-predict.",
    no_args_is_help=True,
)

#: 1000 milli node hours = one worker for one hour
SECONDS_PER_MILLI_NODE_HOUR = 3.6


def meta(m: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in m.items() if k.endswith("ModelMetadata") and isinstance(v, dict)), {})


def model_view(m: dict[str, Any]) -> Any:
    md = meta(m)
    labels = ", ".join(f"{k}={v}" for k, v in m.get("labels", {}).items())
    return kv(
        [
            ("id", short(m.get("name", ""))),
            ("display name", m.get("displayName", "")),
            ("dataset", m.get("datasetId", "")),
            ("type", problem(m, "ModelMetadata")),
            ("model type", md.get("modelType", "")),
            ("state", m.get("deploymentState", "")),
            ("budget", md.get("trainBudgetMilliNodeHours", "")),
            ("cost", md.get("trainCostMilliNodeHours", "")),
            ("stop reason", md.get("stopReason", "")),
            ("node count", md.get("nodeCount", "")),
            ("labels", labels),
            ("created", when(m.get("createTime", ""))),
            ("updated", when(m.get("updateTime", ""))),
            ("location", m.get("name", "").split("/models/")[0]),
        ]
    )


def models_table(items: list[dict[str, Any]]) -> Any:
    cols = [Col("ID", ident=True), Col("DISPLAY NAME"), Col("DATASET", ident=True), Col("STATE")]
    rows = [
        [short(m["name"]), m.get("displayName", ""), m.get("datasetId", ""), m.get("deploymentState", "")]
        for m in items
    ]
    if console.width >= 120:  # room for more than the two whole IDs
        cols += [Col("MODEL TYPE"), Col("BUDGET", justify="right"), Col("COST", justify="right"), Col("STOP REASON")]
        for r, m in zip(rows, items, strict=True):
            md = meta(m)
            r += [
                md.get("modelType", ""),
                md.get("trainBudgetMilliNodeHours", ""),
                md.get("trainCostMilliNodeHours", ""),
                md.get("stopReason", ""),
            ]
    return table(cols, rows)


def _async(c: Ctx, op: dict[str, Any]) -> None:
    c.emit(op, lambda: operation_view(op))


@command(models, "get")
def models_get(c: Ctx, model: str = typer.Argument(..., help="Model ID or full name.")) -> None:
    """Show one model (type, state, budget and cost).

    Example: automill models get TCN1000000000000000002
    """
    m = c.api.call("GET", c.name("models", model))
    c.emit(m, lambda: model_view(m))


@command(models, "list")
def models_list(c: Ctx, filter: str = FILTER, page_size: int = PAGE_SIZE, limit: int = LIMIT) -> None:
    """List the models of the location.

    Example: automill models list --filter dataset_id=TCN1000000000000000001
    """
    data = c.api.list_all(f"{c.parent}/models", "model", {"filter": filter, "pageSize": page_size or None}, limit)
    c.emit(data, lambda: models_table(data.get("model", [])))


@command(models, "create")
def models_create(
    c: Ctx,
    display_name: str = typer.Argument(..., help="1-32 characters: letters, digits, _."),
    dataset_arg: str | None = typer.Argument(None, hidden=True, metavar="DATASET"),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset ID or full name to train on."),
    budget: int = typer.Option(
        0, "--budget", help="Training budget in milli node hours (1000 = one worker-hour); 0 = server default."
    ),
    old_budget: int = typer.Option(0, "--train-budget-milli-node-hours", hidden=True),
    model_type: str = typer.Option(
        "",
        "--model-type",
        help="mobile-low-latency-1 | mobile-versatile-1 | mobile-high-accuracy-1 | cloud (see docs/formats.md).",
    ),
    base_model: str = typer.Option("", "--base-model", help="Resume training from this model (same type and labels)."),
    async_: bool = ASYNC,
) -> None:
    """Train a model on a dataset; waits with a progress bar and prints the model.

    Example: automill models create news_model --dataset TCN1000000000000000001 --budget 50
    """
    ds_value = dataset or dataset_arg  # the positional DATASET and the long budget flag: the CLI's first syntax
    budget = budget or old_budget
    if not ds_value:
        raise CliError("INVALID_ARGUMENT", "give the dataset to train on: --dataset ID")
    ds_name = c.name("datasets", ds_value)
    ds = c.api.call("GET", ds_name)
    key = next((k for k in ds if k.endswith("DatasetMetadata")), None)
    if key is None:
        raise CliError("FAILED_PRECONDITION", f"dataset {short(ds_name)} has no problem type the CLI knows")
    md: dict[str, Any] = {}
    if budget:
        md["trainBudgetMilliNodeHours"] = str(budget)
    if model_type:
        md["modelType"] = model_type
    if base_model:
        md["baseModelId"] = short(base_model)
    body = {
        "displayName": display_name,
        "datasetId": short(ds_name),
        key.replace("DatasetMetadata", "ModelMetadata"): md,
    }
    op = c.api.call("POST", f"{ds_name.split('/datasets/')[0]}/models", body)
    if async_:
        _async(c, op)
        return
    op = wait(c, op, budget_seconds=budget * SECONDS_PER_MILLI_NODE_HOUR if budget else None)
    m = strip_type(op.get("response", {}))
    # The table shows what GetModel adds (cost, stop reason of text models); json is the response itself.
    c.emit(m, lambda: model_view(c.api.call("GET", m["name"]) if m.get("name") else m))


@command(models, "update")
def models_update(
    c: Ctx,
    model: str = typer.Argument(..., help="Model ID or full name."),
    display_name: str | None = typer.Option(None, help="New display name."),
    label: list[str] | None = typer.Option(
        None, "--label", help="Replace the labels with these KEY=VALUE (repeatable)."
    ),
    clear_labels: bool = typer.Option(False, help="Remove every resource label."),
) -> None:
    """Change a model's display name or labels.

    Example: automill models update TCN1000000000000000002 --display-name news_v2
    """
    body: dict[str, Any] = {}
    if display_name is not None:
        body["displayName"] = display_name
    if label or clear_labels:
        body["labels"] = pairs(label, "--label")
    if not body:
        raise CliError("INVALID_ARGUMENT", "nothing to update: give --display-name or --label")
    m = c.api.call("PATCH", c.name("models", model), body, params={"updateMask": ",".join(body)})
    c.emit(m, lambda: model_view(m))


@command(models, "delete")
def models_delete(c: Ctx, model: str = typer.Argument(..., help="Model ID or full name."), quiet: bool = QUIET) -> None:
    """Delete a model, its evaluations and its files (even while deployed).

    Example: automill models delete TCN1000000000000000002 --quiet
    """
    name = c.name("models", model)
    confirm_delete(f"model {short(name)}", quiet)
    op = wait(c, c.api.call("DELETE", name))
    c.emit(op, lambda: f"deleted model {short(name)}")


@command(models, "deploy")
def models_deploy(
    c: Ctx,
    model: str = typer.Argument(..., help="Model ID or full name."),
    node_count: int = typer.Option(0, help="Image models: nodes to record (1-100); 0 = keep the default."),
    async_: bool = ASYNC,
) -> None:
    """Deploy a model for online prediction; waits with a progress bar.

    Example: automill models deploy TCN1000000000000000002
    """
    name = c.name("models", model)
    body: dict[str, Any] = {}
    if node_count:
        m = c.api.call("GET", name)
        if "imageObjectDetectionModelMetadata" in m:
            body["imageObjectDetectionModelDeploymentMetadata"] = {"nodeCount": str(node_count)}
        elif "imageClassificationModelMetadata" in m:
            body["imageClassificationModelDeploymentMetadata"] = {"nodeCount": str(node_count)}
        else:
            raise CliError("INVALID_ARGUMENT", "--node-count applies to image models only")
    op = c.api.call("POST", f"{name}:deploy", body)
    if async_:
        _async(c, op)
        return
    op = wait(c, op)
    c.emit(op, lambda: f"deployed model {short(name)}")


@command(models, "undeploy")
def models_undeploy(c: Ctx, model: str = typer.Argument(..., help="Model ID or full name.")) -> None:
    """Undeploy a model (online prediction stops; batch prediction still works).

    Example: automill models undeploy TCN1000000000000000002
    """
    name = c.name("models", model)
    op = wait(c, c.api.call("POST", f"{name}:undeploy", {}))
    c.emit(op, lambda: f"undeployed model {short(name)}")


@command(models, "export")
def models_export(
    c: Ctx,
    model: str = typer.Argument(..., help="Model ID or full name."),
    output_uri_prefix: str = typer.Argument(..., help="gs://bucket/prefix to write the package under."),
    model_format: str = typer.Option(
        "",
        "--format",
        help="docker (any model: a folder served by `automill "
        "serve-model` or a Dockerfile) | tflite | onnx (image models); "
        "empty = tflite for image models, docker for text models.",
    ),
    quantization: str = typer.Option("", help="float32 | int8_weights (tflite); empty = the model type's default."),
    async_: bool = ASYNC,
) -> None:
    """Export a model: docker (any model; serve it with `automill serve-model FOLDER` or its Dockerfile) or,
    for image models, TF Lite / ONNX + labels + metadata; waits with a progress bar.

    Example: automill models export TCN1000000000000000002 gs://my-bucket/exports --format docker
    """
    name = c.name("models", model)
    cfg: dict[str, Any] = {"modelFormat": model_format, "gcsDestination": {"outputUriPrefix": output_uri_prefix}}
    if quantization:
        cfg["params"] = {"quantization": quantization}
    op = c.api.call("POST", f"{name}:export", {"outputConfig": cfg})
    if async_:
        _async(c, op)
        return
    op = wait(c, op)
    where = op.get("metadata", {}).get("exportModelDetails", {}).get("outputInfo", {}).get("gcsOutputDirectory", "")
    c.emit(op, lambda: f"exported model {short(name)} to {where}")


@command(models, "batch-predict", output_names=("--output-format", "-o"))
def models_batch_predict(
    c: Ctx,
    model: str = typer.Argument(..., help="Model ID or full name."),
    input_uri: list[str] = typer.Option(..., "--input", help="gs:// CSV (or JSONL) naming the items (repeatable)."),
    output_uri_prefix: str = typer.Option(..., "--output", help="gs://bucket/prefix to write the results under."),
    param: list[str] | None = typer.Option(
        None, "--param", help="A prediction parameter KEY=VALUE, e.g. score_threshold=0.5 (repeatable)."
    ),
    async_: bool = ASYNC,
) -> None:
    """Predict a batch of items from a bucket into JSONL files (the model need not be deployed).

    Example: automill models batch-predict TCN1000000000000000002 --input gs://bkt/items.csv --output gs://bkt/out
    """
    name = c.name("models", model)
    body: dict[str, Any] = {
        "inputConfig": {"gcsSource": {"inputUris": input_uri}},
        "outputConfig": {"gcsDestination": {"outputUriPrefix": output_uri_prefix}},
    }
    if param:
        body["params"] = pairs(param, "--param")
    op = c.api.call("POST", f"{name}:batchPredict", body)
    if async_:
        _async(c, op)
        return
    op = wait(c, op)
    where = op.get("metadata", {}).get("batchPredictDetails", {}).get("outputInfo", {}).get("gcsOutputDirectory", "")
    c.emit(op, lambda: f"predictions of model {short(name)} written to {where}")
