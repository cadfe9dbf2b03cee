"""spaCy NER trained from a blank English pipeline, within a deadline; entity scores from beam search.

Estimator contract: ``fit(texts, spans, *, deadline, valid=None)`` returns self; ``predict(texts)``
returns, per text, non-overlapping ``(start, end, label, score)`` character spans.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from sklearn.exceptions import NotFittedError

from automill.core.deadline import BudgetExhausted, Deadline
from automill.metrics.extraction import entity_f1

SpanList = list[tuple[int, int, str]]


class SpacyNER:
    family = "spacy_ner"
    nlp_: Any  # the trained spaCy pipeline, set by fit

    def __init__(
        self, *, max_epochs: int = 30, dropout: float = 0.2, patience: int = 3, beam_width: int = 8, seed: int = 0
    ) -> None:
        self.max_epochs = max_epochs
        self.dropout = dropout
        self.patience = patience
        self.beam_width = beam_width
        self.seed = seed

    def fit(
        self,
        texts: Sequence[str],
        spans: Sequence[SpanList],
        *,
        deadline: Deadline,
        valid: tuple[Sequence[str], Sequence[SpanList]] | None = None,
        init: SpacyNER | None = None,
    ) -> SpacyNER:
        """Train from blank; with ``init`` (a fitted model with the same labels), continue from its weights."""
        import spacy
        from spacy.training import Example
        from spacy.util import minibatch

        if deadline.expired():
            raise BudgetExhausted("no time left to train the NER model")
        random.seed(self.seed)
        nlp = spacy.blank("en")
        ner = nlp.add_pipe("ner")
        labels = (
            sorted({s[2] for doc in spans for s in doc}) if init is None else list(init.nlp_.get_pipe("ner").labels)
        )
        for label in labels:
            ner.add_label(label)
        examples = [
            Example.from_dict(nlp.make_doc(t), {"entities": [(s, e, lab) for s, e, lab in doc]})
            for t, doc in zip(texts, spans, strict=True)
        ]
        optimizer = nlp.initialize(lambda: examples[:2000])
        if init is not None:
            nlp.from_bytes(init.nlp_.to_bytes())
        best: tuple[float, bytes | None] = (-1.0, None)
        stale, epoch = 0, 0
        self.history_: list[dict[str, float]] = []
        if init is not None and valid:  # the base model is the first candidate: resuming never makes it worse
            self.nlp_ = nlp
            best = (self._f1(valid), nlp.to_bytes())
            self.history_.append({"epoch": 0, "valid_f1": round(best[0], 4), "seconds": 0.0})
        for epoch in range(1, self.max_epochs + 1):
            random.shuffle(examples)
            t0 = time.monotonic()
            for batch in minibatch(examples, size=32):
                if deadline.expired():
                    break
                nlp.update(batch, drop=self.dropout, sgd=optimizer)
            self.nlp_ = nlp
            f1 = self._f1(valid) if valid else 0.0
            self.history_.append({"epoch": epoch, "valid_f1": round(f1, 4), "seconds": round(time.monotonic() - t0, 1)})
            if f1 > best[0]:
                best, stale = (f1, nlp.to_bytes()), 0
            elif best[0] > 0:  # patience counts once something was learned (small data starts slowly)
                stale += 1
            if deadline.expired() or stale >= self.patience:
                break
        self.stop_reason_ = "BUDGET_REACHED" if deadline.expired() else "MODEL_CONVERGED"
        if best[1] is not None and valid:
            nlp.from_bytes(best[1])
        self.nlp_ = nlp
        self.epochs_ = epoch
        self.valid_f1_ = best[0] if valid else None
        return self

    def _f1(self, valid: tuple[Sequence[str], Sequence[SpanList]]) -> float:
        """Entity F1 of the spans as served (beam scores, threshold 0.5), so the kept epoch is the best served."""
        return entity_f1(valid[1], self.predict(list(valid[0]), min_score=0.5))

    def predict(self, texts: Sequence[str], *, min_score: float = 0.0) -> list[list[tuple[int, int, str, float]]]:
        """Beam-search entity probabilities, resolved greedily into non-overlapping spans."""
        if not hasattr(self, "nlp_"):
            raise NotFittedError("SpacyNER is not fitted yet")
        ner = self.nlp_.get_pipe("ner")
        out: list[list[tuple[int, int, str, float]]] = []
        for start in range(0, len(texts), 128):
            docs = [self.nlp_.make_doc(t) for t in texts[start : start + 128]]
            beams = ner.beam_parse(docs, beam_width=self.beam_width)
            for doc, scored in zip(docs, ner.scored_ents(beams), strict=True):
                taken: list[tuple[int, int, str, float]] = []
                used = [False] * len(doc)
                for (ts, te, label), score in sorted(scored.items(), key=lambda kv: -kv[1]):
                    if score < min_score or any(used[ts:te]):
                        continue
                    for i in range(ts, te):
                        used[i] = True
                    span = doc[ts:te]
                    taken.append((span.start_char, span.end_char, label, float(min(1.0, score))))
                out.append(sorted(taken))
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if "nlp_" in state:
            nlp = state.pop("nlp_")
            state["nlp_bytes_"] = nlp.to_bytes()
            state["labels_"] = list(nlp.get_pipe("ner").labels)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        data = state.pop("nlp_bytes_", None)
        labels = state.pop("labels_", [])
        self.__dict__.update(state)
        if data is not None:
            import spacy

            nlp = spacy.blank("en")
            ner = nlp.add_pipe("ner")
            for label in labels:
                ner.add_label(label)
            nlp.initialize()
            nlp.from_bytes(data)
            self.nlp_ = nlp
