"""ImportData and ExportData jobs."""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from automill.core.errors import InvalidArgument, NotFound
from automill.core.ids import make_id
from automill.jobs.context import JobContext
from automill.jobs.registry import register
from automill.jobs.result import JobResult
from automill.problems.registry import get_problem
from automill.services.housekeeping import uses_job_tmp
from automill.store.db import new_etag, next_number, utcnow
from automill.store.housekeeping import free_media, media_lock
from automill.store.tables import AnnotationSpecRow, ExampleRow

if TYPE_CHECKING:
    from automill.services.container import Services

MAX_CSV_BYTES = 100 * 1024 * 1024
MAX_TEXT_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
#: An import fails whole when more than this share of its rows is bad.
MAX_BAD_ROW_FRACTION = 0.1


def content_hash(content: str) -> str:
    """Duplicates are the same text up to surrounding whitespace, within and across imports."""
    return hashlib.sha256(content.strip().encode("utf-8")).hexdigest()


def gcs_timestamp(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _rows_reporter(ctx: JobContext, text: str, i: int, n: int, files: str) -> Any:
    """``on_rows(records read)`` of one import file -> progress 2..80 over all files, and the stage."""
    total = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))  # records, if no cell spans lines

    def on_rows(read: int) -> None:
        read = min(read, total)
        ctx.progress(2 + 78.0 * (i + read / total) / n, stage=f"reading rows: {read:,} of {total:,}{files}")

    return on_rows


@register("import_data")
@uses_job_tmp
def import_data(ctx: JobContext) -> JobResult:
    try:
        return _import_data(ctx)
    except BaseException:
        _release_pins(ctx)
        raise


def _release_pins(ctx: JobContext) -> None:
    """A failed import: free the images it stored that no example names (a kill leaves them to the sweep)."""
    sv = ctx.services
    folder = sv.media.pin_dir(ctx.op_id)
    keys = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    sv.media.unpin(ctx.op_id)
    if keys:
        free_media(sv.db, sv.media, keys)


def _import_data(ctx: JobContext) -> JobResult:
    sv: Services = ctx.services
    req = ctx.request
    with sv.db.tx() as s:
        ds = sv.datasets.row(s, req["dataset"])
        dataset_id, problem_type, meta = ds.id, ds.problem_type, dict(ds.problem_metadata)
    problem = get_problem(problem_type)
    examples: list[Any] = []
    failures: list[Any] = []
    rows = 0
    uris = [u for pattern in req["input_uris"] for u in (sv.blobs.expand(pattern) or [pattern])]
    counts = "on_rows" in inspect.signature(problem.parse_import).parameters

    def read_text(uri: str) -> str:
        return sv.blobs.read_text(uri, max_bytes=MAX_TEXT_BYTES)

    def read_bytes(uri: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
        return sv.blobs.read_bytes(uri, max_bytes=max_bytes)

    for i, uri in enumerate(uris):
        files = f" (file {i + 1} of {len(uris)})" if len(uris) > 1 else ""
        ctx.progress(2 + 78.0 * i / len(uris), stage=f"reading {uri}{files}")
        text = sv.blobs.read_text(uri, max_bytes=MAX_CSV_BYTES)  # a missing CSV fails the whole import
        # each stored image is pinned to this operation until the commit (store/media.py)
        media = (
            {"put_media": lambda data, ext: sv.media.put(data, ext, pin=ctx.op_id)}
            if getattr(problem, "uses_media", False)
            else {}
        )
        if counts:
            media["on_rows"] = _rows_reporter(ctx, text, i, len(uris), files)
        parsed = problem.parse_import(
            text,
            uri=uri,
            read_text=read_text,
            read_bytes=read_bytes,
            dataset_meta=meta,
            **media,
        )
        examples.extend(parsed.examples)
        failures.extend(parsed.failures)
        rows += parsed.rows
        ctx.progress(80.0 * (i + 1) / len(uris))
    for f in failures:
        ctx.add_partial_failure(3, f.message)
    ctx.progress(80, stage=f"saving {len(examples):,} examples from {rows:,} rows")
    if rows == 0:
        raise InvalidArgument(f"the import files have no data rows: {', '.join(uris)}")
    if not examples or len(failures) > MAX_BAD_ROW_FRACTION * rows:
        first = "; ".join(f.message for f in failures[:5])
        raise InvalidArgument(
            f"import failed: {len(failures)} of {rows} rows are invalid (more than "
            f"{int(MAX_BAD_ROW_FRACTION * 100)}% allowed), nothing was imported. First errors: {first}"
        )

    # What each example stores is worked out before the final transaction; inside it, the new rows
    # go in as one bulk insert (an ORM object per row made a 50,000-row import spend most of its time
    # in that transaction, where no progress can be written).
    prepared = [(content_hash(ex.content), ex, problem.labels_of(ex)) for ex in examples]

    def commit(s: Any) -> None:
        ds = sv.datasets.row(s, req["dataset"])  # still there?
        if getattr(problem, "uses_media", False):
            # Under the media lock until this commits: a dataset delete freeing the same images either
            # finished before (put them back from the pins) or waits and then sees these rows.
            media_lock(s)
            sv.media.restore(ctx.op_id)
            sv.media.unpin(ctx.op_id)
        specs = {
            r.display_name: r.id
            for r in s.execute(select(AnnotationSpecRow).where(AnnotationSpecRow.dataset_id == dataset_id)).scalars()
        }
        existing: dict[str, Any] = {
            r.content_hash: r
            for r in s.execute(select(ExampleRow).where(ExampleRow.dataset_id == dataset_id)).scalars()
        }
        new: list[SimpleNamespace] = []
        for h, ex, labels in prepared:
            for label in labels:
                if label not in specs:
                    n = next_number(s, "annotation_spec")
                    specs[label] = make_id("", n)
                    s.add(AnnotationSpecRow(id=specs[label], dataset_id=dataset_id, display_name=label, seq=n))
            annotations = problem.annotations_of(ex, specs)
            old = existing.get(h)
            if old is None:
                row = SimpleNamespace(
                    dataset_id=dataset_id,
                    content_hash=h,
                    content=ex.content,
                    source_uri=ex.source_uri,
                    ml_use=ex.ml_use,
                    annotations=annotations,
                )
                new.append(row)
                existing[h] = row
                continue
            merged = problem.merge_annotations(old.annotations, annotations, meta)
            if merged is None:
                ctx.add_partial_failure(
                    3,
                    f"{ex.source_uri or 'a row'}: the text {ex.content[:40]!r} is already in "
                    "the dataset with different annotations; skipped",
                )
                continue
            old.annotations = merged
            if old.ml_use == "UNASSIGNED" and ex.ml_use != "UNASSIGNED":
                old.ml_use = ex.ml_use
        if new:
            s.flush()
            s.execute(insert(ExampleRow), [vars(r) for r in new])
        ds.etag = new_etag(ds.id, utcnow(), len(existing))
        return None

    return JobResult(commit=commit)


@register("export_data")
@uses_job_tmp
def export_data(ctx: JobContext) -> JobResult:
    sv = ctx.services
    req = ctx.request
    with sv.db.tx() as s:
        ds = sv.datasets.row(s, req["dataset"])
        display_name, problem_type = ds.display_name, ds.problem_type
        specs = {
            r.id: r.display_name
            for r in s.execute(select(AnnotationSpecRow).where(AnnotationSpecRow.dataset_id == ds.id)).scalars()
        }
        rows = [
            (r.id, r.content, r.ml_use, r.annotations)
            for r in s.execute(
                select(ExampleRow).where(ExampleRow.dataset_id == ds.id).order_by(ExampleRow.id)
            ).scalars()
        ]
    if not rows:
        raise NotFound(f"dataset {req['dataset']} has no examples to export")
    out_dir = f"{req['output_uri_prefix'].rstrip('/')}/export_data-{display_name}-{gcs_timestamp()}"
    if problem_type == "text_extraction":
        return _export_extraction(ctx, out_dir, specs, rows)
    if getattr(get_problem(problem_type), "uses_media", False):
        return _export_images(ctx, out_dir, problem_type, specs, rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for i, (ex_id, content, ml_use, anns) in enumerate(rows):
        doc = f"{out_dir}/documents/{ex_id}.txt"
        sv.blobs.write_text(doc, content)
        writer.writerow([ml_use, doc, *[specs[a] for a in (anns or []) if a in specs]])
        if i % 100 == 0:
            ctx.progress(2 + 88.0 * i / len(rows), stage=f"writing examples: {i:,} of {len(rows):,}")
    ctx.progress(95, stage="writing the index CSV")
    sv.blobs.write_text(f"{out_dir}/{problem_type}_1.csv", buf.getvalue())
    return JobResult(details={"outputInfo": {"gcsOutputDirectory": out_dir}})


def _export_extraction(ctx: JobContext, out_dir: str, specs: dict[str, str], rows: list[Any]) -> JobResult:
    """The import format: an index CSV of ``ML_USE,gs://…jsonl`` and one JSONL file per ML_USE."""
    sv = ctx.services
    by_use: dict[str, list[str]] = {}
    for _, content, ml_use, anns in rows:
        doc = {
            "text_snippet": {"content": content},
            "annotations": [
                {
                    "display_name": specs[a["spec"]],
                    "text_extraction": {"text_segment": {"start_offset": a["start"], "end_offset": a["end"]}},
                }
                for a in anns or []
                if a["spec"] in specs
            ],
        }
        by_use.setdefault(ml_use, []).append(json.dumps(doc, ensure_ascii=False))
    index = []
    ctx.progress(50, stage=f"writing {len(rows):,} documents")
    for ml_use, lines in sorted(by_use.items()):
        uri = f"{out_dir}/{ml_use.lower()}.jsonl"
        sv.blobs.write_text(uri, "\n".join(lines) + "\n")
        index.append(f"{ml_use},{uri}")
    sv.blobs.write_text(f"{out_dir}/text_extraction_1.csv", "\n".join(index) + "\n")
    return JobResult(details={"outputInfo": {"gcsOutputDirectory": out_dir}})


def _export_images(
    ctx: JobContext, out_dir: str, problem_type: str, specs: dict[str, str], rows: list[Any]
) -> JobResult:
    """``ML_USE,gs://…/images/<file>,LABEL,...`` (object detection: one row per box) with the images
    copied beside the CSV, so the export imports again."""
    sv = ctx.services
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for i, (_, key, ml_use, anns) in enumerate(rows):
        if i % 20 == 0:
            ctx.progress(2 + 88.0 * i / len(rows), stage=f"copying images: {i:,} of {len(rows):,}")
        uri = f"{out_dir}/images/{key}"
        with sv.blobs.open_write(uri) as fh:
            fh.write(sv.media.read(key))
        if problem_type == "image_object_detection":  # one row per box: x_min,y_min,,,x_max,y_max,,
            boxes = [a for a in anns or [] if a["spec"] in specs]
            for a in boxes:
                x0, y0, x1, y1 = (f"{v:.6f}" for v in a["box"])
                writer.writerow([ml_use, uri, specs[a["spec"]], x0, y0, "", "", x1, y1, "", ""])
            if not boxes:
                writer.writerow([ml_use, uri, "", "", "", "", "", "", "", "", ""])
            continue
        writer.writerow([ml_use, uri, *[specs[a] for a in (anns or []) if a in specs]])
    sv.blobs.write_text(f"{out_dir}/{problem_type}_1.csv", buf.getvalue())
    return JobResult(details={"outputInfo": {"gcsOutputDirectory": out_dir}})
