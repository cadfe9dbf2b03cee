"""Parse AutoML Natural Language entity-extraction imports.

The import file is an index CSV of records ``[ML_USE,]gs://…/file.jsonl``; each JSONL file holds
one document per line, ``{"text_snippet": {"content": TEXT}, "annotations": [{"display_name":
TYPE, "text_extraction": {"text_segment": {"start_offset": S, "end_offset": E}}}]}``, with
snake_case or camelCase keys and int or string (int64 JSON) offsets. Offsets are Python str
indices into TEXT, E exclusive. Annotation is exhaustive: a document without annotations is
kept with no spans. Bad lines and bad index rows become :class:`RowFailure` entries (the
import goes on without them); an index the csv module cannot read raises InvalidArgument.
Line and row numbers are 1-based; blank lines and records keep their number but are skipped.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from automill.core.errors import InvalidArgument
from automill.problems.rows import (
    LABEL_RE,
    LABEL_RULE,
    ML_USES,
    RowFailure,
    assign_split,
    read_row_file,
)

MAX_CHARS = 30_000
_INT_RE = re.compile(r"^\s*[+-]?[0-9]+\s*$")


@dataclass
class Span:
    label: str
    start: int
    end: int


@dataclass
class ExtractionExample:
    content: str
    ml_use: str
    spans: list[Span]
    source_uri: str


@dataclass
class ExtractionParseResult:
    examples: list[ExtractionExample] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)
    rows: int = 0


class _LineError(Exception):
    """Internal: one line/row is invalid; the message is the detail after ``uri line N:``."""


def _get(obj: dict[str, Any], snake: str, camel: str) -> Any:
    return obj[snake] if snake in obj else obj.get(camel)


def _offset(segment: dict[str, Any], snake: str, camel: str, default: int | None) -> int:
    value = _get(segment, snake, camel)
    if value is None:
        if default is None:
            raise _LineError(f"{snake} is missing")
        return default  # proto3 JSON omits a zero int64
    if isinstance(value, str) and _INT_RE.match(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _LineError(f"{snake} {value!r} is not an integer")
    if value < 0:
        raise _LineError(f"{snake} {value} is negative")
    return value


def _span(ann: Any, n: int, length: int) -> Span:
    if not isinstance(ann, dict):
        raise _LineError(f"annotation {n} is not an object")
    label = _get(ann, "display_name", "displayName")
    if not isinstance(label, str) or not LABEL_RE.match(label):
        raise _LineError(f"annotation {n}: label {label!r} is invalid: {LABEL_RULE}")
    extraction = _get(ann, "text_extraction", "textExtraction")
    segment = _get(extraction, "text_segment", "textSegment") if isinstance(extraction, dict) else 0
    if not isinstance(segment, dict):
        raise _LineError(f"annotation {n} has no text_extraction.text_segment")
    try:
        start = _offset(segment, "start_offset", "startOffset", 0)
        end = _offset(segment, "end_offset", "endOffset", None)
    except _LineError as exc:
        raise _LineError(f"annotation {n}: {exc}") from None
    if start >= end:
        raise _LineError(f"annotation {n}: start_offset {start} must be below end_offset {end}")
    if end > length:
        raise _LineError(f"annotation {n}: end_offset {end} is past the content ({length} characters)")
    return Span(label, start, end)


def _pdf_text(doc: dict[str, Any], read_document: Callable[[str], str] | None) -> str:
    if read_document is None:
        raise _LineError("PDF documents are not supported here")
    document = _get(doc, "document", "document") or {}
    config = _get(document, "input_config", "inputConfig") or {}
    uris = (
        (_get(config, "gcs_source", "gcsSource") or {}).get("input_uris")
        or (_get(config, "gcs_source", "gcsSource") or {}).get("inputUris")
        or []
    )
    if len(uris) != 1 or not str(uris[0]).startswith("gs://"):
        raise _LineError("document.input_config.gcs_source.input_uris must hold exactly one gs:// PDF path")
    try:
        return read_document(str(uris[0]))
    except Exception as exc:  # storage, not-a-PDF, no text layer: this line's problem
        raise _LineError(getattr(exc, "message", None) or str(exc)) from exc


def _document(line: str, max_chars: int, read_document: Callable[[str], str] | None = None) -> tuple[str, list[Span]]:
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise _LineError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _LineError("not a JSON object")
    content: str | None
    if "document" in doc:
        content = _pdf_text(doc, read_document)
    else:
        snippet = _get(doc, "text_snippet", "textSnippet")
        content = snippet.get("content") if isinstance(snippet, dict) else None
    if not isinstance(content, str) or not content.strip():
        raise _LineError("text_snippet.content is missing or empty")
    if len(content) > max_chars and "document" not in doc:
        raise _LineError(f"content is too long: {len(content)} characters (at most {max_chars})")
    if not unicodedata.is_normalized("NFC", content):
        raise _LineError("content is not in Unicode NFC form")
    annotations = doc.get("annotations")
    annotations = [] if annotations is None else annotations
    if not isinstance(annotations, list):
        raise _LineError("annotations is not a list")
    unique = {(s.start, s.end, s.label): s for i, a in enumerate(annotations, 1) for s in [_span(a, i, len(content))]}
    spans = [unique[k] for k in sorted(unique)]
    # Sorted by start, any overlap shows up between neighbours.
    for prev, cur in itertools.pairwise(spans):
        if cur.start < prev.end:
            raise _LineError(
                f"spans {prev.label} [{prev.start}, {prev.end}) and {cur.label} [{cur.start}, {cur.end}) overlap"
            )
    return content, spans


def parse_jsonl(
    text: str,
    *,
    uri: str,
    ml_use: str,
    max_chars: int = MAX_CHARS,
    read_document: Callable[[str], str] | None = None,
) -> ExtractionParseResult:
    """Parse one JSONL file of documents; every example gets ``ml_use`` and ``source_uri=uri``."""
    result = ExtractionParseResult()
    if text.startswith("\ufeff"):
        text = text[1:]
    for line_no, line in enumerate(text.split("\n"), 1):  # not splitlines: U+2028 may be in JSON
        if not line.strip():
            continue
        result.rows += 1
        try:
            content, spans = _document(line, max_chars, read_document)
        except _LineError as exc:
            result.failures.append(RowFailure(uri, line_no, f"{uri} line {line_no}: {exc}"))
            continue
        result.examples.append(ExtractionExample(content, ml_use, spans, uri))
    return result


def _index_row(cells: list[str]) -> tuple[str, str]:
    while cells and not cells[-1]:
        cells.pop()
    paths = [c for c in cells if c.lower().startswith("gs://")]
    if len(paths) != 1:
        raise _LineError(f"expected [ML_USE,]gs://…/file.jsonl, found {len(paths)} gs:// paths")
    if len(cells) == 1:
        return "UNASSIGNED", cells[0]
    if len(cells) == 2 and cells[1] == paths[0]:
        if cells[0].upper() not in ML_USES:
            raise _LineError(f'unknown ML_USE "{cells[0]}" (expected TRAIN, VALIDATE, TEST or UNASSIGNED)')
        return cells[0].upper(), cells[1]
    raise _LineError(f"expected [ML_USE,]gs://…/file.jsonl, got {len(cells)} cells")


def parse_index_csv(
    data: str,
    *,
    uri: str,
    read_text: Callable[[str], str],
    max_chars: int = MAX_CHARS,
    read_document: Callable[[str], str] | None = None,
) -> ExtractionParseResult:
    """Parse an index CSV; ``read_text(gs_uri)`` fetches each JSONL file, ``read_document(gs_uri)``
    the text layer of a PDF document line (None: PDF lines are row failures)."""
    if data.startswith("\ufeff"):
        data = data[1:]
    result = ExtractionParseResult()
    reader = csv.reader(io.StringIO(data, newline=""), strict=True)
    row_no = 0
    while True:
        try:
            cells = [c.strip() for c in next(reader)]
        except StopIteration:
            break
        except csv.Error as err:
            raise InvalidArgument(f"{uri}: cannot parse CSV at row {row_no + 1}: {err}") from err
        row_no += 1
        if not any(cells):
            continue
        try:
            ml_use, path = _index_row(cells)
            text = read_row_file(path, read_text, _LineError)
        except _LineError as exc:
            result.rows += 1
            result.failures.append(RowFailure(uri, row_no, f"{uri} row {row_no}: {exc}"))
            continue
        part = parse_jsonl(text, uri=path, ml_use=ml_use, max_chars=max_chars, read_document=read_document)
        result.examples += part.examples
        result.failures += part.failures
        result.rows += part.rows
    return result


def split_extraction(content: str, ml_use: str) -> str:
    """UNASSIGNED -> TEST 20%, VALIDATE 24%, TRAIN 56% (70/30 of the rest), by sha256 of content."""
    return assign_split(content, ml_use, test_fraction=0.2, validation_fraction=0.8 * 0.3)
