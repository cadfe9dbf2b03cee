"""Parse Vision image-classification import CSVs: ``ML_USE,GCS_FILE_PATH,LABEL,...``.

Each image is read, fully decoded and checked (format, size, truncation, decompression bombs);
a bad row becomes a row failure naming the CSV row and the path, never an import crash. Good
images are copied into the media store (``put_media``) and referenced by key.
"""

from __future__ import annotations

from collections.abc import Callable

from automill.core.errors import InvalidArgument
from automill.problems.image_classification.images import FORMATS, MAX_IMAGE_BYTES, check_image
from automill.problems.text_classification.rows import (
    ParseResult,
    RowFailure,
    TextExample,
    _parse_labels,
    _RowError,
    _split_ml_use,
    csv_records,
    merge_duplicate,
)


def parse_image_csv(
    data: str,
    *,
    uri: str,
    read_bytes: Callable[..., bytes],
    put_media: Callable[[bytes, str], str],
    multilabel: bool,
    formats: dict[str, str] = FORMATS,
) -> ParseResult:
    if data.startswith("\ufeff"):
        data = data[1:]
    result = ParseResult()
    by_key: dict[str, tuple[int, TextExample]] = {}
    for row_no, cells in csv_records(data, uri):
        result.rows += 1
        try:
            ml_use, rest = _split_ml_use(cells)
            path = image_path(rest)
            labels = _parse_labels(rest[1:], multilabel=multilabel, max_labels=100)
            key = put_media(*read_image(path, read_bytes, formats))
            if merge_duplicate(by_key, key, labels, ml_use, multilabel, "the same image as row"):
                continue
        except _RowError as exc:
            result.failures.append(RowFailure(uri, row_no, f"{uri} row {row_no}: {exc}"))
            continue
        ex = TextExample(content=key, ml_use=ml_use, labels=labels, source_uri=path)
        by_key[key] = (row_no, ex)
        result.examples.append(ex)
    return result


def image_path(rest: list[str]) -> str:
    path = rest[0].strip() if rest else ""
    if not path.lower().startswith("gs://"):
        raise _RowError(f"GCS_FILE_PATH must be a gs:// path to an image, got {path[:80]!r}")
    return path


def read_image(path: str, read_bytes: Callable[..., bytes], formats: dict[str, str]) -> tuple[bytes, str]:
    """The image's bytes and file extension, or a row error naming the path."""
    try:
        blob = read_bytes(path, max_bytes=MAX_IMAGE_BYTES)
    except Exception as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise _RowError(detail if path in detail else f"{path}: {detail}") from exc
    try:
        return blob, check_image(blob, path, formats)
    except InvalidArgument as exc:
        raise _RowError(exc.message) from None
