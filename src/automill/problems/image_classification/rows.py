"""Parse Vision image-classification import CSVs: ``ML_USE,GCS_FILE_PATH,LABEL,...``.

Each image is read, fully decoded and checked (format, size, truncation, decompression bombs);
a bad row becomes a row failure naming the CSV row and the path, never an import crash. Good
images are copied into the media store (``put_media``) and referenced by key.
"""

from __future__ import annotations

from collections.abc import Callable

from automill.problems.images import FORMATS, image_path, read_image
from automill.problems.rows import (
    LabelledExample,
    ParseResult,
    RowError,
    RowFailure,
    csv_records,
    merge_duplicate,
    parse_labels,
    split_ml_use,
)


def parse_image_csv(
    data: str,
    *,
    uri: str,
    read_bytes: Callable[..., bytes],
    put_media: Callable[[bytes, str], str],
    multilabel: bool,
    formats: dict[str, str] = FORMATS,
) -> ParseResult[LabelledExample]:
    if data.startswith("\ufeff"):
        data = data[1:]
    result: ParseResult[LabelledExample] = ParseResult()
    by_key: dict[str, tuple[int, LabelledExample]] = {}
    for row_no, cells in csv_records(data, uri):
        result.rows += 1
        try:
            ml_use, rest = split_ml_use(cells)
            path = image_path(rest)
            labels = parse_labels(rest[1:], multilabel=multilabel, max_labels=100)
            key = put_media(*read_image(path, read_bytes, formats))
            if merge_duplicate(by_key, key, labels, ml_use, multilabel, "the same image as row"):
                continue
        except RowError as exc:
            result.failures.append(RowFailure(uri, row_no, f"{uri} row {row_no}: {exc}"))
            continue
        ex = LabelledExample(content=key, ml_use=ml_use, labels=labels, source_uri=path)
        by_key[key] = (row_no, ex)
        result.examples.append(ex)
    return result
