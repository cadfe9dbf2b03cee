"""The EfficientNet-Lite0 learner: learns, stops for the right reason, resumes from weights."""

from __future__ import annotations

import numpy as np
import pytest

from automill.core.deadline import BudgetExhausted, Deadline
from automill.core.errors import InvalidArgument
from automill.engine.image import fit_image, image_preset
from automill.learners.efficientnet import HEAD_ONLY, EfficientNetClassifier


def toy(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Reddish vs bluish noisy images."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    items = []
    for k in y:
        img = rng.integers(0, 120, size=(32, 32, 3))
        img[..., 0 if k == 0 else 2] += 120
        items.append(img.astype(np.uint8))
    return items, np.eye(2)[y]


def load(items: list[np.ndarray], size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(i).resize((size, size))) for i in items])


def test_head_only_learns_and_converges() -> None:
    X, Y = toy(40, 0)
    V, VY = toy(20, 1)
    m = EfficientNetClassifier(size=64, cut=HEAD_ONLY, max_epochs=6, lr=3e-3).fit(
        load, X, Y, V, VY, deadline=Deadline(120)
    )
    assert m.stop_reason_ == "MODEL_CONVERGED" and 1 <= m.epochs_ <= 6
    T, TY = toy(20, 2)
    assert (m.predict_proba(load(T, 64)).argmax(1) == TY.argmax(1)).mean() >= 0.9


def test_fine_tune_top_block_and_resume() -> None:
    X, Y = toy(40, 0)
    V, VY = toy(20, 1)
    first = fit_image("multiclass", load, X, Y, V, VY, deadline=Deadline(120), model_type="mobile-versatile-1")
    assert first.model.cut == 15 and first.info["epochs"] >= 1
    resumed = fit_image(
        "multiclass",
        load,
        X,
        Y,
        V,
        VY,
        deadline=Deadline(120),
        model_type="mobile-versatile-1",
        base_state=first.model.state_dict(),
    )
    T, TY = toy(20, 2)
    P = resumed.model.predict_proba(load(T, 224))
    assert (P.argmax(1) == TY.argmax(1)).mean() >= 0.9


def test_budget_stops() -> None:
    X, Y = toy(40, 0)
    V, VY = toy(20, 1)
    with pytest.raises(BudgetExhausted):
        EfficientNetClassifier(size=64, cut=HEAD_ONLY).fit(load, X, Y, V, VY, deadline=Deadline(0.0))
    m = EfficientNetClassifier(size=64, cut=HEAD_ONLY, max_epochs=10_000, patience=10_000).fit(
        load, X, Y, V, VY, deadline=Deadline(15)
    )
    assert m.stop_reason_ == "BUDGET_REACHED"


def test_unknown_image_model_type() -> None:
    with pytest.raises(InvalidArgument, match="Core ML"):
        image_preset("mobile-core-ml-versatile-1")
    assert image_preset("")[0] == "cloud"


def test_multilabel_head() -> None:
    X, Y = toy(40, 0)
    Y = np.hstack([Y, np.ones((len(Y), 1))])  # a third label on every image
    V, VY = toy(20, 1)
    VY = np.hstack([VY, np.ones((len(VY), 1))])
    m = EfficientNetClassifier(size=64, cut=HEAD_ONLY, max_epochs=8, lr=3e-3, multilabel=True).fit(
        load, X, Y, V, VY, deadline=Deadline(120)
    )
    P = m.predict_proba(load(V, 64))
    assert P.shape == (20, 3) and (P[:, 2] > 0.5).all()  # sigmoid scores, not a softmax
    assert ((P[:, :2] > 0.5) == (VY[:, :2] > 0.5)).mean() >= 0.9
