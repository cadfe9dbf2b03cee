"""One contract suite for every text learner (cf. sklearn's check_estimator)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from automill.core.deadline import BudgetExhausted, Deadline
from automill.learners.embedding_linear import EmbeddingLinearClassifier
from automill.learners.minilm_finetune import MiniLMFineTuneClassifier, _FrozenStates
from automill.learners.tfidf_linear import TfidfLinearClassifier

POS = ["a great and wonderful film", "truly delightful, I loved it", "great acting, great story", "wonderful fun"]
NEG = ["a boring and awful film", "truly dreadful, I hated it", "awful acting, boring story", "dreadful mess"]
TEXTS = [f"{t} {i}" for i in range(6) for t in POS + NEG]
Y = np.vstack([np.array([[1, 0]] * 4 + [[0, 1]] * 4, dtype=float)] * 6)

LEARNERS = [
    pytest.param(lambda **kw: TfidfLinearClassifier(char_ngrams=(2, 4), **kw), id="tfidf_linear"),
    pytest.param(lambda **kw: EmbeddingLinearClassifier(**kw), id="minilm_linear"),
    pytest.param(
        lambda **kw: MiniLMFineTuneClassifier(
            epochs=3, lr=1e-4, min_steps=2, batch_size=16, pooling="mean", head_lr=1e-3, dropout=0.0, **kw
        ),
        id="minilm_finetune",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize("make", LEARNERS)
def test_learner_contract(make) -> None:
    learner = make()
    with pytest.raises(NotFittedError):
        learner.predict_proba(["x"])
    assert learner.fit(TEXTS, Y, deadline=Deadline(120)) is learner
    P = learner.predict_proba(["a great wonderful film", "an awful boring film"])
    assert P.shape == (2, 2) and np.all((P >= 0) & (P <= 1))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
    assert P[0, 0] > P[0, 1] and P[1, 1] > P[1, 0]
    # Rows come back in the order asked, whatever order a learner batches them in.
    np.testing.assert_allclose(learner.predict_proba(["an awful boring film"]), P[1:], atol=1e-5)
    again = pickle.loads(pickle.dumps(learner))  # noqa: S301 - a round trip of the test's own object
    np.testing.assert_allclose(again.predict_proba(["a great wonderful film"]), P[:1], atol=1e-6)


@pytest.mark.parametrize("make", LEARNERS)
def test_learner_multilabel(make) -> None:
    Yml = np.hstack([Y, Y[:, :1]])  # a third label that co-occurs with the first
    learner = make(multilabel=True).fit(TEXTS, Yml, deadline=Deadline(120))
    P = learner.predict_proba(["a great wonderful film"])
    assert P.shape == (1, 3) and P[0, 0] > 0.5 and P[0, 2] > 0.5 and P[0, 1] < 0.5


@pytest.mark.parametrize("make", LEARNERS)
def test_learner_respects_an_expired_deadline(make) -> None:
    with pytest.raises(BudgetExhausted):
        make().fit(TEXTS, Y, deadline=Deadline(0.0))


def test_finetune_caching_frozen_layers_is_exact(monkeypatch) -> None:
    """Frozen layers' output computed once per text trains the same weights as the full forward pass."""
    kw = {
        "epochs": 2,
        "lr": 1e-4,
        "min_steps": 2,
        "batch_size": 16,
        "pooling": "mean",
        "head_lr": 1e-3,
        "dropout": 0.0,
        "freeze_layers": 2,
        "bf16": False,
    }
    cached = MiniLMFineTuneClassifier(**kw)
    assert cached._caches()
    cached.fit(TEXTS, Y)
    monkeypatch.setattr(MiniLMFineTuneClassifier, "_caches", lambda self: False)
    full = MiniLMFineTuneClassifier(**kw).fit(TEXTS, Y)
    assert cached.steps_ == full.steps_ == 6
    np.testing.assert_allclose(cached.predict_proba(TEXTS[:8]), full.predict_proba(TEXTS[:8]), atol=1e-5)


def test_finetune_frozen_states_are_computed_lazily_within_the_memory_limit(monkeypatch) -> None:
    """No up-front pass over the training texts, and no more kept than the limit allows, with the same result."""
    kw = {
        "lr": 1e-4,
        "min_steps": 2,
        "batch_size": 8,
        "pooling": "mean",
        "head_lr": 1e-3,
        "dropout": 0.0,
        "freeze_layers": 2,
        "bf16": False,
    }
    seen: list[int] = []
    kept: list[int] = []
    real = _FrozenStates.batch

    def spy(self, idx):
        out = real(self, idx)
        seen.append(len(idx))
        kept.append(len(self.kept))
        assert self.bytes <= self.limit
        return out

    monkeypatch.setattr(_FrozenStates, "batch", spy)
    texts, labels = TEXTS * 4, np.vstack([Y] * 4)  # 192 texts; 2 steps planned from 24 batches
    roomy = MiniLMFineTuneClassifier(**kw, epochs=16 / len(texts)).fit(texts, labels)
    assert roomy.steps_ == 2 and seen == [8, 8] and kept == [8, 16]  # the 16 texts the steps saw, not all 192
    seen.clear()
    kept.clear()
    tight = MiniLMFineTuneClassifier(**kw, epochs=16 / len(texts))
    tight.cache_bytes = 3 * 8 * 384 * 4  # room for a few texts' states only: the rest are recomputed
    tight.fit(texts, labels)
    assert tight.steps_ == 2 and seen == [8, 8] and 0 < kept[0] <= kept[1] < 8
    np.testing.assert_allclose(tight.predict_proba(TEXTS[:8]), roomy.predict_proba(TEXTS[:8]), atol=1e-5)


def test_finetune_in_bfloat16_trains_float32_weights_that_predict_like_float32_training() -> None:
    """bfloat16 matrix products while training (where the CPU makes them faster) keep float32 weights,
    follow the same schedule and land near float32 training, not on it."""
    import torch

    from automill.learners import minilm

    assert isinstance(minilm.bf16_faster(), bool)
    kw = {
        "epochs": 3,
        "lr": 1e-4,
        "min_steps": 2,
        "batch_size": 16,
        "pooling": "mean",
        "head_lr": 1e-3,
        "dropout": 0.0,
        "freeze_layers": 2,
    }
    bf = MiniLMFineTuneClassifier(**kw, bf16=True).fit(TEXTS, Y)
    fp = MiniLMFineTuneClassifier(**kw, bf16=False).fit(TEXTS, Y)
    assert bf.bf16_ is True and fp.bf16_ is False and bf.steps_ == fp.steps_ == 9
    assert {p.dtype for p in bf.model_.parameters()} == {torch.float32}
    P_bf, P_fp = bf.predict_proba(TEXTS[:8]), fp.predict_proba(TEXTS[:8])
    assert P_bf.dtype == np.float32 and (P_bf.argmax(1) == Y[:8].argmax(1)).all()
    assert np.abs(P_bf - P_fp).max() > 1e-6  # the products did run in bfloat16
    np.testing.assert_allclose(P_bf, P_fp, atol=0.05)
    assert MiniLMFineTuneClassifier(**kw).fit(TEXTS, Y).bf16_ is minilm.bf16_faster()


def test_embedding_seconds_count_only_texts_not_cached() -> None:
    """The engine subtracts this from a trial's cost to estimate its refit: cached texts must add nothing."""
    from automill.learners import minilm

    fresh = [f"a sentence never embedded before, number {i} of test_embedding_seconds" for i in range(40)]
    before = minilm.embedding_seconds()
    first = minilm.embed(fresh)
    spent = minilm.embedding_seconds() - before
    assert spent > 0
    again = minilm.embed(fresh[::-1])
    assert minilm.embedding_seconds() - before == spent
    np.testing.assert_array_equal(again, first[::-1])
