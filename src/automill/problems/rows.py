"""Import CSV rows: the text rows of text classification and sentiment, and what every import format shares.

Every format reads CSV records (:func:`csv_records`), an optional ``ML_USE`` first cell
(:func:`split_ml_use`), labels (:data:`LABEL_RE`, :func:`parse_labels`) and reports a bad row as a
:class:`RowFailure`; UNASSIGNED examples are split by :func:`assign_split`.

The text rows (:func:`parse_import_csv`, AutoML Natural Language text classification and sentiment)
are ``[ML_USE,](TEXT_SNIPPET|GCS_FILE_PATH)[,LABEL,...]``. Bad rows become
:class:`RowFailure` entries (the import goes on without them); a file the csv module cannot
read at all raises :class:`InvalidArgument`. Row numbers are 1-based and count CSV records
(a quoted cell spanning several lines is one record); blank records keep their number but
are otherwise skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from automill.core.errors import InvalidArgument

ML_USES = ("TRAIN", "VALIDATE", "TEST", "UNASSIGNED")
LABEL_RE: re.Pattern[str] = re.compile(r"^[A-Za-z0-9_]{1,32}$")
LABEL_RULE = "at most 32 characters, letters, digits and underscores only"
_ML_USE_TYPO_RE = re.compile(r"^[A-Z_]{1,12}$")
#: ``on_rows`` of parse_import_csv hears about every this many records.
ROWS_PER_REPORT = 500
_CSV_FIELD_LIMIT = 2**31 - 1  # inline snippets may be far above csv's 128 KiB default


@dataclass(frozen=True)
class RowFailure:
    uri: str
    row: int
    message: str


@dataclass
class LabelledExample:
    """A labelled import row: ``content`` is the text (or, for images, the media key)."""

    content: str
    ml_use: str
    labels: tuple[str, ...]
    source_uri: str | None


Example = TypeVar("Example")


@dataclass
class ParseResult(Generic[Example]):
    """What one import file gave: its examples (of the type's kind), the bad rows, the records read."""

    examples: list[Example] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)
    rows: int = 0


class RowError(Exception):
    """One row is invalid; the message is the detail after ``uri row N:`` (parsers turn it into a RowFailure)."""


def split_ml_use(cells: list[str]) -> tuple[str, list[str]]:
    first = cells[0].strip()
    if first.upper() in ML_USES:
        return first.upper(), cells[1:]
    if len(cells) >= 2 and _ML_USE_TYPO_RE.match(first):
        second = cells[1].strip()
        # Read as text, the second cell would be a label; if it cannot be one (a gs:// path,
        # a sentence), the first cell was meant as ML_USE and is misspelt.
        if second and (second.lower().startswith("gs://") or not LABEL_RE.match(second)):
            raise RowError(f'unknown ML_USE "{first}" (expected TRAIN, VALIDATE, TEST or UNASSIGNED)')
    return "UNASSIGNED", cells


def parse_labels(cells: list[str], *, multilabel: bool, max_labels: int) -> tuple[str, ...]:
    labels: set[str] = set()
    for cell in cells:
        label = cell.strip()
        if not label:
            continue
        if not LABEL_RE.match(label):
            raise RowError(f'label "{label}" is invalid: {LABEL_RULE}')
        labels.add(label)
    if len(labels) > max_labels:
        raise RowError(f"too many labels: {len(labels)} (at most {max_labels} per row)")
    if not multilabel and len(labels) > 1:
        raise RowError(f"MULTICLASS datasets allow one label per row, got {len(labels)}")
    return tuple(sorted(labels))


def read_row_file(path: str, read_text: Callable[[str], str], error: type[Exception]) -> str:
    """Fetch a gs:// file named in a row; any storage or decoding problem becomes ``error`` for
    that row, with a message that names the path."""
    try:
        text = read_text(path)
    except Exception as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise error(detail if path in detail else f"{path}: {detail}") from exc
    if not isinstance(text, str):
        raise error(f"{path}: not text")
    if not text.strip():
        raise error(f"{path} is empty")
    return text


def _read_content(cell: str, read_text: Callable[[str], str], max_chars: int) -> tuple[str, str | None]:
    value = cell.strip()
    source: str | None = None
    if value.lower().startswith("gs://"):
        source = value
        text = read_row_file(value, read_text, RowError)
    else:
        text = value
        if not text:
            raise RowError("text content is empty")
    if len(text) > max_chars:
        what = source or "text snippet"
        raise RowError(f"{what} is too long: {len(text)} characters (at most {max_chars})")
    return text, source


def parse_import_csv(
    data: str,
    *,
    uri: str,
    read_text: Callable[[str], str],
    multilabel: bool,
    max_text_chars: int = 10_000_000,
    max_labels_per_row: int = 100,
    check_label: Callable[[str], str | None] | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> ParseResult[LabelledExample]:
    """Parse one import CSV; ``read_text(gs_uri)`` fetches the text of GCS_FILE_PATH rows.

    ``check_label(label)`` returns an error message for a label the problem type refuses (e.g. a
    sentiment outside 0..sentiment_max), or None. ``on_rows(records read)`` hears about every
    500 records (an import's progress).
    """
    if data.startswith("\ufeff"):
        data = data[1:]
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)

    result: ParseResult[LabelledExample] = ParseResult()
    by_key: dict[str, tuple[int, LabelledExample]] = {}  # stripped text -> (first row, example)
    for row_no, cells in csv_records(data, uri):
        result.rows += 1
        if on_rows is not None and result.rows % ROWS_PER_REPORT == 0:
            on_rows(row_no)
        try:
            ml_use, rest = split_ml_use(cells)
            if not rest:
                raise RowError("text content is empty")
            labels = parse_labels(rest[1:], multilabel=multilabel, max_labels=max_labels_per_row)
            if check_label is not None:
                for label in labels:
                    problem = check_label(label)
                    if problem:
                        raise RowError(problem)
            text, source = _read_content(rest[0], read_text, max_text_chars)
            key = text.strip()
            if merge_duplicate(by_key, key, labels, ml_use, multilabel, "duplicate of row"):
                continue
        except RowError as exc:
            result.failures.append(RowFailure(uri, row_no, f"{uri} row {row_no}: {exc}"))
            continue
        ex = LabelledExample(content=text, ml_use=ml_use, labels=labels, source_uri=source)
        by_key[key] = (row_no, ex)
        result.examples.append(ex)
    return result


def csv_records(data: str, uri: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based record number, cells) of each non-blank CSV record; an unreadable CSV raises
    InvalidArgument naming the file and the record."""
    reader = csv.reader(io.StringIO(data, newline=""), strict=True)
    row_no = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise InvalidArgument(f"{uri}: cannot parse CSV at row {row_no + 1}: {err}") from err
        row_no += 1
        if any(c.strip() for c in cells):
            yield row_no, cells


def merge_duplicate(
    by_key: dict[str, tuple[int, LabelledExample]],
    key: str,
    labels: tuple[str, ...],
    ml_use: str,
    multilabel: bool,
    what: str,
) -> bool:
    """A row repeating an earlier example merges its labels (and a definite ML_USE) into it; True
    when ``key`` was seen. A MULTICLASS example cannot get a second label: that row fails."""
    if key not in by_key:
        return False
    first_row, ex = by_key[key]
    merged = tuple(sorted(set(ex.labels) | set(labels)))
    if not multilabel and len(merged) > 1:
        raise RowError(f"{what} {first_row} with a different label")
    ex.labels = merged
    if ex.ml_use == "UNASSIGNED":
        ex.ml_use = ml_use
    return True


def assign_split(content: str, ml_use: str, *, test_fraction: float = 0.2, validation_fraction: float = 0.0) -> str:
    """Deterministic split for UNASSIGNED examples (sha256 of the text, stable across runs)."""
    if ml_use.upper() != "UNASSIGNED":
        return ml_use
    if test_fraction < 0 or validation_fraction < 0 or test_fraction + validation_fraction > 1:
        raise InvalidArgument("test_fraction and validation_fraction must be >= 0 and sum to at most 1")
    digest = hashlib.sha256(content.encode("utf-8")).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    if point < test_fraction:
        return "TEST"
    if point < test_fraction + validation_fraction:
        return "VALIDATE"
    return "TRAIN"
