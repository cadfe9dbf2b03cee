"""bench/extraction: Automill's entity extraction engine against spaCy's default NER trained from
blank, on conll2003 (same split, same wall-clock budget, one run).

    .venv/bin/python -m bench.extraction --budget 600 --high-accuracy-budget 3600

Systems (each trained on TRAIN, with VALIDATE for early stopping where it uses one):
- spacy_default: `spacy.blank("en")` + the default `ner` component, spaCy's usual loop
  (compounding batch sizes 4..32, dropout 0.1) until the budget ends; the last epoch is kept
- automill/<model type>: `automill.engine.extraction.fit_extraction` as the service runs it, for
  `mobile-low-latency-1` (spaCy NER with early stopping), `mobile-versatile-1` (the default: spaCy
  NER, then the MiniLM tagger, the better on VALIDATE kept) at ``--budget``, and
  `mobile-high-accuracy-1` (the MiniLM tagger) at ``--high-accuracy-budget``

Metric: entity-level micro precision, recall and F1 on TEST, exact span-and-type match (spans
with score >= 0.5 for Automill). Prints a table, writes bench/results/extraction-<timestamp>.{json,md}
and the extraction section of docs/benchmarks.md. Measures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from automill.core.deadline import Deadline
from automill.engine.extraction import fit_extraction
from automill.metrics.extraction import entity_counts
from automill.problems.text_extraction.rows import parse_jsonl
from bench import report

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "conll2003"
Docs = tuple[list[str], list[list[tuple[int, int, str]]]]


def load(split: str) -> Docs:
    parsed = parse_jsonl((DATA / f"{split}.jsonl").read_text(encoding="utf-8"), uri=split, ml_use="TRAIN")
    return [e.content for e in parsed.examples], [[(s.start, s.end, s.label) for s in e.spans] for e in parsed.examples]


def spacy_default(train: Docs, valid: Docs, budget: float) -> Any:
    import spacy
    from spacy.training import Example
    from spacy.util import compounding, minibatch

    random.seed(0)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    for doc in train[1]:
        for _, _, label in doc:
            ner.add_label(label)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": s}) for t, s in zip(*train, strict=True)]
    optimizer = nlp.initialize(lambda: examples)
    deadline = Deadline(budget)
    while not deadline.expired():
        random.shuffle(examples)
        for batch in minibatch(examples, size=compounding(4.0, 32.0, 1.001)):
            if deadline.expired():
                break
            nlp.update(batch, drop=0.1, sgd=optimizer)

    def predict(texts: list[str]) -> list[list[tuple[int, int, str, float]]]:
        return [[(e.start_char, e.end_char, e.label_, 1.0) for e in d.ents] for d in nlp.pipe(texts, batch_size=256)]

    return predict


def automill(model_type: str) -> Any:
    def system(train: Docs, valid: Docs, budget: float) -> Any:
        result = fit_extraction(
            train[0], train[1], valid[0], valid[1], deadline=Deadline(budget), model_type=model_type
        )
        print(json.dumps({"model_type": model_type, "trials": result.trials}), flush=True)
        return lambda texts: result.learner.predict(texts, min_score=0.5)

    return system


SYSTEMS = {
    "spacy_default": spacy_default,
    "automill/mobile-low-latency-1": automill("mobile-low-latency-1"),
    "automill/mobile-versatile-1 (default)": automill("mobile-versatile-1"),
    "automill/mobile-high-accuracy-1": automill("mobile-high-accuracy-1"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=600, help="seconds per system")
    ap.add_argument("--high-accuracy-budget", type=float, default=3600, help="seconds for mobile-high-accuracy-1")
    ap.add_argument("--systems", default="", help="comma-separated subset of the systems (default: all)")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    train, valid, test = load("train"), load("validation"), load("test")
    started = datetime.now(UTC)
    rows = []
    chosen = [n for n in SYSTEMS if not args.systems or n.split(" ")[0] in args.systems.split(",")]
    for name in chosen:
        budget = args.high_accuracy_budget if "high-accuracy" in name else args.budget
        t0 = time.monotonic()
        predict = SYSTEMS[name](train, valid, budget)
        train_s = time.monotonic() - t0
        t1 = time.monotonic()
        predicted = predict(test[0])
        ms = 1000 * (time.monotonic() - t1) / len(test[0])
        tp, fp, fn = entity_counts(test[1], predicted, threshold=0.5)
        p, r = tp / max(1, tp + fp), tp / max(1, tp + fn)
        row = {
            "system": name,
            "budget_s": budget,
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(2 * p * r / max(1e-9, p + r), 4),
            "train_s": round(train_s, 1),
            "latency_ms_batch": round(ms, 3),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    cols = ["budget_s", "precision", "recall", "f1", "train_s", "latency_ms_batch"]
    md = report.markdown_table(rows, cols)
    header = (
        f"conll2003 TEST ({len(test[0])} sentences), entity-level micro scores, exact match (Automill: spans "
        f"scored >= 0.5). Budget {args.budget:.0f} s per system, {args.high_accuracy_budget:.0f} s for "
        f"mobile-high-accuracy-1; run {started:%Y-%m-%d %H:%M} UTC on 2 cores; latency is per sentence, "
        f"predicting the whole TEST set in batches."
    )
    report.publish(
        "extraction",
        "Entity extraction",
        started,
        {"budget_s": args.budget, "high_accuracy_budget_s": args.high_accuracy_budget, "results": rows},
        header,
        md,
        docs=not args.no_docs,
    )


if __name__ == "__main__":
    main()
