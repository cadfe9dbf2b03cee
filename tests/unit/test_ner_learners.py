"""One contract suite for the entity extraction learners (spaCy NER, the MiniLM tagger) and the engine."""

from __future__ import annotations

import pickle

import pytest
from sklearn.exceptions import NotFittedError

from automill.core.deadline import BudgetExhausted, Deadline
from automill.engine.extraction import fit_extraction, hold_out
from automill.learners.minilm_ner import MiniLMTokenClassifier, _Encoded, casing
from automill.learners.spacy_ner import SpacyNER

PEOPLE = ["Anna Smith", "John Baker", "Maria Lopez", "Peter Brown", "Laura Klein", "David Chen"]
CITIES = ["Paris", "Berlin", "Madrid", "Oslo", "Vienna", "Lisbon"]


def corpus(n: int) -> tuple[list[str], list[list[tuple[int, int, str]]]]:
    texts, spans = [], []
    for i in range(n):
        person, city = PEOPLE[i % len(PEOPLE)], CITIES[(i * 5 + i // 6) % len(CITIES)]
        text = f"Yesterday {person} flew to {city} for talks ."
        start = len("Yesterday ")
        city_at = text.index(city)
        texts.append(text)
        spans.append([(start, start + len(person), "PER"), (city_at, city_at + len(city), "LOC")])
    return texts, spans


LEARNERS = [
    pytest.param(lambda: SpacyNER(max_epochs=15, patience=15), id="spacy_ner"),
    pytest.param(lambda: MiniLMTokenClassifier(epochs=6, lr=3e-4, batch_size=8, min_steps=2), id="minilm_ner"),
]


@pytest.mark.parametrize("make", LEARNERS)
def test_ner_learner_contract(make) -> None:
    texts, spans = corpus(48)
    learner = make()
    with pytest.raises(NotFittedError):
        learner.predict(["x"])
    assert learner.fit(texts, spans, deadline=Deadline(120), valid=corpus(12)) is learner
    assert 0 < learner.valid_f1_ <= 1 and learner.history_
    text = "Yesterday Maria Lopez flew to Oslo for talks ."
    found = learner.predict([text], min_score=0.5)[0]
    assert {(text[s:e], label) for s, e, label, _ in found} == {("Maria Lopez", "PER"), ("Oslo", "LOC")}
    assert all(0.5 <= score <= 1 for *_, score in found)
    again = pickle.loads(pickle.dumps(learner))  # noqa: S301 - a round trip of the test's own object
    assert again.predict([text], min_score=0.5) == learner.predict([text], min_score=0.5)


@pytest.mark.parametrize("make", LEARNERS)
def test_ner_learner_respects_an_expired_deadline(make) -> None:
    with pytest.raises(BudgetExhausted):
        make().fit(*corpus(8), deadline=Deadline(0.0))


def test_minilm_tagger_reads_case_and_words() -> None:
    assert [casing(p) for p in ("paris", "Paris", "EU", "iPhone", "42", "")] == [2, 3, 4, 5, 1, 1]
    from transformers import AutoTokenizer

    from automill.learners import minilm

    enc = _Encoded("Blackburn's EU-talks", AutoTokenizer.from_pretrained(minilm.model_path()))
    text = "Blackburn's EU-talks"
    assert [text[a:b] for a, b in enc.word_spans] == ["Blackburn", "'", "s", "EU", "-", "talks"]
    assert enc.cases[0] == 3 and 4 in enc.cases  # the uncased pieces keep the case of the text


def test_minilm_tagger_long_documents_are_windowed() -> None:
    """Documents longer than a window are cut for training and read back whole, offsets into the text."""
    texts, spans = corpus(40)
    learner = MiniLMTokenClassifier(epochs=6, lr=3e-4, batch_size=8, max_len=16, min_steps=2)
    learner.fit(texts, spans, deadline=Deadline(120))
    long_text = " ".join(texts[:6])  # ~60 pieces: several overlapping windows of 14
    found = learner.predict([long_text], min_score=0.5)[0]
    names = {long_text[s:e] for s, e, label, _ in found if label == "PER"}
    assert names == set(PEOPLE[:6])
    assert all(long_text[s:e].strip() == long_text[s:e] for s, e, *_ in found)


def test_minilm_tagger_resumes_from_a_base() -> None:
    texts, spans = corpus(48)
    base = MiniLMTokenClassifier(epochs=6, lr=3e-4, batch_size=8, min_steps=2).fit(
        texts, spans, deadline=Deadline(120), valid=corpus(12)
    )
    resumed = MiniLMTokenClassifier(epochs=1, lr=1e-5, batch_size=8, min_steps=2).fit(
        texts[:8], spans[:8], deadline=Deadline(120), valid=corpus(12), init=base
    )
    assert resumed.labels_ == base.labels_
    assert resumed.history_[0]["valid_f1"] >= base.valid_f1_ - 0.05  # starts where the base ended


def test_engine_versatile_tries_both_and_keeps_the_better() -> None:
    texts, spans = corpus(60)
    result = fit_extraction(texts, spans, deadline=Deadline(90), model_type="mobile-versatile-1")
    assert [t["family"] for t in result.trials] == ["spacy_ner", "minilm_ner"]
    best = max(result.trials, key=lambda t: t.get("valid_f1", -1))
    assert result.learner.family == best["family"] and result.model_type == "mobile-versatile-1"
    low = fit_extraction(
        texts, spans, corpus(10)[0], corpus(10)[1], deadline=Deadline(30), model_type="mobile-low-latency-1"
    )
    assert [t["family"] for t in low.trials] == ["spacy_ner"]
    resumed = fit_extraction(
        texts,
        spans,
        corpus(10)[0],
        corpus(10)[1],
        deadline=Deadline(30),
        model_type="mobile-low-latency-1",
        base=low.learner,
    )
    assert resumed.learner.family == "spacy_ner" and low.learner.valid_f1_ > 0
    assert resumed.learner.history_[0]["valid_f1"] >= low.learner.valid_f1_ - 0.05  # starts where the base ended


def test_hold_out_is_stable_and_disjoint() -> None:
    texts, spans = corpus(200)
    texts = [f"{t} {i}" for i, t in enumerate(texts)]
    keep, held = hold_out(texts, spans)
    assert 5 < len(held[0]) < 40 and len(keep[0]) + len(held[0]) == 200
    assert hold_out(texts, spans) == (keep, held) and not set(keep[0]) & set(held[0])


def test_minilm_tagger_decodes_only_valid_bio_sequences() -> None:
    import numpy as np

    tagger = MiniLMTokenClassifier()
    tagger.labels_ = ["LOC", "PER"]  # tags: O, B-LOC, I-LOC, B-PER, I-PER
    probs = np.array(
        [
            [0.1, 0.1, 0.6, 0.1, 0.1],  # I-LOC cannot open a sequence
            [0.1, 0.1, 0.2, 0.1, 0.5],  # I-PER is only allowed after B-PER
            [0.9, 0.025, 0.025, 0.025, 0.025],
        ]
    )
    assert tagger._viterbi(probs).tolist() == [3, 4, 0]
    assert tagger._viterbi(np.array([[0.1, 0.8, 0.04, 0.03, 0.03], [0.1, 0.1, 0.7, 0.05, 0.05]])).tolist() == [1, 2]
