"""The AutoML engine for entity extraction: the learner families a model type allows, trained within
the budget, the best on the validation split kept.

Usable without the server:

    from automill.engine.extraction import fit_extraction
    result = fit_extraction(train_texts, train_spans, valid_texts, valid_spans, deadline=Deadline(600))
    result.learner.predict(["Angela Merkel visited Paris ."], min_score=0.5)

Spans are ``(start, end, label)`` character offsets, end exclusive.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from automill.core.deadline import BudgetExhausted, Deadline
from automill.core.errors import FailedPrecondition
from automill.engine.model_types import text_preset
from automill.engine.progress import two_args
from automill.learners.minilm_ner import MiniLMTokenClassifier
from automill.learners.spacy_ner import SpacyNER

log = logging.getLogger("automill.engine")

SpanList = list[tuple[int, int, str]]
Docs = tuple[Sequence[str], Sequence[SpanList]]


@dataclass(frozen=True)
class Stage:
    family: str
    #: Share of the budget left when the stage starts (the last stage takes all that is left).
    share: float
    params: dict[str, Any] = field(default_factory=dict)


#: Model types (the text model type names): which learners, in which order, with what share of the budget.
EXTRACTION_PRESETS: dict[str, tuple[Stage, ...]] = {
    # spaCy's CNN tagger alone: the fastest model to serve.
    "mobile-low-latency-1": (Stage("spacy_ner", 1.0),),
    # spaCy first (it stops early on small data), then the MiniLM tagger; the better on VALIDATE is kept.
    "mobile-versatile-1": (Stage("spacy_ner", 0.3), Stage("minilm_ner", 1.0, {"epochs": 4.0})),
    # The MiniLM tagger with all the budget, more epochs.
    "mobile-high-accuracy-1": (Stage("minilm_ner", 1.0, {"epochs": 8.0}),),
}
LEARNERS: dict[str, type] = {"spacy_ner": SpacyNER, "minilm_ner": MiniLMTokenClassifier}
#: What a person reads in the operation's stage while a learner trains.
STAGE_TEXT = {"spacy_ner": "training the spaCy entity tagger", "minilm_ner": "fine-tuning the MiniLM entity tagger"}


@dataclass
class ExtractionFitResult:
    learner: Any
    model_type: str
    stop_reason: str
    trials: list[dict[str, Any]]


def hold_out(texts: Sequence[str], spans: Sequence[SpanList], fraction: float = 0.1) -> tuple[Docs, Docs]:
    """Without VALIDATE documents, a stable ``fraction`` of TRAIN (by content hash) is held out."""
    keep: tuple[list[str], list[SpanList]] = ([], [])
    held: tuple[list[str], list[SpanList]] = ([], [])
    for t, s in zip(texts, spans, strict=True):
        bucket = held if hashlib.sha256(t.encode()).digest()[0] < 256 * fraction else keep
        bucket[0].append(t)
        bucket[1].append(s)
    return keep, held


def fit_extraction(
    texts: Sequence[str],
    spans: Sequence[SpanList],
    valid_texts: Sequence[str] = (),
    valid_spans: Sequence[SpanList] = (),
    *,
    deadline: Deadline,
    model_type: str = "",
    progress: Callable[..., None] = lambda pct, stage=None: None,
    base: Any = None,
) -> ExtractionFitResult:
    """Train the model type's learners in turn within ``deadline``; keep the best on validation F1.

    ``base`` (a fitted learner of an earlier model of the same type and labels) makes this
    resumable training: only the base's family is trained, starting from its weights.
    """
    report = two_args(progress)
    name = text_preset(model_type)[0]
    stages = EXTRACTION_PRESETS[name]
    if base is not None:
        stages = tuple(s for s in stages if s.family == base.family) or (Stage(base.family, 1.0),)
    train: Docs = (texts, spans)
    valid: Docs = (valid_texts, valid_spans)
    if not valid_texts and len(texts) >= 20:
        train, valid = hold_out(texts, spans)  # for early stopping and the choice between learners
    best: tuple[float, Any] = (-1.0, None)
    trials: list[dict[str, Any]] = []
    for i, stage in enumerate(stages):
        last = i == len(stages) - 1
        if deadline.expired():
            break
        seconds = deadline.remaining() * (1.0 if last else stage.share)
        best_f1 = f", best validation F1 {best[0]:.3f}" if best[1] is not None else ""
        report(
            2 + 83 * deadline.fraction_used(),
            f"learner {i + 1} of {len(stages)}: {STAGE_TEXT.get(stage.family, stage.family)}{best_f1}",
        )
        learner = LEARNERS[stage.family](**stage.params)
        kwargs = {"init": base} if base is not None else {}
        try:
            learner.fit(train[0], train[1], deadline=Deadline(seconds), valid=valid if valid[0] else None, **kwargs)
        except BudgetExhausted as exc:
            trials.append({"family": stage.family, "error": str(exc)})
            log.info("extraction: %s ran out of budget: %s", stage.family, exc)
            continue
        f1 = learner.valid_f1_ if learner.valid_f1_ is not None else 0.0
        trials.append(
            {
                "family": stage.family,
                "valid_f1": round(f1, 4),
                "epochs": learner.epochs_,
                "stop_reason": learner.stop_reason_,
                "seconds": round(seconds, 1),
            }
        )
        log.info("extraction: %s valid F1 %.4f", stage.family, f1)
        if f1 > best[0]:
            best = (f1, learner)
        report(
            2 + 83 * deadline.fraction_used(),
            f"learner {i + 1} of {len(stages)} done: {STAGE_TEXT.get(stage.family, stage.family)}, "
            f"validation F1 {f1:.3f}",
        )
    if best[1] is None:
        if trials and all("error" in t for t in trials):
            raise BudgetExhausted("; ".join(t["error"] for t in trials))
        raise FailedPrecondition("no entity model could be trained")
    return ExtractionFitResult(best[1], name, best[1].stop_reason_, trials)
