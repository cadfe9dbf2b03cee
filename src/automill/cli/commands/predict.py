"""``automill predict MODEL``: text (argument, file or stdin) or image bytes, one online prediction."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import typer

from automill.cli.common import Ctx, command, pairs
from automill.cli.errors import CliError
from automill.cli.output import Col, num, table

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".ico"}


def is_image(data: bytes, filename: str = "") -> bool:
    """By extension first, then by the file's magic bytes."""
    if Path(filename).suffix.lower() in IMAGE_EXTENSIONS:
        return True
    return (
        data[:3] == b"\xff\xd8\xff"
        or data[:8] == b"\x89PNG\r\n\x1a\n"
        or data[:4] in (b"GIF8", b"II*\x00", b"MM\x00*")
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or data[:2] == b"BM"
        or data[:4] == b"\x00\x00\x01\x00"
    )


def payload_from_bytes(data: bytes, source: str) -> dict[str, Any]:
    if is_image(data, source):
        return {"image": {"imageBytes": base64.b64encode(data).decode()}}
    if data[:5] == b"%PDF-":
        raise CliError(
            "INVALID_ARGUMENT", f"{source} is a PDF: copy it into a bucket and pass --file gs://BUCKET/file.pdf"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CliError(
            "INVALID_ARGUMENT", f"{source} is neither UTF-8 text nor an image (JPEG, PNG, GIF, WEBP, BMP, TIFF, ICO)"
        ) from None
    return {"textSnippet": {"content": text, "mimeType": "text/plain"}}


def build_payload(text: str | None, file: str | None) -> dict[str, Any]:
    if text is not None and file is not None:
        raise CliError("INVALID_ARGUMENT", "give either the text or --file, not both")
    if file is not None:
        if file.startswith("gs://"):
            if not file.lower().endswith(".pdf"):
                raise CliError(
                    "INVALID_ARGUMENT",
                    "a gs:// --file must be a PDF document (entity extraction); give images and text as local files",
                )
            return {"document": {"inputConfig": {"gcsSource": {"inputUris": [file]}}}}
        if file == "-":
            return payload_from_bytes(sys.stdin.buffer.read(), "stdin")
        try:
            data = Path(file).expanduser().read_bytes()
        except OSError as exc:
            raise CliError("INVALID_ARGUMENT", f"cannot read {file}: {exc.strerror or exc}") from None
        return payload_from_bytes(data, file)
    if text == "-":
        return payload_from_bytes(sys.stdin.buffer.read(), "stdin")
    if text is None:
        raise CliError("INVALID_ARGUMENT", "give the text, --file PATH, or - to read stdin")
    return {"textSnippet": {"content": text, "mimeType": "text/plain"}}


def prediction_view(resp: dict[str, Any]) -> Any:
    rows = []
    for p in resp.get("payload", []):
        label, score, detail = p.get("displayName", ""), "", ""
        if "classification" in p:
            score = num(p["classification"].get("score", 0))
        elif "textSentiment" in p:
            label = label or str(p["textSentiment"].get("sentiment", 0))
            detail = f"sentiment {p['textSentiment'].get('sentiment', 0)}"
            score = num(resp.get("metadata", {}).get("sentiment_score", ""))
        elif "textExtraction" in p:
            te = p["textExtraction"]
            seg = te.get("textSegment", {})
            score = num(te.get("score", 0))
            detail = f"{seg.get('content', '')!r} [{seg.get('startOffset', 0)}, {seg.get('endOffset', 0)})"
        elif "imageObjectDetection" in p:
            od = p["imageObjectDetection"]
            score = num(od.get("score", 0))
            v = od.get("boundingBox", {}).get("normalizedVertices", [])
            detail = " ".join(f"({num(x.get('x', 0), 2)}, {num(x.get('y', 0), 2)})" for x in v)
        rows.append((label, score, detail))
    if not rows:
        return "no label scored above the threshold"
    return table([Col("LABEL"), Col("SCORE", justify="right"), Col("DETAIL")], rows)


@command(None)
def predict(
    c: Ctx,
    model: str = typer.Argument(..., help="A deployed model's ID or full name."),
    text: str | None = typer.Argument(None, help="The text to predict on; '-' reads stdin (text or image bytes)."),
    file: str | None = typer.Option(
        None,
        "--file",
        "-f",
        help="A text file or an image (by extension or content); gs://...pdf for "
        "entity extraction documents; '-' = stdin.",
    ),
    param: list[str] | None = typer.Option(
        None, "--param", help="A parameter KEY=VALUE, e.g. score_threshold=0.5 (repeatable)."
    ),
    score_threshold: float | None = typer.Option(None, help="Same as --param score_threshold=VALUE."),
    image: str | None = typer.Option(None, "--image", hidden=True),
) -> None:
    """Online prediction for one text snippet, text file, image or PDF (the model must be deployed).

    Example: automill predict TCN1000000000000000002 "the match ended in a draw"
    """
    body: dict[str, Any] = {"payload": build_payload(text, file if file is not None else image)}
    params = pairs(param, "--param")
    if score_threshold is not None:
        params["score_threshold"] = str(score_threshold)
    if params:
        body["params"] = params
    resp = c.api.call("POST", f"{c.name('models', model)}:predict", body, timeout=300)
    c.emit(resp, lambda: prediction_view(resp))
