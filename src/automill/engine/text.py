"""The AutoML engine for text: search learner families within a budget, ensemble, refit.

Usable from a notebook (no DB, HTTP or jobs):

    from automill.engine.text import fit_text
    result = fit_text("multiclass", train_texts, Y_train, valid_texts, Y_valid, deadline=Deadline(300))
    scores = result.model.predict_proba(["some text"])

``kind`` is "multiclass", "multilabel" or "ordinal" (sentiment: classes 0..max in order).
Y matrices are (n, k) 0/1 indicators.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automill.core.deadline import BudgetExhausted, Deadline
from automill.engine.checkpoint import TrialLog
from automill.engine.model_types import text_preset
from automill.engine.progress import two_args
from automill.learners import embedding_linear, minilm, tfidf_linear

log = logging.getLogger("automill.engine")

MODEL_CONVERGED = "MODEL_CONVERGED"
BUDGET_REACHED = "BUDGET_REACHED"
#: Stop when this many trials in a row improved the ensemble's validation loss by less than 0.1 %.
PATIENCE = 4
#: Families tried only after every configuration of the cheap ones.
EXPENSIVE = {"minilm_finetune"}
#: An expensive family's next configuration runs when at least this share of its last trial's time
#: is left: a fine-tune fits its learning-rate schedule to its deadline, so a shorter second one
#: still trains to the end of its schedule, and the ensemble weighs it on validation.
RETUNE_SHARE = 0.5


def _families() -> dict[str, tuple[type, list[dict[str, Any]]]]:
    fams: dict[str, tuple[type, list[dict[str, Any]]]] = {
        "tfidf_linear": (tfidf_linear.TfidfLinearClassifier, tfidf_linear.SEARCH_SPACE),
        "minilm_linear": (embedding_linear.EmbeddingLinearClassifier, embedding_linear.SEARCH_SPACE),
    }
    try:
        from automill.learners import minilm_finetune

        fams["minilm_finetune"] = (minilm_finetune.MiniLMFineTuneClassifier, minilm_finetune.SEARCH_SPACE)
    except ImportError:
        pass
    return fams


@dataclass
class Member:
    family: str
    config: dict[str, Any]
    learner: Any
    weight: float


class TextEnsemble:
    """A weighted average of fitted learners' probabilities (+ per-label thresholds for multilabel)."""

    def __init__(self, kind: str, members: list[Member], thresholds: np.ndarray | None = None) -> None:
        self.kind = kind
        self.members = members
        self.thresholds = thresholds

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        total = sum(m.weight for m in self.members)
        out = sum(m.weight * m.learner.predict_proba(texts) for m in self.members)
        return np.asarray(out) / total

    def describe(self) -> list[dict[str, Any]]:
        return [{"family": m.family, "config": m.config, "weight": m.weight} for m in self.members]


@dataclass
class TextFitResult:
    model: TextEnsemble
    model_type: str
    stop_reason: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    validation_loss: float = 0.0


def validation_loss(kind: str, Y: np.ndarray, P: np.ndarray) -> float:
    P = np.clip(P, 1e-7, 1 - 1e-7)
    if kind == "multilabel":
        return float(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))
    p_true = np.clip((P * Y).sum(axis=1) / np.clip(P.sum(axis=1), 1e-7, None), 1e-7, 1.0)
    return float(-np.mean(np.log(p_true)))


#: Salts the holdout's hash. Unsalted, it was the hash that splits UNASSIGNED rows at import
#: (TEST = the lowest 20 %), so no TRAIN text of such a dataset ever fell in the holdout: training
#: ran without a validation split and stopped after one model.
HOLDOUT_SALT = b"automill-holdout\0"


def holdout_mask(texts: Sequence[str], fraction: float = 0.15) -> np.ndarray:
    """A deterministic validation split of TRAIN (by salted content hash) when no VALIDATE rows exist."""
    vals = [int.from_bytes(hashlib.sha256(HOLDOUT_SALT + t.encode()).digest()[:4], "big") / 2**32 for t in texts]
    return np.array(vals) < fraction


def _candidates(
    preset: Any,
    fams: dict[str, tuple[type, list[dict[str, Any]]]],
    first: list[tuple[str, dict[str, Any]]],
    skip: set[str],
) -> list[tuple[str, dict[str, Any]]]:
    per_family = []
    for fam in preset.families:
        if fam not in fams:
            continue
        space = fams[fam][1]
        idx = preset.space.get(fam)
        per_family.append([(fam, space[i]) for i in (idx if idx is not None else range(len(space)))])
    order = list(first)
    cheap = [c for c in per_family if c and c[0][0] not in EXPENSIVE]
    for i in range(max((len(c) for c in cheap), default=0)):
        order.extend(c[i] for c in cheap if i < len(c))
    for c in per_family:  # expensive families get what the cheap ones leave
        if c and c[0][0] in EXPENSIVE:
            order.extend(c)
    seen: set[str] = set()
    out = []
    for fam, cfg in order:
        key = _key(fam, cfg)
        if key in seen or key in skip or fam not in fams:
            continue
        seen.add(key)
        out.append((fam, cfg))
    return out


def _steps(learner: Any) -> dict[str, int]:
    """A fine-tune's training steps and those of its whole schedule (the deadline may cut it short)."""
    if hasattr(learner, "steps_") and hasattr(learner, "schedule_steps_"):
        return {"steps": int(learner.steps_), "schedule_steps": int(learner.schedule_steps_)}
    return {}


def _key(family: str, config: dict[str, Any]) -> str:
    return f"{family}:{sorted((k, str(v)) for k, v in config.items())}"


def _greedy_ensemble(
    kind: str, Y: np.ndarray, preds: list[np.ndarray], max_members: int
) -> tuple[dict[int, int], float]:
    """Caruana-style selection with replacement -> ({candidate index: count}, loss).

    Runs all ``2 * max_members`` rounds and keeps the best prefix: a round that makes the loss worse
    does not end the search, since a strong model's later copies make room for a weaker one at a
    small weight (1/6, not 1/2), which is where ensembles of unequal members gain.
    """
    counts: dict[int, int] = {}
    current: np.ndarray | None = None
    best: tuple[float, dict[int, int]] = (float("inf"), {})
    for step in range(max_members * 2):
        allowed = range(len(preds)) if len(counts) < max_members else list(counts)
        trial = [
            (validation_loss(kind, Y, preds[i] if current is None else (current * step + preds[i]) / (step + 1)), i)
            for i in allowed
        ]
        loss, i = min(trial)
        counts[i] = counts.get(i, 0) + 1
        current = preds[i] if current is None else (current * step + preds[i]) / (step + 1)
        if loss < best[0] - 1e-6:
            best = (loss, dict(counts))
    return best[1], best[0]


def _thresholds(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Per-label thresholds maximising F1 on validation (0.5 where a label has no positives)."""
    grid = np.arange(0.05, 0.96, 0.05)
    out = np.full(Y.shape[1], 0.5)
    for j in range(Y.shape[1]):
        if Y[:, j].sum() == 0:
            continue
        f1s = []
        for t in grid:
            pred = P[:, j] >= t
            tp = float((pred & (Y[:, j] == 1)).sum())
            denom = pred.sum() + Y[:, j].sum()
            f1s.append(2 * tp / denom if denom else 0.0)
        out[j] = float(grid[int(np.argmax(f1s))])
    return out


def _refit_cost(seconds: float, grow: float) -> float:
    """What refitting a trial on train + validation is expected to cost: its repeat cost grown with
    the data, with a 20 % margin. A refit runs only when this fits in the time left."""
    return 1.2 * grow * seconds


def _fits(family: str, last: float, room: float) -> bool:
    """Whether a family's next trial fits in ``room`` seconds, from its ``last`` trial's time: a
    cheap one needs that time with a 30 % margin, an expensive one (a fine-tune, which fits its
    schedule to its deadline) ``RETUNE_SHARE`` of it."""
    return last * (RETUNE_SHARE if family in EXPENSIVE else 1.3) <= room


def _held_back(
    family: str,
    fitted: list[tuple[str, dict[str, Any], Any, np.ndarray, float]],
    kind: str,
    Y_valid: np.ndarray,
    max_members: int,
    grow: float,
    budget_s: float,
    reserve: float,
    refit: Collection[int] = (),
    remaining: float = float("inf"),
) -> float:
    """Seconds a trial must leave for the refits after the search.

    A cheap trial leaves the flat reserve. An expensive one (a fine-tune) leaves what refitting the
    current ensemble's members not yet refitted (``refit``) would cost, from their trials less the
    embedding their refits find cached, with the refit loop's margin, and 2 % of the budget to score
    validation, so the time the refits do not need goes to it. A refit that would not fit in the
    ``remaining`` seconds even now (an earlier fine-tune's) is skipped by ``_refit``, so nothing is
    held back for it.
    """
    if family not in EXPENSIVE or not fitted or not len(Y_valid):
        return reserve * budget_s
    counts, _ = _greedy_ensemble(kind, Y_valid, [f[3] for f in fitted], max_members)
    costs = (_refit_cost(fitted[i][4], grow) for i in counts if i not in refit) if grow > 1 else ()
    refits = sum(cost for cost in costs if cost < remaining)
    return min(reserve * budget_s, refits + 0.02 * budget_s)


def _refit(
    indices: Iterable[int],
    fitted: list[tuple[str, dict[str, Any], Any, np.ndarray, float]],
    fams: dict[str, tuple[type, list[dict[str, Any]]]],
    texts: list[str],
    Y: np.ndarray,
    multilabel: bool,
    grow: float,
    deadline: Deadline,
) -> dict[int, Any]:
    """Refit these trials on train + validation, the cheapest first, each one the budget still allows."""
    out: dict[int, Any] = {}
    for i in sorted(indices, key=lambda i: fitted[i][4]):
        fam, cfg, _, _, seconds = fitted[i]
        if grow > 1 and _refit_cost(seconds, grow) < deadline.remaining():
            with contextlib.suppress(BudgetExhausted):  # the member keeps its first fit
                out[i] = fams[fam][0](**cfg, multilabel=multilabel).fit(texts, Y, deadline=deadline)
    return out


#: What a person reads in the operation's stage while a family trains.
FAMILY_TEXT = {
    "tfidf_linear": "TF-IDF + linear model",
    "minilm_linear": "MiniLM embeddings + linear model",
    "minilm_finetune": "fine-tuning MiniLM",
}


def _trial_stage(n: int, total: int, family: str, best_loss: float) -> str:
    best = f", best validation loss {best_loss:.3f}" if best_loss < float("inf") else ""
    return f"trial {n} of {total}: {FAMILY_TEXT.get(family, family)}{best}"


#: The share of a search's work the cheap families stand for when an expensive one follows them
#: (which then takes the rest of the budget): progress by trial count would run far ahead of it.
CHEAP_WORK_SHARE = 0.3


def _work_done(candidates: Sequence[tuple[str, dict[str, Any]]], tried: int) -> float:
    """The share of the planned search done after the first ``tried`` candidates, cheap trials
    weighing less than fine-tunes."""
    expensive = sum(1 for fam, _ in candidates if fam in EXPENSIVE)
    cheap = len(candidates) - expensive
    if not expensive or not cheap:
        return tried / max(1, len(candidates))
    done_cheap = sum(1 for fam, _ in candidates[:tried] if fam not in EXPENSIVE)
    return CHEAP_WORK_SHARE * done_cheap / cheap + (1 - CHEAP_WORK_SHARE) * (tried - done_cheap) / expensive


def _signature(kind: str, model_type: str, train: Sequence[str], valid: Sequence[str], Y_valid: np.ndarray) -> str:
    """What a saved trial must match to be reused: the kind, the model type, and the split it was
    trained and scored on (its validation predictions are ensembled with the new trials')."""
    h = hashlib.sha256(f"{kind}|{model_type}|{len(train)}|".encode())
    for t in (*train, *valid):
        h.update(hashlib.sha256(t.encode()).digest())
    h.update(np.ascontiguousarray(Y_valid, dtype=float).tobytes())
    return h.hexdigest()


def fit_text(
    kind: str,
    texts: Sequence[str],
    Y: np.ndarray,
    valid_texts: Sequence[str] | None = None,
    Y_valid: np.ndarray | None = None,
    *,
    deadline: Deadline,
    model_type: str = "",
    progress: Callable[..., None] | None = None,
    base: TextFitResult | None = None,
    reserve: float = 0.2,
    checkpoint_dir: Path | None = None,
) -> TextFitResult:
    """Search, ensemble and refit within ``deadline``; see the module docstring.

    With ``checkpoint_dir``, each finished trial is saved there, and a search started again with the
    same folder (its worker died) takes the trials an earlier attempt finished as done: it searches
    on with the time left, or ensembles them if none is.

    ``progress(percent, stage)`` hears 5..80 % as trials end (the share of the search done, see
    ``_work_done``) with what runs next, and 90 % at the end; a caller adds the budget's spent share between reports
    (engine.progress.BudgetProgress)."""
    report = two_args(progress)
    texts, Y = list(texts), np.asarray(Y, dtype=float)
    type_name, preset = text_preset(model_type)
    if valid_texts is None or Y_valid is None or len(valid_texts) < 10:
        mask = holdout_mask(texts)
        if mask.sum() < 5 or (~mask).sum() < 5:
            mask = np.zeros(len(texts), dtype=bool)
        valid_texts = [t for t, m in zip(texts, mask, strict=True) if m]
        Y_valid = Y[mask]
        train_texts, Y_train = [t for t, m in zip(texts, mask, strict=True) if not m], Y[~mask]
        refit_texts, Y_refit = texts, Y
    else:
        train_texts, Y_train = texts, Y
        refit_texts, Y_refit = texts + list(valid_texts), np.vstack([Y, np.asarray(Y_valid, dtype=float)])
    Y_valid = np.asarray(Y_valid, dtype=float)
    fams = _families()
    multilabel = kind == "multilabel"
    saved = None
    if checkpoint_dir is not None:
        signature = _signature(kind, type_name, train_texts, valid_texts, Y_valid)
        saved = TrialLog(checkpoint_dir / "text-trials", signature)
    resumed = saved.load() if saved is not None else []
    grow = len(refit_texts) / max(1, len(train_texts))
    first = [(m["family"], m["config"]) for m in (base.model.describe() if base else [])]
    skip = {_key(t["family"], t["config"]) for t in (base.trials if base else [])} - {_key(f, c) for f, c in first}
    skip |= {_key(r["fitted"][0], r["fitted"][1]) for r in resumed}
    candidates = _candidates(preset, fams, first, skip)
    trials: list[dict[str, Any]] = list(base.trials) if base else []
    fitted: list[tuple[str, dict[str, Any], Any, np.ndarray, float]] = []
    for r in resumed:  # an earlier attempt's trials
        fitted.append(r["fitted"])
        trials.append(r["trial"])
    if resumed:
        log.info(
            "resuming from an earlier attempt's %d finished trials with %.1f s left", len(resumed), deadline.remaining()
        )
    refit: dict[int, Any] = {}  # trial index -> the same configuration refitted on train + validation
    stop = MODEL_CONVERGED
    best_loss, stale, cheap_done = float("inf"), 0, False
    if fitted and len(valid_texts):
        best_loss = _greedy_ensemble(kind, Y_valid, [f[3] for f in fitted], preset.max_members)[1]
    done_pct = 5.0
    for n, (fam, cfg) in enumerate(candidates):
        if fitted and not len(valid_texts):
            break  # without validation data one model is all a search makes
        if cheap_done and fam not in EXPENSIVE:
            continue
        if deadline.expired():
            stop = BUDGET_REACHED
            break
        if fam in EXPENSIVE and fitted and len(valid_texts) and not refit:
            # Refit the cheap ensemble now, at its measured cost (a cached embedding makes it far
            # cheaper than its first trial), so the fine-tune gets all the rest of the budget.
            counts, _ = _greedy_ensemble(kind, Y_valid, [f[3] for f in fitted], preset.max_members)
            report(done_pct, f"refitting the {len(counts)} chosen models on train + validation")
            refit = _refit(counts, fitted, fams, refit_texts, Y_refit, multilabel, grow, deadline)
        last = next((f[4] for f in reversed(fitted) if f[0] == fam), 0.0)
        held = _held_back(
            fam, fitted, kind, Y_valid, preset.max_members, grow, deadline.seconds, reserve, refit, deadline.remaining()
        )
        if fitted and not _fits(fam, last, deadline.remaining() - held):
            stop = BUDGET_REACHED  # this one would not fit; a cheaper family's next config may
            continue
        report(done_pct, _trial_stage(n + 1, len(candidates), fam, best_loss))
        t0, embedded = time.monotonic(), minilm.embedding_seconds()
        trial_deadline = Deadline(max(0.0, deadline.remaining() - held))
        try:
            learner = fams[fam][0](**cfg, multilabel=multilabel).fit(train_texts, Y_train, deadline=trial_deadline)
            if not len(valid_texts):
                fitted.append((fam, cfg, learner, np.zeros((0, Y.shape[1])), time.monotonic() - t0))
                trial = {"family": fam, "config": cfg, "seconds": round(time.monotonic() - t0, 2)}
                if saved is not None:
                    saved.add({"fitted": fitted[-1], "trial": trial})
                break
            P = learner.predict_proba(valid_texts)
        except BudgetExhausted:
            stop = BUDGET_REACHED
            continue
        seconds = time.monotonic() - t0
        # What this trial would cost again (the next configuration of its family, its refit): the
        # texts it embedded stay cached, so that part is not paid twice.
        fitted.append((fam, cfg, learner, P, max(0.0, seconds - (minilm.embedding_seconds() - embedded))))
        loss = validation_loss(kind, Y_valid, P)
        trials.append(
            {
                "family": fam,
                "config": cfg,
                "validation_loss": round(loss, 5),
                "seconds": round(seconds, 2),
                **_steps(learner),
            }
        )
        if saved is not None:
            saved.add({"fitted": fitted[-1], "trial": trials[-1]})
        log.info("trial %s %s: validation loss %.4f in %.1fs", fam, cfg, loss, seconds)
        _, ens_loss = _greedy_ensemble(kind, Y_valid, [f[3] for f in fitted], preset.max_members)
        stale = stale + 1 if ens_loss > best_loss * 0.999 else 0
        best_loss = min(best_loss, ens_loss)
        done_pct = 5 + 75 * _work_done(candidates, n + 1)
        report(
            done_pct,
            f"trial {n + 1} of {len(candidates)} done: "
            f"{FAMILY_TEXT.get(fam, fam)}, validation loss {loss:.3f}, best ensemble {best_loss:.3f}",
        )
        if stale >= PATIENCE:
            if fam in EXPENSIVE or not any(f in EXPENSIVE for f, _ in candidates[n + 1 :]):
                break  # more budget stopped helping
            # The cheap families stopped helping: the preset's expensive ones still get their turn.
            cheap_done, stale = True, 0
    if not fitted:
        raise BudgetExhausted("the training budget ran out before a single model could be fitted")
    if len(valid_texts):
        counts, loss = _greedy_ensemble(kind, Y_valid, [f[3] for f in fitted], preset.max_members)
    else:
        counts, loss = {0: 1}, 0.0
    P_valid = (
        np.asarray(sum(c * fitted[i][3] for i, c in counts.items()) / sum(counts.values()))
        if len(valid_texts)
        else None
    )
    thresholds = _thresholds(Y_valid, P_valid) if multilabel and P_valid is not None else None
    # Refit the chosen members not refitted yet (a fine-tune that took most of the budget keeps its
    # weights; the cheap members still gain).
    report(
        done_pct, f"ensembling {len(counts)} of {len(fitted)} trained models and refitting them on train + validation"
    )
    refit.update(
        _refit([i for i in counts if i not in refit], fitted, fams, refit_texts, Y_refit, multilabel, grow, deadline)
    )
    members = [Member(fitted[i][0], fitted[i][1], refit.get(i, fitted[i][2]), float(c)) for i, c in counts.items()]
    report(90, "training done")
    return TextFitResult(
        model=TextEnsemble(kind, members, thresholds),
        model_type=type_name,
        stop_reason=stop,
        trials=trials,
        validation_loss=loss,
    )
