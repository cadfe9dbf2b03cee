"""``automill datasets ...`` and ``automill annotation-specs ...``."""

from __future__ import annotations

from typing import Any

import typer

from automill.cli.common import ASYNC, FILTER, LIMIT, PAGE_SIZE, QUIET, Ctx, command, confirm_delete, pairs, strip_type
from automill.cli.output import Col, kv, short, table, when
from automill.cli.progress import wait

datasets = typer.Typer(help="Datasets: get, list, create, update, delete, import, export.", no_args_is_help=True)
annotation_specs = typer.Typer(help="Annotation specs (the labels of a dataset): get, list.", no_args_is_help=True)

#: metadata key prefix -> words
TYPES = {
    "textClassification": "text classification",
    "textSentiment": "text sentiment",
    "textExtraction": "text extraction",
    "imageClassification": "image classification",
    "imageObjectDetection": "image object detection",
    "translation": "translation",
}


def problem(resource: dict[str, Any], suffix: str) -> str:
    """A Dataset's / Model's problem type in words, e.g. ``text classification (MULTICLASS)``."""
    for key, meta in resource.items():
        if key.endswith(suffix):
            words = TYPES.get(key[: -len(suffix)], key[: -len(suffix)])
            if isinstance(meta, dict) and meta.get("classificationType"):
                words += f" ({meta['classificationType']})"
            if isinstance(meta, dict) and meta.get("sentimentMax"):
                words += f" (0..{meta['sentimentMax']})"
            return words
    return ""


def dataset_view(d: dict[str, Any]) -> Any:
    labels = ", ".join(f"{k}={v}" for k, v in d.get("labels", {}).items())
    return kv(
        [
            ("id", short(d.get("name", ""))),
            ("display name", d.get("displayName", "")),
            ("type", problem(d, "DatasetMetadata")),
            ("examples", d.get("exampleCount", 0)),
            ("description", d.get("description", "")),
            ("labels", labels),
            ("created", when(d.get("createTime", ""))),
            ("location", d.get("name", "").split("/datasets/")[0]),
        ]
    )


def datasets_table(items: list[dict[str, Any]]) -> Any:
    return table(
        [Col("ID", ident=True), Col("DISPLAY NAME"), Col("TYPE"), Col("EXAMPLES", justify="right"), Col("CREATED")],
        [
            (
                short(d["name"]),
                d.get("displayName", ""),
                problem(d, "DatasetMetadata"),
                d.get("exampleCount", 0),
                when(d.get("createTime", "")),
            )
            for d in items
        ],
    )


@command(datasets, "get")
def datasets_get(c: Ctx, dataset: str = typer.Argument(..., help="Dataset ID or full name.")) -> None:
    """Show one dataset.

    Example: automill datasets get TCN1000000000000000001
    """
    d = c.api.call("GET", c.name("datasets", dataset))
    c.emit(d, lambda: dataset_view(d))


@command(datasets, "list")
def datasets_list(c: Ctx, filter: str = FILTER, page_size: int = PAGE_SIZE, limit: int = LIMIT) -> None:
    """List the datasets of the location.

    Example: automill datasets list --filter "display_name=news"
    """
    data = c.api.list_all(f"{c.parent}/datasets", "datasets", {"filter": filter, "pageSize": page_size or None}, limit)
    c.emit(data, lambda: datasets_table(data.get("datasets", [])))


@command(datasets, "create")
def datasets_create(
    c: Ctx,
    display_name: str = typer.Argument(..., help="1-32 characters: letters, digits, _."),
    multilabel: bool = typer.Option(False, help="MULTILABEL instead of MULTICLASS (classification)."),
    sentiment_max: int = typer.Option(0, help="A text sentiment dataset with values 0..N."),
    images: bool = typer.Option(False, help="An image classification dataset."),
    entities: bool = typer.Option(False, help="A text entity extraction dataset."),
    objects: bool = typer.Option(False, help="An image object detection dataset."),
    description: str = typer.Option("", help="A description."),
    label: list[str] | None = typer.Option(None, "--label", help="A resource label KEY=VALUE (repeatable)."),
    async_: bool = ASYNC,
) -> None:
    """Create a dataset (text classification unless a type flag says otherwise).

    Example: automill datasets create news_topics --multilabel
    """
    body: dict[str, Any] = {"displayName": display_name}
    if entities:
        body["textExtractionDatasetMetadata"] = {}
    elif objects:
        body["imageObjectDetectionDatasetMetadata"] = {}
    elif images:
        body["imageClassificationDatasetMetadata"] = {
            "classificationType": "MULTILABEL" if multilabel else "MULTICLASS"
        }
    elif sentiment_max:
        body["textSentimentDatasetMetadata"] = {"sentimentMax": sentiment_max}
    else:
        body["textClassificationDatasetMetadata"] = {"classificationType": "MULTILABEL" if multilabel else "MULTICLASS"}
    if description:
        body["description"] = description
    if label:
        body["labels"] = pairs(label, "--label")
    op = c.api.call("POST", f"{c.parent}/datasets", body)
    if async_:
        from automill.cli.commands.operations import operation_view

        c.emit(op, lambda: operation_view(op))
        return
    d = strip_type(wait(c, op).get("response", {}))
    c.emit(d, lambda: dataset_view(d))


@command(datasets, "update")
def datasets_update(
    c: Ctx,
    dataset: str = typer.Argument(..., help="Dataset ID or full name."),
    display_name: str | None = typer.Option(None, help="New display name."),
    description: str | None = typer.Option(None, help="New description."),
    label: list[str] | None = typer.Option(
        None, "--label", help="Replace the labels with these KEY=VALUE (repeatable)."
    ),
    clear_labels: bool = typer.Option(False, help="Remove every resource label."),
) -> None:
    """Change a dataset's display name, description or labels.

    Example: automill datasets update TCN1000000000000000001 --display-name news_v2
    """
    body: dict[str, Any] = {}
    if display_name is not None:
        body["displayName"] = display_name
    if description is not None:
        body["description"] = description
    if label or clear_labels:
        body["labels"] = pairs(label, "--label")
    if not body:
        from automill.cli.errors import CliError

        raise CliError("INVALID_ARGUMENT", "nothing to update: give --display-name, --description or --label")
    d = c.api.call("PATCH", c.name("datasets", dataset), body, params={"updateMask": ",".join(body)})
    c.emit(d, lambda: dataset_view(d))


@command(datasets, "delete")
def datasets_delete(
    c: Ctx, dataset: str = typer.Argument(..., help="Dataset ID or full name."), quiet: bool = QUIET
) -> None:
    """Delete a dataset and its examples (models trained from it are kept).

    Example: automill datasets delete TCN1000000000000000001 --quiet
    """
    name = c.name("datasets", dataset)
    confirm_delete(f"dataset {short(name)}", quiet)
    op = wait(c, c.api.call("DELETE", name))
    c.emit(op, lambda: f"deleted dataset {short(name)}")


@command(datasets, "import")
def datasets_import(
    c: Ctx,
    dataset: str = typer.Argument(..., help="Dataset ID or full name."),
    uri: list[str] = typer.Argument(..., help="gs:// CSV files to import (wildcards allowed)."),
    async_: bool = ASYNC,
) -> None:
    """Import examples from CSV files in a bucket; waits and shows progress.

    Example: automill datasets import TCN1000000000000000001 gs://my-bucket/train.csv
    """
    name = c.name("datasets", dataset)
    op = c.api.call("POST", f"{name}:importData", {"inputConfig": {"gcsSource": {"inputUris": uri}}})
    if async_:
        from automill.cli.commands.operations import operation_view

        c.emit(op, lambda: operation_view(op))
        return
    op = wait(c, op)

    def view() -> list[Any]:
        d = c.api.call("GET", name)
        failures = op.get("metadata", {}).get("partialFailures", [])
        out: list[Any] = [f"imported into {short(name)}: {d.get('exampleCount', 0)} examples in the dataset"]
        if failures:
            out.append(table([Col("ROWS THAT FAILED")], [(f.get("message", ""),) for f in failures]))
        return out

    c.emit(op, view)


@command(datasets, "export")
def datasets_export(
    c: Ctx,
    dataset: str = typer.Argument(..., help="Dataset ID or full name."),
    output_uri_prefix: str = typer.Argument(..., help="gs://bucket/prefix to write the export under."),
    async_: bool = ASYNC,
) -> None:
    """Export a dataset's examples as CSV (+ files) in the import format; waits and shows progress.

    Example: automill datasets export TCN1000000000000000001 gs://my-bucket/exports
    """
    name = c.name("datasets", dataset)
    op = c.api.call(
        "POST", f"{name}:exportData", {"outputConfig": {"gcsDestination": {"outputUriPrefix": output_uri_prefix}}}
    )
    if async_:
        from automill.cli.commands.operations import operation_view

        c.emit(op, lambda: operation_view(op))
        return
    op = wait(c, op)
    where = op.get("metadata", {}).get("exportDataDetails", {}).get("outputInfo", {}).get("gcsOutputDirectory", "")
    c.emit(op, lambda: f"exported {short(name)} to {where}")


# -- annotation specs ---------------------------------------------------------------------------------
def spec_table(items: list[dict[str, Any]]) -> Any:
    return table(
        [Col("ID", ident=True), Col("DISPLAY NAME"), Col("EXAMPLES", justify="right")],
        [(short(s["name"]), s.get("displayName", ""), s.get("exampleCount", 0)) for s in items],
    )


@command(annotation_specs, "list")
def specs_list(c: Ctx, dataset: str = typer.Argument(..., help="Dataset ID or full name.")) -> None:
    """List a dataset's labels with their example counts (an Automill extension).

    Example: automill annotation-specs list TCN1000000000000000001
    """
    data = c.api.call("GET", f"{c.name('datasets', dataset)}/annotationSpecs")
    c.emit(data, lambda: spec_table(data.get("annotationSpecs", [])))


@command(annotation_specs, "get")
def specs_get(
    c: Ctx,
    dataset: str = typer.Argument(..., help="Dataset ID or name (or the spec's full name alone)."),
    spec: str | None = typer.Argument(None, help="Annotation spec ID."),
) -> None:
    """Show one label of a dataset.

    Example: automill annotation-specs get TCN1000000000000000001 1234567890
    """
    s = c.api.call("GET", c.child("datasets", dataset, "annotationSpecs", spec))
    c.emit(
        s,
        lambda: kv(
            [
                ("id", short(s.get("name", ""))),
                ("display name", s.get("displayName", "")),
                ("examples", s.get("exampleCount", 0)),
                ("dataset", s.get("name", "").split("/datasets/")[-1].split("/")[0]),
            ]
        ),
    )
