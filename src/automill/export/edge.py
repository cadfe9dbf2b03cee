"""Edge exports of image models: a TF Lite package (litert-torch, checked with ai-edge-litert) or
ONNX (torch.onnx, checked with onnxruntime), each with a parity report against the in-process model.

    report = export_package(model, labels, "tflite", "int8_weights", out_dir, check_images)

The package folder holds the model file, ``dict.txt`` (one label per line, in output order),
``tflite_metadata.json`` / ``onnx_metadata.json`` (input shape and layout, normalisation, labels,
outputs, parity) and nothing else.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from automill.core.errors import InvalidArgument
from automill.learners.efficientnet import MEAN, STD, EfficientNetClassifier, export_onnx

FORMATS = ("tflite", "onnx")
QUANTIZATIONS = ("float32", "int8_weights")


def export_package(
    model: EfficientNetClassifier,
    labels: list[str],
    fmt: str,
    quantization: str,
    out_dir: Path,
    check_images: np.ndarray,
) -> dict[str, Any]:
    """Write the package into ``out_dir`` (a local folder); return its metadata (with ``parity``)."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"model_format {fmt!r} cannot be exported; use one of {list(FORMATS)}")
    if quantization not in QUANTIZATIONS:
        raise InvalidArgument(
            f"params.quantization must be one of {list(QUANTIZATIONS)}, got {quantization!r}",
            field="output_config.params.quantization",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    reference = model.predict_proba(check_images) if len(check_images) else np.zeros((0, len(labels)))
    x = (check_images.astype(np.float32) - MEAN) / STD  # NHWC
    if fmt == "tflite":
        path = out_dir / "model.tflite"
        _to_tflite(model.scorer(), model.size, path, quantization)
        scores = _run_tflite(path, x).reshape(len(x), -1)
        layout, shape = "NHWC", [1, model.size, model.size, 3]
    else:
        if quantization != "float32":
            raise InvalidArgument(
                "ONNX export is float32 only here; int8_weights is for tflite",
                field="output_config.params.quantization",
            )
        path = out_dir / "model.onnx"
        _to_onnx(model, path)
        scores = _run_onnx(path, x.transpose(0, 3, 1, 2))
        layout, shape = "NCHW", [-1, 3, model.size, model.size]
    agree = float((scores.argmax(1) == reference.argmax(1)).mean()) if len(reference) else None
    meta = {
        "format": fmt,
        "quantization": quantization,
        "model_file": path.name,
        "size_bytes": path.stat().st_size,
        "input": {
            "shape": shape,
            "layout": layout,
            "dtype": "float32",
            "color": "RGB",
            "resize": f"bilinear, the whole image to {model.size}x{model.size}",
            "normalization": {"mean": MEAN, "std": STD, "formula": "(pixel - mean) / std"},
        },
        "output": {
            "shape": [shape[0], len(labels)],
            "dtype": "float32",
            "scores": "sigmoid per label" if model.multilabel else "softmax over labels",
        },
        "labels": labels,
        "parity": {
            "images": len(reference),
            "top1_agreement": agree,
            "max_abs_score_diff": float(np.abs(scores - reference).max()) if len(reference) else None,
        },
        "export_seconds": round(time.monotonic() - started, 1),
    }
    (out_dir / "dict.txt").write_text("".join(f"{label}\n" for label in labels))
    (out_dir / f"{fmt}_metadata.json").write_text(json.dumps(meta, indent=2))
    return meta


def _to_tflite(module: Any, size: int, path: Path, quantization: str) -> None:
    """``module`` (NCHW float input) as TF Lite with an NHWC input, optionally with int8 weights."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import litert_torch
    import torch

    channel_last = litert_torch.to_channel_last_io(module.eval(), args=[0]).eval()
    edge = litert_torch.convert(channel_last, (torch.zeros(1, size, size, 3),))
    tmp = path.with_suffix(".fp32.tmp")
    edge.export(str(tmp))
    if quantization == "int8_weights":  # weight-only int8: ~3.5x smaller, fp32 speed (ML-STACK.md)
        from ai_edge_quantizer import quantizer, recipe

        q = quantizer.Quantizer(str(tmp))
        q.load_quantization_recipe(recipe.weight_only_wi8_afp32())
        path.write_bytes(q.quantize().quantized_model)
        tmp.unlink()
    else:
        os.replace(tmp, path)


def _run_tflite(path: Path, x: np.ndarray, threads: int = 2) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    outputs = []
    for i in range(len(x)):
        it.set_tensor(inp, x[i : i + 1])
        it.invoke()
        outputs.append(it.get_tensor(out)[0].copy())
    return np.stack(outputs) if outputs else np.zeros((0,), dtype=np.float32)


def _to_onnx(model: EfficientNetClassifier, path: Path) -> None:
    export_onnx(model, str(path))


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if not len(x):
        return np.zeros((0, 0), dtype=np.float32)
    return sess.run(None, {"image": np.ascontiguousarray(x, dtype=np.float32)})[0]


def export_detector_package(
    detector: Any, labels: list[str], fmt: str, quantization: str, out_dir: Path, check_images: np.ndarray
) -> dict[str, Any]:
    """The object detector's package: raw outputs [N, labels + 4, G, G] plus the decoding recipe in
    the metadata; parity compares the decoded boxes of the exported file with the trained model's."""
    from automill.learners.centernet import decode
    from automill.metrics.detection import iou

    if fmt not in FORMATS:
        raise InvalidArgument(f"model_format {fmt!r} cannot be exported; use one of {list(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    n = len(labels)
    reference = detector.raw(check_images)
    x = (check_images.astype(np.float32) - MEAN) / STD
    if fmt == "tflite":
        path = out_dir / "model.tflite"
        _to_tflite(detector.model_, detector.size, path, quantization)
        raw = _run_tflite(path, x)
        shape = [1, detector.size, detector.size, 3]
    else:
        if quantization != "float32":
            raise InvalidArgument(
                "ONNX export is float32 only here; int8_weights is for tflite",
                field="output_config.params.quantization",
            )
        path = out_dir / "model.onnx"
        detector.export_onnx(str(path))
        raw = _run_onnx(path, x.transpose(0, 3, 1, 2))
        shape = [-1, 3, detector.size, detector.size]
    agree = []
    box_diff = 0.0
    for ours, theirs in zip(decode(raw.reshape(reference.shape), n, 0.3, 1), decode(reference, n, 0.3, 1), strict=True):
        if not ours or not theirs:
            agree.append(not ours and not theirs)
            continue
        same = ours[0][0] == theirs[0][0] and iou(np.array([ours[0][2]]), np.array([theirs[0][2]]))[0, 0] >= 0.9
        agree.append(bool(same))
        box_diff = max(box_diff, float(np.abs(np.array(ours[0][2]) - np.array(theirs[0][2])).max()))
    grid = detector.grid
    meta = {
        "format": fmt,
        "quantization": quantization,
        "model_file": path.name,
        "size_bytes": path.stat().st_size,
        "input": {
            "shape": shape,
            "layout": "NHWC" if fmt == "tflite" else "NCHW",
            "dtype": "float32",
            "color": "RGB",
            "resize": f"bilinear, the whole image to {detector.size}x{detector.size}",
            "normalization": {"mean": MEAN, "std": STD, "formula": "(pixel - mean) / std"},
        },
        "output": {
            "shape": [shape[0], n + 4, grid, grid],
            "dtype": "float32",
            "layout": "NCHW",
            "channels": [f"heatmap:{label}" for label in labels] + ["width", "height", "offset_x", "offset_y"],
        },
        "postprocessing": {
            "grid": grid,
            "peaks": "a cell is a detection of label k when heatmap[k] is the maximum of its 3x3 neighbourhood; "
            "score = heatmap[k]; keep the best max_bounding_box_count above score_threshold",
            "box": "cx = (col + offset_x) / grid, cy = (row + offset_y) / grid; box = (cx - width/2, cy - height/2, "
            "cx + width/2, cy + height/2), clipped to 0..1; normalised, top-left origin",
            "defaults": {"score_threshold": 0.5, "max_bounding_box_count": 100},
        },
        "labels": labels,
        "parity": {
            "images": len(reference),
            "top_box_agreement": float(np.mean(agree)) if agree else None,
            "max_top_box_coordinate_diff": box_diff,
            "max_abs_output_diff": float(np.abs(raw.reshape(reference.shape) - reference).max())
            if len(reference)
            else None,
        },
        "export_seconds": round(time.monotonic() - started, 1),
    }
    (out_dir / "dict.txt").write_text("".join(f"{label}\n" for label in labels))
    (out_dir / f"{fmt}_metadata.json").write_text(json.dumps(meta, indent=2))
    return meta
