"""Parse Vision image-classification import CSVs: ``ML_USE,GCS_FILE_PATH,LABEL,...``.

Each image is read, fully decoded and checked (format, size, truncation, decompression bombs);
a bad row becomes a row failure naming the CSV row and the path, never an import crash. Good
images are copied into the media store (``put_media``) and referenced by key.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from automill.core.errors import InvalidArgument
from automill.problems.image_classification.images import FORMATS, MAX_IMAGE_BYTES, check_image
from automill.problems.text_classification.rows import (ParseResult, RowFailure, TextExample, _parse_labels,
                                                        _RowError, _split_ml_use)


def parse_image_csv(data: str, *, uri: str, read_bytes: Callable[..., bytes], put_media: Callable[[bytes, str], str],
                    multilabel: bool, formats: dict[str, str] = FORMATS) -> ParseResult:
    if data.startswith("\ufeff"):
        data = data[1:]
    result = ParseResult()
    by_key: dict[str, tuple[int, TextExample]] = {}
    reader = csv.reader(io.StringIO(data, newline=""), strict=True)
    row_no = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise InvalidArgument(f"{uri}: cannot parse CSV at row {row_no + 1}: {err}") from err
        row_no += 1
        if not any(c.strip() for c in cells):
            continue
        result.rows += 1
        try:
            ml_use, rest = _split_ml_use(cells)
            path = rest[0].strip() if rest else ""
            if not path.lower().startswith("gs://"):
                raise _RowError(f"GCS_FILE_PATH must be a gs:// path to an image, got {path[:80]!r}")
            labels = _parse_labels(rest[1:], multilabel=multilabel, max_labels=100)
            try:
                blob = read_bytes(path, max_bytes=MAX_IMAGE_BYTES)
            except Exception as exc:  # noqa: BLE001 - the row fails, the import goes on
                detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                raise _RowError(detail if path in detail else f"{path}: {detail}") from exc
            try:
                ext = check_image(blob, path, formats)
            except InvalidArgument as exc:
                raise _RowError(exc.message) from None
            key = put_media(blob, ext)
            if key in by_key:
                first_row, ex = by_key[key]
                merged = tuple(sorted(set(ex.labels) | set(labels)))
                if not multilabel and len(merged) > 1:
                    raise _RowError(f"the same image as row {first_row} with a different label")
                ex.labels = merged
                if ex.ml_use == "UNASSIGNED":
                    ex.ml_use = ml_use
                continue
        except _RowError as exc:
            result.failures.append(RowFailure(uri, row_no, f"{uri} row {row_no}: {exc}"))
            continue
        ex = TextExample(content=key, ml_use=ml_use, labels=labels, source_uri=path)
        by_key[key] = (row_no, ex)
        result.examples.append(ex)
    return result
