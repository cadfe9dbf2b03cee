"""Edge export: the exported TF Lite / ONNX files give the in-process model's scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from automill.core.errors import InvalidArgument
from automill.export.edge import export_package
from automill.learners.efficientnet import HEAD_ONLY, EfficientNetClassifier, OnnxScorer, build


@pytest.fixture(scope="module")
def model() -> EfficientNetClassifier:
    import torch

    torch.manual_seed(0)
    m = EfficientNetClassifier(size=96, cut=HEAD_ONLY)
    m.n_labels_ = 3
    m.net_ = build(96, 3).eval()
    return m


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(6, 96, 96, 3), dtype=np.uint8)


def test_onnx_package_matches_torch(tmp_path: Path, model: EfficientNetClassifier, images: np.ndarray) -> None:
    meta = export_package(model, ["a", "b", "c"], "onnx", "float32", tmp_path, images)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dict.txt", "model.onnx", "onnx_metadata.json"]
    assert meta["parity"]["top1_agreement"] == 1.0 and meta["parity"]["max_abs_score_diff"] < 1e-4
    assert json.loads((tmp_path / "onnx_metadata.json").read_text())["labels"] == ["a", "b", "c"]
    served = OnnxScorer(str(tmp_path / "model.onnx"), 96, 3).predict_proba(images)
    np.testing.assert_allclose(served, model.predict_proba(images), atol=1e-4)
    with pytest.raises(InvalidArgument, match="float32 only"):
        export_package(model, ["a", "b", "c"], "onnx", "int8_weights", tmp_path / "q", images)


def test_tflite_package_fp32_and_int8(tmp_path: Path, model: EfficientNetClassifier, images: np.ndarray) -> None:
    fp32 = export_package(model, ["a", "b", "c"], "tflite", "float32", tmp_path / "fp32", images)
    assert fp32["input"]["shape"] == [1, 96, 96, 3] and fp32["input"]["layout"] == "NHWC"
    assert fp32["parity"]["top1_agreement"] == 1.0 and fp32["parity"]["max_abs_score_diff"] < 1e-4
    int8 = export_package(model, ["a", "b", "c"], "tflite", "int8_weights", tmp_path / "int8", images)
    assert int8["size_bytes"] < fp32["size_bytes"] / 2.5
    assert int8["parity"]["images"] == 6 and int8["parity"]["max_abs_score_diff"] < 0.2
    with pytest.raises(InvalidArgument, match="cannot be exported"):
        export_package(model, ["a"], "core_ml", "float32", tmp_path / "x", images)
