"""Decoding and checking images with Pillow: the formats and limits of Google's Vision Edge import."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np

from automill.core.errors import InvalidArgument

MAX_IMAGE_BYTES = 30 * 1024 * 1024
#: Pillow format name -> file extension, for the formats Google accepts for image classification.
FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "ICO": "ico"}
#: Larger images than this many pixels are refused as possible decompression bombs.
MAX_PIXELS = 100_000_000


def check_image(data: bytes, where: str, formats: dict[str, str] = FORMATS) -> str:
    """Decode ``data`` fully; return its file extension or raise InvalidArgument naming ``where``."""
    from PIL import Image

    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidArgument(f"{where}: the image is {len(data)} bytes, over the limit of {MAX_IMAGE_BYTES} (30 MB)")
    if not data:
        raise InvalidArgument(f"{where}: the image file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if fmt not in formats:
                    raise InvalidArgument(
                        f"{where}: image format {fmt or 'unknown'} is not supported; use one of {', '.join(formats)}"
                    )
                if img.width * img.height > MAX_PIXELS:
                    raise InvalidArgument(
                        f"{where}: the image is {img.width}x{img.height} pixels, over the limit of {MAX_PIXELS} pixels"
                    )
                img.load()  # decodes everything: truncated or corrupt data fails here
    except InvalidArgument:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise InvalidArgument(f"{where}: refused as a possible decompression bomb: {exc}") from None
    except Exception as exc:
        raise InvalidArgument(f"{where}: not a readable image ({type(exc).__name__}: {exc})") from None
    return formats[fmt]


def decode_rgb(data: bytes, size: int) -> np.ndarray:
    """uint8 HWC RGB, resized (squashed) to size x size with bilinear filtering."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)  # the first frame of a GIF/TIFF
        rgb = img.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def decode_batch(blobs: Sequence[bytes], size: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack([decode_rgb(b, size) for b in blobs])
