"""The engine for image classification: the model types as presets of the EfficientNet-Lite0
learner, training within the budget, and resumable training from a base model's weights.

    result = fit_image("multiclass", load, train_items, Y, valid_items, Y_valid,
                       deadline=Deadline(600), model_type="mobile-versatile-1")
    scores = result.model.predict_proba(load(test_items, result.model.size))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automill.core.deadline import BudgetExhausted, Deadline
from automill.core.errors import InvalidArgument
from automill.engine.checkpoint import BestState, Saved
from automill.learners.efficientnet import HEAD_ONLY, EfficientNetClassifier
from automill.learners.epochs import Progress

log = logging.getLogger("automill.engine")

#: A retried training resumes from its checkpoint only with at least this many seconds left (it
#: computes the image features again first); with less, the checkpoint is the model.
MIN_RESUME_SECONDS = 3.0

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
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
) -> ImageFitResult:
    """Train the model type's learner within ``deadline`` (from ``base_state`` when resuming).

    With ``checkpoint_dir``, the best weights so far are saved there as training goes, and a
    training started again with the same folder (its worker died) resumes from them: it trains on
    with the time left, keeping the saved weights unless an epoch beats them, or, with too little
    time left, makes them the model."""
    name, params = image_preset(model_type)
    multilabel = kind == "multilabel"
    best = BestState(checkpoint_dir / "image.pt") if checkpoint_dir is not None else None
    saved = _resumable(best, name, Y.shape[1])
    init = saved.state if saved is not None else base_state
    if init is not None:
        params = {**params, "lr": params["lr"] / 2}  # continue gently from trained weights
    learner = EfficientNetClassifier(**params, multilabel=multilabel)
    if saved is not None:
        log.info(
            "resuming from an earlier attempt's best weights (epoch %s, validation loss %.4f) with %.1f s left",
            saved.info.get("epoch"),
            saved.score,
            deadline.remaining(),
        )
    if saved is not None and deadline.remaining() < MIN_RESUME_SECONDS:
        learner = _from_saved(saved, params, Y.shape[1], multilabel)
    else:
        info = {"model_type": name, "n_labels": int(Y.shape[1])}
        on_best = (lambda state, epoch, score: best.offer(state, score, {**info, "epoch": epoch})) if best else None
        try:
            learner.fit(
                load,
                items,
                Y,
                valid_items,
                Y_valid,
                deadline=deadline,
                init=init,
                progress=progress,
                on_best=on_best,
                init_score=saved.score if saved is not None else None,
            )
        except BudgetExhausted:
            if saved is None:
                raise
            learner = _from_saved(saved, params, Y.shape[1], multilabel)
        if best is not None:
            best.flush()
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


def _resumable(best: BestState | None, model_type: str, n_labels: int) -> Saved | None:
    """An earlier attempt's best weights, if they are for this model type and label count."""
    saved = best.load() if best is not None else None
    if saved is None or saved.info.get("model_type") != model_type or saved.info.get("n_labels") != n_labels:
        return None
    return saved


def _from_saved(saved: Saved, params: dict[str, Any], n_labels: int, multilabel: bool) -> EfficientNetClassifier:
    """The model an earlier attempt saved, as it was (no time is left to train it further)."""
    learner = EfficientNetClassifier.from_state(
        saved.state, {k: params[k] for k in ("size", "cut", "max_epochs", "lr")}, n_labels, multilabel
    )
    learner.stop_reason_, learner.epochs_ = "BUDGET_REACHED", 0
    learner.best_epoch_, learner.valid_loss_, learner.cache_seconds_ = int(saved.info.get("epoch", 0)), saved.score, 0.0
    return learner
