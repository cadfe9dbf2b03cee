"""The engine for image classification: the model types as presets of the EfficientNet-Lite0
learner, training within the budget, and resumable training from a base model's weights.

    result = fit_image("multiclass", load, train_items, Y, valid_items, Y_valid,
                       deadline=Deadline(600), model_type="mobile-versatile-1")
    scores = result.model.predict_proba(load(test_items, result.model.size))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automill.core.deadline import Deadline
from automill.core.errors import InvalidArgument
from automill.learners.efficientnet import HEAD_ONLY, EfficientNetClassifier

#: Model type -> learner parameters. ``cut`` is the first trained block (HEAD_ONLY: a linear head
#: on frozen features); ``export_quantization`` is the default of ExportModel for the type.
IMAGE_PRESETS: dict[str, dict[str, Any]] = {
    # Smallest and fastest: 160 px input, the backbone frozen, a linear head trained on the cached
    # features of each image and its mirror image; exported with int8 weights by default.
    "mobile-low-latency-1": {
        "size": 160,
        "cut": HEAD_ONLY,
        "max_epochs": 40,
        "lr": 3e-3,
        "flip_views": True,
        "patience": 4,
    },
    # Default for mobile: 224 px, the last block and the head conv fine-tuned (with augmentation) on
    # cached block-15 activations. (Deeper blocks cost far more: depthwise-conv backward is slow on CPU.)
    "mobile-versatile-1": {"size": 224, "cut": 15, "max_epochs": 15, "lr": 1e-3, "patience": 3},
    # The last three blocks and the head fine-tuned with augmentation on cached block-13 activations.
    "mobile-high-accuracy-1": {"size": 224, "cut": 13, "max_epochs": 20, "lr": 6e-4, "patience": 3},
    # The most accurate the budget allows: the whole network fine-tuned with augmentation.
    "cloud": {"size": 224, "cut": 0, "max_epochs": 25, "lr": 4e-4, "patience": 4},
}
DEFAULT_IMAGE_MODEL_TYPE = "cloud"  # Google's default for image classification
EXPORT_QUANTIZATION = {"mobile-low-latency-1": "int8_weights"}


def image_preset(model_type: str) -> tuple[str, dict[str, Any]]:
    name = model_type or DEFAULT_IMAGE_MODEL_TYPE
    if name not in IMAGE_PRESETS:
        hint = " (Core ML export is not available here)" if name.startswith("mobile-core-ml") else ""
        raise InvalidArgument(
            f"modelType {model_type!r} is not an image classification model type{hint}; use one "
            f"of {sorted(IMAGE_PRESETS)}",
            field="model.image_classification_model_metadata.model_type",
        )
    return name, IMAGE_PRESETS[name]


@dataclass
class ImageFitResult:
    model: EfficientNetClassifier
    model_type: str
    stop_reason: str
    info: dict[str, Any] = field(default_factory=dict)


def fit_image(
    kind: str,
    load: Callable[[Sequence[Any], int], np.ndarray],
    items: Sequence[Any],
    Y: np.ndarray,
    valid_items: Sequence[Any],
    Y_valid: np.ndarray,
    *,
    deadline: Deadline,
    model_type: str = "",
    base_state: dict[str, Any] | None = None,
    progress: Callable[[float], None] | None = None,
) -> ImageFitResult:
    """Train the model type's learner within ``deadline`` (from ``base_state`` when resuming)."""
    name, params = image_preset(model_type)
    if base_state is not None:
        params = {**params, "lr": params["lr"] / 2}  # continue gently from trained weights
    learner = EfficientNetClassifier(**params, multilabel=kind == "multilabel")
    learner.fit(load, items, Y, valid_items, Y_valid, deadline=deadline, init=base_state, progress=progress)
    return ImageFitResult(
        learner,
        name,
        learner.stop_reason_,
        {
            "epochs": learner.epochs_,
            "best_epoch": learner.best_epoch_,
            "cache_seconds": round(learner.cache_seconds_, 1),
            "validation_loss": round(learner.valid_loss_, 5),
            **learner.get_params(),
        },
    )
