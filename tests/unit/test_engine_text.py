"""The text engine: search within a budget, ensemble, stop reasons, resumable search."""

from __future__ import annotations

import numpy as np
import pytest

from automill.core.deadline import Deadline
from automill.core.errors import InvalidArgument
from automill.engine.text import (
    BUDGET_REACHED,
    MODEL_CONVERGED,
    _fits,
    _greedy_ensemble,
    _held_back,
    fit_text,
    validation_loss,
)

WORDS = {0: "goal match team striker", 1: "chip code software laptop", 2: "bread soup pizza salad"}


def data(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    texts = [" ".join(rng.choice(WORDS[k].split(), 3)) + f" item {rng.integers(1000)}" for k in y]
    return texts, np.eye(3)[y]


def test_low_latency_converges_and_predicts() -> None:
    texts, Y = data(300, 0)
    vt, vY = data(60, 1)
    result = fit_text("multiclass", texts, Y, vt, vY, deadline=Deadline(60), model_type="mobile-low-latency-1")
    assert result.stop_reason == MODEL_CONVERGED and result.model_type == "mobile-low-latency-1"
    assert [m.family for m in result.model.members] == ["tfidf_linear"]
    assert len(result.trials) == 2  # the preset's two configurations
    tt, tY = data(60, 2)
    P = result.model.predict_proba(tt)
    assert (P.argmax(1) == tY.argmax(1)).mean() > 0.95


def test_tiny_budget_stops_with_budget_reached() -> None:
    # Enough texts that embedding them alone takes longer than the budget, even with warm caches.
    texts, Y = data(3000, 7)
    result = fit_text("multiclass", texts, Y, deadline=Deadline(2.0), model_type="mobile-versatile-1")
    assert result.stop_reason == BUDGET_REACHED
    assert result.model.members  # at least the first model is kept


def test_multilabel_gets_per_label_thresholds() -> None:
    texts, Y = data(300, 0)
    Y = np.hstack([Y, Y[:, :1]])
    vt, vY = data(80, 1)
    vY = np.hstack([vY, vY[:, :1]])
    result = fit_text("multilabel", texts, Y, vt, vY, deadline=Deadline(60), model_type="mobile-low-latency-1")
    assert result.model.thresholds is not None and result.model.thresholds.shape == (4,)
    assert np.all((result.model.thresholds > 0) & (result.model.thresholds < 1))


def test_resumed_search_keeps_base_history_and_skips_tried_configs() -> None:
    texts, Y = data(300, 0)
    vt, vY = data(60, 1)
    base = fit_text("multiclass", texts, Y, vt, vY, deadline=Deadline(60), model_type="mobile-low-latency-1")
    again = fit_text(
        "multiclass", texts, Y, vt, vY, deadline=Deadline(60), model_type="mobile-low-latency-1", base=base
    )
    assert again.trials[: len(base.trials)] == base.trials
    tried = [t["config"] for t in again.trials[len(base.trials) :]]
    assert all(c in [m.config for m in base.model.members] for c in tried)  # only the base members are refit


def test_unknown_model_type_is_refused() -> None:
    texts, Y = data(50, 0)
    with pytest.raises(InvalidArgument):
        fit_text("multiclass", texts, Y, deadline=Deadline(10), model_type="mobile-core-ml-versatile-1")


def test_validation_loss_prefers_the_better_model() -> None:
    Y = np.eye(3)[[0, 1, 2, 0]]
    good = np.where(Y == 1, 0.9, 0.05)
    bad = np.full_like(Y, 1 / 3)
    assert validation_loss("multiclass", Y, good) < validation_loss("multiclass", Y, bad)


def test_high_accuracy_reaches_fine_tuning_after_the_cheap_families_stall() -> None:
    """Patience ends the cheap part of the search, not the search: the preset's fine-tune still runs."""
    texts, Y = data(200, 3)
    vt, vY = data(60, 4)
    result = fit_text("multiclass", texts, Y, vt, vY, deadline=Deadline(120), model_type="mobile-high-accuracy-1")
    families = [t["family"] for t in result.trials]
    assert "minilm_finetune" in families, families
    cheap = families[: families.index("minilm_finetune")]
    assert set(cheap) <= {"tfidf_linear", "minilm_linear"}
    tune = result.trials[families.index("minilm_finetune")]
    assert 0 < tune["steps"] <= tune["schedule_steps"], tune  # how far the deadline let it go, for diagnosis
    assert all("steps" not in t for t in result.trials if t["family"] != "minilm_finetune")


def test_a_fine_tune_holds_back_only_what_the_refits_cost() -> None:
    """The flat reserve stays for cheap trials; a fine-tune leaves the ensemble's measured refit cost."""
    Y = np.eye(3)[np.arange(30) % 3]
    good, poor = np.where(Y == 1, 0.9, 0.05), np.full_like(Y, 1 / 3)
    fitted = [("tfidf_linear", {}, None, good, 10.0), ("minilm_linear", {}, None, poor, 50.0)]
    # Only the good member is in the ensemble: 10 s x 1.2 margin x 1.5 growth + 2 % of 600 s.
    held = _held_back("minilm_finetune", fitted, "multiclass", Y, 4, 1.5, 600.0, 0.2)
    assert held == pytest.approx(10 * 1.2 * 1.5 + 12)
    assert _held_back("tfidf_linear", fitted, "multiclass", Y, 4, 1.5, 600.0, 0.2) == pytest.approx(120)
    # Refits that would cost more than the flat reserve never take more than it.
    slow = [("tfidf_linear", {}, None, good, 100.0)]
    assert _held_back("minilm_finetune", slow, "multiclass", Y, 4, 1.5, 600.0, 0.2) == pytest.approx(120)
    # A refit that would not fit in what is left (an earlier fine-tune's: 1.2 x 1.5 x 100 s = 180 s)
    # is skipped after the search, so a second fine-tune gets that time.
    assert _held_back("minilm_finetune", slow, "multiclass", Y, 4, 1.5, 600.0, 0.2, remaining=170.0) == pytest.approx(
        12
    )
    assert _held_back("minilm_finetune", slow, "multiclass", Y, 4, 1.5, 600.0, 0.2, remaining=190.0) == pytest.approx(
        120
    )
    # Members refitted already (before the fine-tune) cost nothing more.
    assert _held_back("minilm_finetune", fitted, "multiclass", Y, 4, 1.5, 600.0, 0.2, refit={0}) == pytest.approx(12)
    # Nothing to refit (no VALIDATE rows to add): only the scoring margin is held back.
    assert _held_back("minilm_finetune", fitted, "multiclass", Y, 4, 1.0, 600.0, 0.2) == pytest.approx(12)


def test_a_second_fine_tune_runs_in_half_the_time_of_the_first_a_cheap_trial_needs_more() -> None:
    """A fine-tune fits its schedule to the time it gets; a cheap learner does not, so it needs a margin."""
    assert _fits("minilm_finetune", 300.0, 160.0)
    assert not _fits("minilm_finetune", 300.0, 140.0)
    assert _fits("tfidf_linear", 100.0, 140.0)
    assert not _fits("tfidf_linear", 100.0, 120.0)


def test_the_ensemble_finds_a_weak_member_worth_a_small_weight() -> None:
    """Half a weak model makes the loss worse, a seventh of it better: selection must not stop at the first."""
    Y = np.eye(2)[[0] * 10 + [1] * 10]
    strong = np.where(Y == 1, 0.97, 0.03)
    strong[:2] = [0.05, 0.95]  # confidently wrong on two rows
    weak = np.where(Y == 1, 0.4, 0.6)
    weak[:2] = [0.99, 0.01]  # right on those two, mildly wrong elsewhere
    assert validation_loss("multiclass", Y, (strong + weak) / 2) > validation_loss("multiclass", Y, strong)
    counts, loss = _greedy_ensemble("multiclass", Y, [strong, weak], 4)
    assert counts == {0: 7, 1: 1}
    assert loss == pytest.approx(validation_loss("multiclass", Y, (7 * strong + weak) / 8))
    assert loss < validation_loss("multiclass", Y, strong)
    # No more distinct members than the preset allows, however many candidates help.
    counts, _ = _greedy_ensemble("multiclass", Y, [strong, weak, weak * 0.99 + 0.005, weak * 0.98 + 0.01], 2)
    assert len(counts) <= 2


def test_unassigned_train_rows_get_a_validation_holdout() -> None:
    """UNASSIGNED rows are split at import by their text's hash; the holdout taken from the TRAIN
    side must not use the same hash, or it is always empty (it was: training then ran without a
    validation split)."""
    from automill.engine.text import holdout_mask
    from automill.problems.rows import assign_split

    texts = [f"message number {i} about things" for i in range(2000)]
    train = [t for t in texts if assign_split(t, "UNASSIGNED") == "TRAIN"]
    share = holdout_mask(train).mean()
    assert 0.12 < share < 0.18, share
