"""``automill evaluations ...``: per-label metrics and the confusion matrix, drawn in the terminal."""

from __future__ import annotations

from typing import Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from automill.cli.common import FILTER, Ctx, command
from automill.cli.output import Col, kv, num, short, table, when

evaluations = typer.Typer(
    help="Model evaluations: list (per-label table + confusion matrix), get.", no_args_is_help=True
)

#: the largest confusion matrix drawn (more labels: see -o json)
MAX_MATRIX_LABELS = 20


def _at(entries: list[dict[str, Any]], threshold: float = 0.5) -> dict[str, Any]:
    """The confidence entry nearest ``threshold`` (proto3 JSON leaves 0 out)."""
    if not entries:
        return {}
    return min(entries, key=lambda e: abs(float(e.get("confidenceThreshold", 0) or 0) - threshold))


def metrics(ev: dict[str, Any]) -> dict[str, str]:
    """The headline numbers of one evaluation, by problem type (ordered)."""
    if "classificationEvaluationMetrics" in ev:
        m = ev["classificationEvaluationMetrics"]
        e = _at(m.get("confidenceMetricsEntry", []))
        return {
            "precision": num(e.get("precision", 0)),
            "recall": num(e.get("recall", 0)),
            "F1": num(e.get("f1Score", 0)),
            "auPRC": num(m.get("auPrc", 0)),
        }
    if "textSentimentEvaluationMetrics" in ev:
        m = ev["textSentimentEvaluationMetrics"]
        out = {
            "precision": num(m.get("precision", 0)),
            "recall": num(m.get("recall", 0)),
            "F1": num(m.get("f1Score", 0)),
        }
        if "confusionMatrix" in m or "meanAbsoluteError" in m:
            out.update(
                {
                    "MAE": num(m.get("meanAbsoluteError", 0)),
                    "MSE": num(m.get("meanSquaredError", 0)),
                    "linear kappa": num(m.get("linearKappa", 0)),
                    "quadratic kappa": num(m.get("quadraticKappa", 0)),
                }
            )
        return out
    if "textExtractionEvaluationMetrics" in ev:
        m = ev["textExtractionEvaluationMetrics"]
        e = _at(m.get("confidenceMetricsEntries", []))
        return {
            "precision": num(e.get("precision", 0)),
            "recall": num(e.get("recall", 0)),
            "F1": num(e.get("f1Score", 0)),
            "auPRC": num(m.get("auPrc", 0)),
        }
    if "imageObjectDetectionEvaluationMetrics" in ev:
        m = ev["imageObjectDetectionEvaluationMetrics"]
        at50: dict[str, Any] = next(
            (
                b
                for b in m.get("boundingBoxMetricsEntries", [])
                if abs(float(b.get("iouThreshold", 0) or 0) - 0.5) < 1e-6
            ),
            {},
        )
        e = _at(at50.get("confidenceMetricsEntries", []))
        return {
            "mAP": num(m.get("boundingBoxMeanAveragePrecision", 0)),
            "mAP@0.5": num(at50.get("meanAveragePrecision", 0)),
            "precision@0.5": num(e.get("precision", 0)),
            "recall@0.5": num(e.get("recall", 0)),
            "boxes": str(m.get("evaluatedBoundingBoxCount", 0)),
        }
    return {}


def _matrix(ev: dict[str, Any]) -> dict[str, Any] | None:
    for m in ev.values():
        if isinstance(m, dict) and isinstance(m.get("confusionMatrix"), dict):
            return m["confusionMatrix"]
    return None


def confusion(ev: dict[str, Any]) -> Any:
    cm = _matrix(ev)
    if not cm or not cm.get("row"):
        return None
    labels = cm.get("displayName") or cm.get("annotationSpecId") or []
    if len(labels) > MAX_MATRIX_LABELS:
        return f"(the confusion matrix has {len(labels)} labels; see it with -o json)"
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("true \\ predicted", overflow="fold", style="bold")
    for lab in labels:
        t.add_column(str(lab), justify="right", overflow="fold")
    for i, row in enumerate(cm["row"]):
        counts = [int(v) for v in row.get("exampleCount", [])] + [0] * (len(labels) - len(row.get("exampleCount", [])))
        total = sum(counts) or 1
        cells = []
        for j, v in enumerate(counts):
            style = "green" if i == j else ("red" if v else "dim")
            if v and v / total >= 0.5:
                style = "bold " + style
            cells.append(f"[{style}]{v}[/{style}]")
        t.add_row(str(labels[i]) if i < len(labels) else str(i), *cells)
    return t


def confusion_block(ev: dict[str, Any]) -> list[Any]:
    matrix = confusion(ev)
    if matrix is None:
        return []
    if isinstance(matrix, str):
        return [matrix]
    return [Text("Confusion matrix (rows: true label, columns: predicted)", style="bold"), matrix]


def _label(ev: dict[str, Any]) -> str:
    return ev.get("displayName", "") or ev.get("annotationSpecId", "")


def report(evals: list[dict[str, Any]]) -> list[Any]:
    """Overall numbers, a per-label table and the confusion matrix of one model's evaluations."""
    overall = next((e for e in evals if not e.get("annotationSpecId")), None)
    per_label = [e for e in evals if e.get("annotationSpecId")]
    out: list[Any] = []
    if overall is not None:
        out.append(Text("Overall", style="bold"))
        out.append(
            kv(
                [
                    ("evaluation", short(overall.get("name", ""))),
                    ("model", overall.get("name", "").split("/models/")[-1].split("/")[0]),
                    ("examples", overall.get("evaluatedExampleCount", 0)),
                    ("created", when(overall.get("createTime", ""))),
                    *list(metrics(overall).items()),
                ]
            )
        )
    if per_label:
        names = list(dict.fromkeys(k for e in per_label for k in metrics(e)))
        out.append(Text("Per label (at score threshold 0.5)", style="bold"))
        out.append(
            table(
                [Col("LABEL"), Col("EVALUATION ID", ident=True), Col("EXAMPLES", justify="right")]
                + [Col(n.upper(), justify="right") for n in names],
                [
                    (
                        _label(e),
                        short(e.get("name", "")),
                        e.get("evaluatedExampleCount", 0),
                        *[metrics(e).get(n, "") for n in names],
                    )
                    for e in per_label
                ],
            )
        )
    if overall is not None:
        out += confusion_block(overall)
    if not out:
        out.append("no evaluations")
    return out


def _model_evaluations(c: Ctx, model: str, filter: str = "") -> dict[str, Any]:
    return c.api.list_all(f"{c.name('models', model)}/modelEvaluations", "modelEvaluation", {"filter": filter})


@command(evaluations, "list")
def evaluations_list(
    c: Ctx, model: str = typer.Argument(..., help="Model ID or full name ('-': every model)."), filter: str = FILTER
) -> None:
    """List a model's evaluations: overall metrics, a per-label table and the confusion matrix.

    Example: automill evaluations list TCN1000000000000000002
    """
    data = _model_evaluations(c, model, filter)
    items = data.get("modelEvaluation", [])
    if model.strip() == "-":
        c.emit(
            data,
            lambda: table(
                [
                    Col("EVALUATION ID", ident=True),
                    Col("MODEL", ident=True),
                    Col("LABEL"),
                    Col("EXAMPLES", justify="right"),
                ],
                [
                    (
                        short(e["name"]),
                        e["name"].split("/models/")[-1].split("/")[0],
                        _label(e),
                        e.get("evaluatedExampleCount", 0),
                    )
                    for e in items
                ],
            ),
        )
        return
    c.emit(data, lambda: report(items))


@command(evaluations, "get")
def evaluations_get(
    c: Ctx,
    model: str = typer.Argument(..., help="Model ID or name (or the evaluation's full name alone)."),
    evaluation: str | None = typer.Argument(None, help="Evaluation ID; without it, the model's overall evaluation."),
) -> None:
    """Show one evaluation (its metrics and confusion matrix); without an ID, the overall one.

    Example: automill evaluations get TCN1000000000000000002 1234567890123456789
    """
    if evaluation is None and "/modelEvaluations/" not in model:
        items = _model_evaluations(c, model, "NOT annotation_spec_id:*").get("modelEvaluation", [])
        if not items:
            from automill.cli.errors import CliError

            raise CliError("NOT_FOUND", f"model {short(model)} has no overall evaluation")
        ev = items[0]
    else:
        ev = c.api.call("GET", c.child("models", model, "modelEvaluations", evaluation))

    def view() -> list[Any]:
        out: list[Any] = [
            kv(
                [
                    ("evaluation", short(ev.get("name", ""))),
                    ("model", ev.get("name", "").split("/models/")[-1].split("/")[0]),
                    ("label", _label(ev) or "(overall)"),
                    ("examples", ev.get("evaluatedExampleCount", 0)),
                    ("created", when(ev.get("createTime", ""))),
                    *list(metrics(ev).items()),
                ]
            )
        ]
        return out + confusion_block(ev)

    c.emit(ev, view)
