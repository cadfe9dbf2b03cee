"""What image problems (classification, object detection) share.

Decoding and checking images with Pillow (the formats and limits of Google's Vision Edge import),
reading an import row's image, the 80/10/10 split of UNASSIGNED images, the hold-out for early
stopping, a base model's weights for resumable training, and the serving speed measured after training.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.engine.text import holdout_mask
from automill.problems.base import StoredExample
from automill.problems.rows import RowError, assign_split

MAX_IMAGE_BYTES = 30 * 1024 * 1024
#: Pillow format name -> file extension, for the formats Google accepts for image classification.
FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "ICO": "ico"}
#: Larger images than this many pixels are refused as possible decompression bombs.
MAX_PIXELS = 100_000_000
TEST_FRACTION, VALIDATION_FRACTION = 0.1, 0.1  # UNASSIGNED images: 80/10/10


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
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def decode_batch(blobs: Sequence[bytes], size: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    return np.stack([decode_rgb(b, size) for b in blobs])


# -- import rows --------------------------------------------------------------------------------------
def image_path(rest: list[str]) -> str:
    path = rest[0].strip() if rest else ""
    if not path.lower().startswith("gs://"):
        raise RowError(f"GCS_FILE_PATH must be a gs:// path to an image, got {path[:80]!r}")
    return path


def read_image(path: str, read_bytes: Callable[..., bytes], formats: dict[str, str]) -> tuple[bytes, str]:
    """The image's bytes and file extension, or a row error naming the path."""
    try:
        blob = read_bytes(path, max_bytes=MAX_IMAGE_BYTES)
    except Exception as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise RowError(detail if path in detail else f"{path}: {detail}") from exc
    try:
        return blob, check_image(blob, path, formats)
    except InvalidArgument as exc:
        raise RowError(exc.message) from None


# -- training -----------------------------------------------------------------------------------------
def image_splits(
    examples: Sequence[StoredExample],
) -> tuple[list[StoredExample], list[StoredExample], list[StoredExample]]:
    """TRAIN, VALIDATE, TEST; UNASSIGNED images are split 80/10/10 by content hash (stable)."""
    parts: dict[str, list[StoredExample]] = {"TRAIN": [], "VALIDATE": [], "TEST": []}
    for e in examples:
        parts[
            assign_split(e.content, e.ml_use, test_fraction=TEST_FRACTION, validation_fraction=VALIDATION_FRACTION)
        ].append(e)
    return parts["TRAIN"], parts["VALIDATE"], parts["TEST"]


def hold_out(train: list[StoredExample], valid: list[StoredExample]) -> tuple[list[StoredExample], list[StoredExample]]:
    """Without VALIDATE images, part of TRAIN is held out for early stopping."""
    if valid:
        return train, valid
    mask = holdout_mask([e.content for e in train])
    if not 0 < mask.sum() < len(train):
        return train, valid
    return [e for e, m in zip(train, mask, strict=True) if not m], [e for e, m in zip(train, mask, strict=True) if m]


def load_base_state(base_dir: Path, spec_ids: list[str], model_type: str) -> dict[str, Any]:
    """A base model's weights for resumable training, after checking its labels and model type."""
    import torch

    meta = json.loads((base_dir / "model.json").read_text())
    if meta.get("annotation_spec_ids") != spec_ids:
        raise FailedPrecondition(
            "the base model's labels differ from the dataset's current labels: train a new model without baseModelId"
        )
    if meta.get("model_type") != model_type:
        raise FailedPrecondition(f"the base model has model type {meta.get('model_type')!r}, not {model_type!r}")
    state: dict[str, Any] = torch.load(base_dir / "model.pt", weights_only=True)
    return state


# -- serving ------------------------------------------------------------------------------------------
def node_qps(run: Callable[[np.ndarray], Any], images: np.ndarray) -> float:
    """Images per second that one node (this process) serves, one request of one image at a time."""
    run(images[:1])  # warm up
    started = time.perf_counter()
    for i in range(len(images)):
        run(images[i : i + 1])
    return round(len(images) / max(time.perf_counter() - started, 1e-6), 2)
