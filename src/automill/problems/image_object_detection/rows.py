"""Parse Vision object-detection import CSVs: ``ML_USE,GCS_FILE_PATH,[LABEL],BOUNDING_BOX``.

One row per box, several rows per image. BOUNDING_BOX is two vertices ``x_min,y_min,,,x_max,y_max,,``
or four vertices ``x1,y1,x2,y2,x3,y3,x4,y4`` (their enclosing box is kept), normalised to 0..1;
``,,,,,,,`` (and no label) lists an image with no objects. Bad rows fail alone, naming the row;
an image's boxes are kept together (at most 500).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from automill.problems.image_classification.rows import image_path, read_image
from automill.problems.text_classification.rows import (
    LABEL_RE,
    LABEL_RULE,
    ParseResult,
    RowFailure,
    _RowError,
    _split_ml_use,
    csv_records,
)

FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif"}
MAX_BOXES = 500
MIN_EDGE = 0.01


@dataclass
class DetectionExample:
    content: str  # media key
    ml_use: str
    boxes: list[tuple[str, tuple[float, float, float, float]]] = field(default_factory=list)
    source_uri: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({label for label, _ in self.boxes}))


def parse_box(cells: list[str]) -> tuple[float, float, float, float] | None:
    """The 8 box cells -> (x_min, y_min, x_max, y_max), or None for ``,,,,,,,``."""
    cells = [c.strip() for c in cells] + [""] * (8 - len(cells))
    if len(cells) > 8 and any(c for c in cells[8:]):
        raise _RowError(f"too many cells: a row is ML_USE,GCS_FILE_PATH,LABEL and 8 box cells, got {len(cells) + 3}")
    cells = cells[:8]
    if not any(cells):
        return None
    try:
        values = [float(c) if c else None for c in cells]
    except ValueError:
        raise _RowError(f"bounding box values must be numbers, got {cells}") from None
    if all(v is not None for v in values):
        xs, ys = values[0::2], values[1::2]
    elif None not in (values[0], values[1], values[4], values[5]) and all(
        v is None for v in (values[2], values[3], values[6], values[7])
    ):
        xs, ys = [values[0], values[4]], [values[1], values[5]]
    else:
        raise _RowError("a bounding box is x_min,y_min,,,x_max,y_max,, or four vertices x1,y1,x2,y2,x3,y3,x4,y4")
    if any(not 0.0 <= v <= 1.0 for v in xs + ys):  # type: ignore[operator]
        raise _RowError(f"bounding box coordinates must be normalised to 0..1, got {cells}")
    if len(xs) == 2 and (xs[0] >= xs[1] or ys[0] >= ys[1]):  # type: ignore[operator]
        raise _RowError("the bounding box's x_min,y_min must be below its x_max,y_max")
    box = (min(xs), min(ys), max(xs), max(ys))  # type: ignore[type-var]
    if box[2] - box[0] < MIN_EDGE or box[3] - box[1] < MIN_EDGE:
        raise _RowError(f"the bounding box is under the minimum edge of {MIN_EDGE} (normalised)")
    return box  # type: ignore[return-value]


def parse_detection_csv(
    data: str, *, uri: str, read_bytes: Callable[..., bytes], put_media: Callable[[bytes, str], str]
) -> ParseResult:
    result = ParseResult()
    by_path: dict[str, DetectionExample] = {}
    keys: dict[str, str] = {}  # path -> media key (each image is read once)
    for row_no, cells in csv_records(data, uri):
        result.rows += 1
        try:
            ml_use, rest = _split_ml_use(cells)
            path = image_path(rest)
            label = rest[1].strip() if len(rest) > 1 else ""
            box = parse_box(rest[2:])
            if label and not LABEL_RE.match(label):
                raise _RowError(f'label "{label}" is invalid: {LABEL_RULE}')
            if box is not None and not label:
                raise _RowError("a bounding box needs a LABEL")
            if label and box is None:
                raise _RowError(f'label "{label}" has no bounding box')
            if path not in keys:
                keys[path] = put_media(*read_image(path, read_bytes, FORMATS))
            ex = by_path.get(path)
            if ex is None:
                ex = by_path[path] = DetectionExample(keys[path], ml_use, [], path)
                result.examples.append(ex)  # type: ignore[arg-type]
            elif ex.ml_use == "UNASSIGNED":
                ex.ml_use = ml_use
            if box is not None:
                if len(ex.boxes) >= MAX_BOXES:
                    raise _RowError(f"{path} has more than {MAX_BOXES} bounding boxes")
                if (label, box) not in ex.boxes:
                    ex.boxes.append((label, box))
        except _RowError as exc:
            result.failures.append(RowFailure(uri, row_no, f"{uri} row {row_no}: {exc}"))
    return result
