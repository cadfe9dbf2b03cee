"""PDF text layer -> the API's ``Document`` (document_text, layout, dimensions, page count).

pdfplumber (pdfminer.six) reads the words and their boxes. Words on one visual line are joined by
spaces, lines by newlines, pages by a blank line; each line is a layout entry (TOKEN segments are
the words' offsets would be finer, lines keep the message small) with its normalised bounding box.
A PDF without a text layer (a scan) is refused: OCR is not done here.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Any

from automill.core.errors import InvalidArgument

MAX_PDF_BYTES = 20 * 1024 * 1024
#: Pages read at most: a small file can hold thousands of pages (or streams that inflate to gigabytes),
#: so the byte limit alone does not bound the work of reading one.
MAX_PDF_PAGES = 100


def extract_document(data: bytes, uri: str) -> dict[str, Any]:
    """-> the v1 JSON of a ``Document`` with ``documentText`` built from the text layer."""
    import pdfplumber

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except Exception as exc:
        raise InvalidArgument(f"{uri} is not a readable PDF: {type(exc).__name__}: {exc}") from None
    parts: list[str] = []
    layout: list[dict[str, Any]] = []
    offset = 0
    width = height = 0.0
    with pdf:
        pages = list(pdf.pages)
        if len(pages) > MAX_PDF_PAGES:
            raise InvalidArgument(f"{uri} has {len(pages)} pages, over the limit of {MAX_PDF_PAGES}")
        for page_no, page in enumerate(pages, start=1):
            width, height = max(width, float(page.width)), max(height, float(page.height))
            lines: list[list[dict[str, Any]]] = []
            for word in page.extract_words(use_text_flow=True):
                if lines and abs(word["top"] - lines[-1][-1]["top"]) < 0.5 * (word["bottom"] - word["top"]):
                    lines[-1].append(word)
                else:
                    lines.append([word])
            if page_no > 1 and parts:
                parts.append("\n")
                offset += 1
            for line in lines:
                text = unicodedata.normalize("NFC", " ".join(w["text"] for w in line))
                x0, x1 = min(w["x0"] for w in line), max(w["x1"] for w in line)
                top, bottom = min(w["top"] for w in line), max(w["bottom"] for w in line)
                pw, ph = float(page.width), float(page.height)
                box = [(x0 / pw, top / ph), (x1 / pw, top / ph), (x1 / pw, bottom / ph), (x0 / pw, bottom / ph)]
                layout.append(
                    {
                        "textSegment": {"startOffset": str(offset), "endOffset": str(offset + len(text))},
                        "pageNumber": page_no,
                        "textSegmentType": "TOKEN",
                        "boundingPoly": {"normalizedVertices": [{"x": round(x, 6), "y": round(y, 6)} for x, y in box]},
                    }
                )
                parts.append(text + "\n")
                offset += len(text) + 1
    text = "".join(parts)
    if not text.strip():
        raise InvalidArgument(
            f"{uri} has no text layer (a scanned PDF?); Automill does not run OCR, so there is "
            "no text to annotate or predict on"
        )
    return {
        "documentText": {"content": text, "mimeType": "text/plain"},
        "layout": layout,
        "pageCount": len(pages),
        "documentDimensions": {"unit": "POINT", "width": width, "height": height},
    }
