"""Object detection import rows: box forms, per-row failures, boxes grouped per image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from automill.core.errors import NotFound
from automill.learners.centernet import decode, flip_boxes, targets
from automill.problems.image_object_detection.rows import parse_detection_csv
from automill.store.media import MediaStore


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def test_rows(tmp_path: Path) -> None:
    files = {"gs://bkt/a.jpg": jpeg(), "gs://bkt/n.jpg": jpeg()[:-10] + b"x", "gs://bkt/e.jpg": jpeg()}
    bmp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(bmp, format="BMP")
    files["gs://bkt/c.bmp"] = bmp.getvalue()

    def read_bytes(uri: str, max_bytes: int | None = None) -> bytes:
        if uri not in files:
            raise NotFound(f"{uri} not found")
        return files[uri]

    rows = [
        "TRAIN,gs://bkt/a.jpg,cat,0.1,0.2,,,0.5,0.6,,",  # 1 two vertices
        "TRAIN,gs://bkt/a.jpg,dog,0.1,0.1,0.9,0.1,0.9,0.8,0.1,0.8",  # 2 four vertices
        "TRAIN,gs://bkt/a.jpg,cat,0.5,0.2,,,0.1,0.6,,",  # 3 min >= max
        "TRAIN,gs://bkt/a.jpg,cat,0.1,0.2,,,1.5,0.6,,",  # 4 outside 0..1
        "TRAIN,gs://bkt/a.jpg,cat,0.1,0.2,,,0.105,0.6,,",  # 5 under the minimum edge
        "TRAIN,gs://bkt/c.bmp,cat,0.1,0.2,,,0.5,0.6,,",  # 6 BMP is not allowed for detection
        "TRAIN,gs://bkt/a.jpg,,0.1,0.2,,,0.5,0.6,,",  # 7 a box without a label
        "TEST,gs://bkt/e.jpg,,,,,,,,,",  # 8 an image with no objects
        "TRAIN,gs://bkt/a.jpg,cat,x,0.2,,,0.5,0.6,,",  # 9 not a number
        "TRAIN,gs://bkt/gone.jpg,cat,0.1,0.2,,,0.5,0.6,,",  # 10 missing image
    ]
    result = parse_detection_csv(
        "\n".join(rows) + "\n", uri="gs://bkt/i.csv", read_bytes=read_bytes, put_media=MediaStore(tmp_path).put
    )
    assert result.rows == 10
    assert [f.row for f in result.failures] == [3, 4, 5, 6, 7, 9, 10]
    msgs = " | ".join(f.message for f in result.failures)
    for text in (
        "below its x_max",
        "normalised to 0..1",
        "minimum edge",
        "format BMP",
        "needs a LABEL",
        "must be numbers",
        "gone.jpg not found",
    ):
        assert text in msgs
    a, e = result.examples
    assert a.boxes == [("cat", (0.1, 0.2, 0.5, 0.6)), ("dog", (0.1, 0.1, 0.9, 0.8))] and a.labels == ("cat", "dog")
    assert e.boxes == [] and e.ml_use == "TEST"


def test_targets_decode_round_trip() -> None:
    boxes = [(0, (0.1, 0.2, 0.5, 0.7)), (1, (0.6, 0.1, 0.9, 0.4))]
    heat, reg, _ = targets(boxes, 2, 20)
    out = np.concatenate([heat, reg])[None]
    found = decode(out, 2, 0.5, 10)[0]
    assert sorted(k for k, _, _ in found) == [0, 1]
    for k, score, box in found:
        assert score == pytest.approx(1.0) and np.allclose(box, dict(boxes)[k], atol=1e-6)
    assert flip_boxes([(0, (0.1, 0.2, 0.5, 0.7))]) == [(0, (0.5, 0.2, 0.9, 0.7))]
