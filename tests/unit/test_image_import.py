"""Image checks and the image import parser: every broken input becomes a row failure."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from automill.core.errors import InvalidArgument, NotFound
from automill.problems.image_classification.rows import parse_image_csv
from automill.problems.images import FORMATS, check_image, decode_rgb
from automill.store.media import MediaStore


def encode(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    img = Image.new(mode, size, 120)
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_google_format_is_accepted(fmt: str) -> None:
    data = encode(fmt, mode="RGBA" if fmt == "ICO" else "RGB")
    assert check_image(data, "x") == FORMATS[fmt]
    assert decode_rgb(data, 16).shape == (16, 16, 3)


def test_broken_images_are_refused_with_the_path() -> None:
    jpeg = encode("JPEG", (200, 200))
    with pytest.raises(InvalidArgument, match=r"gs://bkt/t\.jpg: not a readable image"):
        check_image(jpeg[: len(jpeg) // 2], "gs://bkt/t.jpg")
    with pytest.raises(InvalidArgument, match="not a readable image"):
        check_image(b"GIF89a" + b"\0" * 10, "x")
    with pytest.raises(InvalidArgument, match="empty"):
        check_image(b"", "x")
    with pytest.raises(InvalidArgument, match="format PPM is not supported"):
        check_image(encode("PPM"), "x")
    with pytest.raises(InvalidArgument, match="over the limit of 31457280"):
        check_image(b"\xff" * (30 * 1024 * 1024 + 1), "x")


def test_decompression_bomb_is_refused() -> None:
    bomb = encode("PNG", (12_000, 10_000), mode="1")  # 120 M pixels in a few kB
    assert len(bomb) < 1_000_000
    with pytest.raises(InvalidArgument, match=r"pixels|decompression bomb"):
        check_image(bomb, "gs://bkt/bomb.png")


def test_parse_csv_rows(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    files = {
        "gs://bkt/a.png": encode("PNG"),
        "gs://bkt/b.jpg": encode("JPEG"),
        "gs://bkt/bad.jpg": b"nope",
        "gs://bkt/a_again.png": encode("PNG"),
    }

    def read_bytes(uri: str, max_bytes: int | None = None) -> bytes:
        if uri not in files:
            raise NotFound(f"{uri} not found")
        return files[uri]

    csv_text = (
        "TRAIN,gs://bkt/a.png,cat\nTEST,gs://bkt/b.jpg,dog\nTRAIN,gs://bkt/bad.jpg,cat\nTRAIN,gs://bkt/gone.jpg,cat\n"
        "TRAIN,gs://bkt/a_again.png,cat\nTRAIN,not-a-path,cat\nTRAIN,gs://bkt/b.jpg,bad label\nVALIDATE,gs://bkt/a.png,dog\n"
    )
    result = parse_image_csv(
        csv_text, uri="gs://bkt/i.csv", read_bytes=read_bytes, put_media=store.put, multilabel=False
    )
    assert result.rows == 8
    assert [(e.ml_use, e.labels, e.source_uri) for e in result.examples] == [
        ("TRAIN", ("cat",), "gs://bkt/a.png"),
        ("TEST", ("dog",), "gs://bkt/b.jpg"),
    ]
    messages = [f.message for f in result.failures]
    assert [f.row for f in result.failures] == [3, 4, 6, 7, 8]
    assert "gs://bkt/bad.jpg: not a readable image" in messages[0] and "gs://bkt/gone.jpg not found" in messages[1]
    assert "gs:// path" in messages[2] and "label" in messages[3] and "different label" in messages[4]
    key = result.examples[0].content
    assert store.read(key) == files["gs://bkt/a.png"] and key.endswith(".png")


def test_media_store_refuses_bad_keys(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(ValueError):
        store.read("../../etc/passwd")
    with pytest.raises(NotFound):
        store.read("0" * 64 + ".png")
    key = store.put(b"abc", "png")
    assert store.put(b"abc", "png") == key and not list(store.root.rglob(".tmp-*"))
    assert np.frombuffer(store.read(key), dtype=np.uint8).tolist() == [97, 98, 99]
