"""Parse Vision object-detection import CSVs: ``ML_USE,GCS_FILE_PATH,[LABEL],BOUNDING_BOX``.

One row per box, several rows per image. BOUNDING_BOX is two vertices ``x_min,y_min,,,x_max,y_max,,``
or four vertices ``x1,y1,x2,y2,x3,y3,x4,y4`` (their enclosing box is kept), normalised to 0..1;
``,,,,,,,`` (and no label) lists an image with no objects. Bad rows fail alone, naming the row;
an image's boxes are kept together (at most 500).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from automill.problems.images import image_path, read_image
from automill.problems.rows import (
    LABEL_RE,
    LABEL_RULE,
    ParseResult,
    RowError,
    RowFailure,
    csv_records,
    split_ml_use,
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
        raise RowError(f"too many cells: a row is ML_USE,GCS_FILE_PATH,LABEL and 8 box cells, got {len(cells) + 3}")
    cells = cells[:8]
    if not any(cells):
        return None
    try:
        values = [float(c) if c else None for c in cells]
    except ValueError:
        raise RowError(f"bounding box values must be numbers, got {cells}") from None
    given = {i: v for i, v in enumerate(values) if v is not None}
    if len(given) == 8:
        corners = [0, 2, 4, 6]  # four vertices
    elif sorted(given) == [0, 1, 4, 5]:
        corners = [0, 4]  # x_min,y_min,,,x_max,y_max,,
    else:
        raise RowError("a bounding box is x_min,y_min,,,x_max,y_max,, or four vertices x1,y1,x2,y2,x3,y3,x4,y4")
    xs, ys = [given[i] for i in corners], [given[i + 1] for i in corners]
    if any(not 0.0 <= v <= 1.0 for v in xs + ys):
        raise RowError(f"bounding box coordinates must be normalised to 0..1, got {cells}")
    if len(xs) == 2 and (xs[0] >= xs[1] or ys[0] >= ys[1]):
        raise RowError("the bounding box's x_min,y_min must be below its x_max,y_max")
    box = (min(xs), min(ys), max(xs), max(ys))
    if box[2] - box[0] < MIN_EDGE or box[3] - box[1] < MIN_EDGE:
        raise RowError(f"the bounding box is under the minimum edge of {MIN_EDGE} (normalised)")
    return box


def parse_detection_csv(
    data: str, *, uri: str, read_bytes: Callable[..., bytes], put_media: Callable[[bytes, str], str]
) -> ParseResult[DetectionExample]:
    result: ParseResult[DetectionExample] = ParseResult()
    by_path: dict[str, DetectionExample] = {}
    keys: dict[str, str] = {}  # path -> media key (each image is read once)
    for row_no, cells in csv_records(data, uri):
        result.rows += 1
        try:
            ml_use, rest = split_ml_use(cells)
            path = image_path(rest)
            label = rest[1].strip() if len(rest) > 1 else ""
            box = parse_box(rest[2:])
            if label and not LABEL_RE.match(label):
                raise RowError(f'label "{label}" is invalid: {LABEL_RULE}')
            if box is not None and not label:
                raise RowError("a bounding box needs a LABEL")
            if label and box is None:
                raise RowError(f'label "{label}" has no bounding box')
            if path not in keys:
                keys[path] = put_media(*read_image(path, read_bytes, FORMATS))
            ex = by_path.get(path)
            if ex is None:
                ex = by_path[path] = DetectionExample(keys[path], ml_use, [], path)
                result.examples.append(ex)
            elif ex.ml_use == "UNASSIGNED":
                ex.ml_use = ml_use
            if box is not None:
                if len(ex.boxes) >= MAX_BOXES:
                    raise RowError(f"{path} has more than {MAX_BOXES} bounding boxes")
                if (label, box) not in ex.boxes:
                    ex.boxes.append((label, box))
        except RowError as exc:
            result.failures.append(RowFailure(uri, row_no, f"{uri} row {row_no}: {exc}"))
    return result
