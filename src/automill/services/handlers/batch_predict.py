"""The BatchPredict job: a CSV of gs:// text files (or inline snippets) -> JSONL predictions + errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from automill.core.errors import AutomillError, InvalidArgument
from automill.jobs.context import JobContext
from automill.jobs.registry import register
from automill.jobs.result import JobResult
from automill.problems.registry import get_problem
from automill.problems.texts import MAX_PREDICT_CHARS
from automill.services.handlers.data import MAX_CSV_BYTES, gcs_timestamp
from automill.services.housekeeping import uses_job_tmp

LINES_PER_FILE = 10_000
BATCH = 256
MAX_FILE_BYTES = 10 * 1024 * 1024


@register("batch_predict")
@uses_job_tmp
def batch_predict(ctx: JobContext) -> JobResult:
    sv = ctx.services
    req = ctx.request
    with sv.db.tx() as s:
        row = sv.models.row(s, req["model"])
        display_name, problem_type, model_dir = row.display_name, row.problem_type, Path(row.artifact_dir)
    problem = get_problem(problem_type)
    ctx.progress(1, stage="loading the model")
    loaded = problem.load(model_dir)
    ctx.progress(2, stage="reading the inputs")
    if getattr(problem, "uses_media", False):
        return _batch_predict_images(ctx, problem, loaded, display_name)
    inputs: list[tuple[dict[str, Any], str | None, AutomillError | None]] = []
    for uri in [u for p in req["input_uris"] for u in (sv.blobs.expand(p) or [p])]:
        text = sv.blobs.read_text(uri, max_bytes=MAX_CSV_BYTES)
        if uri.endswith(".jsonl"):
            inputs.extend(_jsonl_inputs(uri, text))
            continue
        try:
            records = list(csv.reader(io.StringIO(text), strict=True))
        except csv.Error as exc:
            raise InvalidArgument(f"{uri}: cannot parse the CSV: {exc}") from None
        for record in records:
            cell = next((c.strip() for c in record if c.strip()), "")
            if not cell:
                continue
            if cell.startswith("gs://"):
                key = {"textSnippet": {"contentUri": cell}}
                content: str | None
                err: AutomillError | None
                try:
                    content = sv.blobs.read_text(cell, max_bytes=MAX_FILE_BYTES)
                    err = (
                        None
                        if len(content) <= MAX_PREDICT_CHARS
                        else InvalidArgument(
                            f"{cell} has {len(content)} characters, over the limit of {MAX_PREDICT_CHARS}"
                        )
                    )
                except AutomillError as exc:
                    content, err = None, exc
                inputs.append((key, content, err))
            else:
                inputs.append(({"textSnippet": {"content": cell, "mimeType": "text/plain"}}, cell, None))
    if not inputs:
        raise InvalidArgument("the batch prediction input files list no documents")
    out_dir = f"{req['output_uri_prefix'].rstrip('/')}/prediction-{display_name}-{gcs_timestamp()}"
    results: list[str] = []
    errors: list[str] = []
    ok = [(k, c) for k, c, e in inputs if e is None and c is not None]  # content is None only beside an error
    for start in range(0, len(ok), BATCH):
        chunk = ok[start : start + BATCH]
        preds = problem.predict(loaded, [c for _, c in chunk], req.get("params", {}))
        results.extend(json.dumps({**k, "annotations": p}) for (k, _), p in zip(chunk, preds, strict=True))
        done = start + len(chunk)
        ctx.progress(2 + 93.0 * done / len(ok), stage=f"predicting: {done:,} of {len(ok):,} inputs")
    ctx.progress(95, stage="writing the predictions")
    for key, _, err in inputs:
        if err is not None:
            errors.append(json.dumps({**key, "error": {"code": err.code, "message": err.message}}))
    _write_numbered(sv, out_dir, f"{problem.name}", results)
    _write_numbered(sv, out_dir, "errors", errors)
    return JobResult(
        result_type="BatchPredictResult", result={}, details={"outputInfo": {"gcsOutputDirectory": out_dir}}
    )


def _batch_predict_images(ctx: JobContext, problem: Any, loaded: Any, display_name: str) -> JobResult:
    """A CSV with one column of gs:// image paths -> ``{"ID": path, "annotations": [...]}`` lines."""
    from automill.problems.images import MAX_IMAGE_BYTES

    sv, req = ctx.services, ctx.request
    paths: list[str] = []
    for uri in [u for p in req["input_uris"] for u in (sv.blobs.expand(p) or [p])]:
        try:
            records = list(csv.reader(io.StringIO(sv.blobs.read_text(uri, max_bytes=MAX_CSV_BYTES)), strict=True))
        except csv.Error as exc:
            raise InvalidArgument(f"{uri}: cannot parse the CSV: {exc}") from None
        paths.extend(cell for r in records if (cell := next((c.strip() for c in r if c.strip()), "")))
    if not paths:
        raise InvalidArgument("the batch prediction input files list no images")
    out_dir = f"{req['output_uri_prefix'].rstrip('/')}/prediction-{display_name}-{gcs_timestamp()}"
    results: list[str] = []
    errors: list[str] = []
    for start in range(0, len(paths), 32):
        chunk: list[tuple[str, bytes]] = []
        for path in paths[start : start + 32]:
            try:
                if not path.lower().startswith("gs://"):
                    raise InvalidArgument(f"{path!r} is not a gs:// path to an image")
                data = sv.blobs.read_bytes(path, max_bytes=MAX_IMAGE_BYTES)
                problem.check_input(data, path)
                chunk.append((path, data))
            except AutomillError as exc:
                errors.append(json.dumps({"ID": path, "error": {"code": exc.code, "message": exc.message}}))
        if chunk:
            preds = problem.predict(loaded, [d for _, d in chunk], req.get("params", {}))
            results.extend(json.dumps({"ID": p, "annotations": a}) for (p, _), a in zip(chunk, preds, strict=True))
        done = min(len(paths), start + 32)
        ctx.progress(2 + 93.0 * done / len(paths), stage=f"predicting: {done:,} of {len(paths):,} images")
    ctx.progress(95, stage="writing the predictions")
    _write_numbered(sv, out_dir, problem.name, results)
    _write_numbered(sv, out_dir, "errors", errors)
    result: dict[str, Any] = {}
    if problem.name == "image_object_detection":  # BatchPredictResult.metadata, as Google's API has it
        from automill.problems.params import int_param

        count = int_param(req.get("params", {}), "max_bounding_box_count", 100, 1, 500)
        result = {"metadata": {"max_bounding_box_count": str(count)}}
    return JobResult(
        result_type="BatchPredictResult", result=result, details={"outputInfo": {"gcsOutputDirectory": out_dir}}
    )


def _jsonl_inputs(uri: str, text: str) -> list[tuple[dict[str, Any], str | None, AutomillError | None]]:
    """Lines ``{"id": ..., "text_snippet": {"content": ...}}`` (snake or camel case)."""
    out: list[tuple[dict[str, Any], str | None, AutomillError | None]] = []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            snippet = doc.get("text_snippet", doc.get("textSnippet")) if isinstance(doc, dict) else None
            content = snippet.get("content") if isinstance(snippet, dict) else None
        except json.JSONDecodeError as exc:
            out.append(({"id": f"{uri}#{n}"}, None, InvalidArgument(f"{uri} line {n}: invalid JSON: {exc}")))
            continue
        key = {"id": str(doc.get("id", f"{uri}#{n}")), "textSnippet": {"content": content}}
        if not isinstance(content, str) or not content.strip():
            out.append((key, None, InvalidArgument(f"{uri} line {n}: text_snippet.content is missing")))
        elif len(content) > MAX_PREDICT_CHARS:
            out.append((key, None, InvalidArgument(f"{uri} line {n}: content over {MAX_PREDICT_CHARS} characters")))
        else:
            out.append((key, content, None))
    return out


def _write_numbered(sv: Any, out_dir: str, stem: str, lines: list[str]) -> None:
    for n, start in enumerate(range(0, max(1, len(lines)), LINES_PER_FILE), start=1):
        part = lines[start : start + LINES_PER_FILE]
        sv.blobs.write_text(f"{out_dir}/{stem}_{n}.jsonl", "".join(line + "\n" for line in part))
