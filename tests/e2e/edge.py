"""Running an exported TF Lite file the way a phone app would: resize, normalise, invoke."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def tflite_outputs(path: Path, image: bytes, size: int) -> np.ndarray:
    """The first output of ``path`` for ``image`` (bilinear resize to size x size, (x - 127) / 128)."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    rgb = Image.open(io.BytesIO(image)).convert("RGB").resize((size, size), Image.BILINEAR)
    x = ((np.asarray(rgb, dtype=np.float32) - 127.0) / 128.0)[None]
    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])
