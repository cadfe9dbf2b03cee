"""bench/text_ceiling: how far fine-tuning the packaged MiniLM can take ag_news on this machine.

    .venv/bin/python -m bench.text_ceiling                  # about 35 minutes on 2 cores

Issue 3 asks mobile-high-accuracy-1 to be clearly above the default on ag_news. This measures the
room there is: the fine-tune alone and ensembled with cheap members from the default's search
space, from what mobile-high-accuracy-1 gives it on a slow machine (``--finetune-s``) up to its
whole schedule (no deadline), trained on TRAIN or on TRAIN + VALIDATE, each against the default
(mobile-versatile-1 at ``--budget``) on the same TEST rows with paired 95 % bootstrap intervals.
It prints the machine's fp32 matmul rate first, since the fine-tune is compute-bound.

Ensembles of a fine-tune trained on TRAIN are chosen on VALIDATE as the engine does (greedy
selection with replacement, up to 6 members). A fine-tune trained on TRAIN + VALIDATE has no held-out
predictions, so its ensemble reuses the weights chosen for the same configuration trained on TRAIN.
It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from automill.core.deadline import Deadline
from automill.engine.text import _greedy_ensemble, fit_text
from automill.learners import embedding_linear, minilm_finetune, tfidf_linear
from bench import report
from bench.text import load, metrics, paired

#: mobile-high-accuracy-1's first fine-tune configuration; the runs below vary its frozen layers.
FINETUNE = minilm_finetune.SEARCH_SPACE[0]
#: Cheap members from the default's search space: TF-IDF word + character n-grams, and the MiniLM head.
CHEAP = {
    "tfidf": (tfidf_linear.TfidfLinearClassifier, tfidf_linear.SEARCH_SPACE[1]),
    "minilm_head": (embedding_linear.EmbeddingLinearClassifier, embedding_linear.SEARCH_SPACE[0]),
}


def matmul_gflops() -> float:
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    t0 = time.monotonic()
    for _ in range(10):
        a @ b
    return 10 * 2 * 2048**3 / (time.monotonic() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=600, help="the default model type's budget (seconds)")
    ap.add_argument(
        "--finetune-s",
        type=float,
        default=300,
        help="the deadline of the short fine-tunes: what mobile-high-accuracy-1 left it on a slow machine",
    )
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    started = datetime.now(UTC)
    gflops = matmul_gflops()
    print(json.dumps({"matmul_gflops": round(gflops, 1)}), flush=True)
    data = load("ag_news")
    (tr, Ytr), (va, Yva), (te, Yte) = data["TRAIN"], data["VALIDATE"], data["TEST"]
    all_texts, Y_all = tr + va, np.vstack([Ytr, Yva])

    t0 = time.monotonic()
    default = fit_text("multiclass", tr, Ytr, va, Yva, deadline=Deadline(args.budget), model_type="mobile-versatile-1")
    P_default = default.model.predict_proba(te)
    rows: list[dict[str, Any]] = []

    def record(name: str, P: np.ndarray, seconds: float, extra: dict[str, Any], against_default: bool = True) -> None:
        row = {
            "system": name,
            "train_s": round(seconds, 1),
            **extra,
            **{k: round(float(v), 4) for k, v in metrics("multiclass", Yte, P).items()},
        }
        if against_default:
            diff, lo, hi = paired("multiclass", Yte, (P, None), (P_default, None))["accuracy"]
            row.update({"accuracy - default": round(diff, 4), "ci95_low": round(lo, 4), "ci95_high": round(hi, 4)})
        print(json.dumps(row, default=str), flush=True)
        rows.append(row)

    record(
        "default (mobile-versatile-1)",
        P_default,
        time.monotonic() - t0,
        {"members": default.model.describe()},
        against_default=False,
    )
    # The cheap members, on TRAIN (for validation-chosen ensembles) and on TRAIN + VALIDATE.
    cheap: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cheap_all: dict[str, np.ndarray] = {}
    for name, (cls, cfg) in CHEAP.items():
        m = cls(**cfg).fit(tr, Ytr)
        cheap[name] = (m.predict_proba(va), m.predict_proba(te))
        cheap_all[name] = cls(**cfg).fit(all_texts, Y_all).predict_proba(te)

    weights: dict[int, dict[int, int]] = {}
    runs = [
        ("fine-tune, 2 frozen layers, deadline", 2, args.finetune_s, False),
        ("fine-tune, 4 frozen layers, deadline", 4, args.finetune_s, False),
        ("fine-tune, 4 frozen layers, whole schedule", 4, None, False),
        ("fine-tune, 4 frozen layers, whole schedule, TRAIN + VALIDATE", 4, None, True),
    ]
    names = [*CHEAP, "fine-tune"]
    for label, frozen, deadline_s, on_all in runs:
        t0 = time.monotonic()
        learner = minilm_finetune.MiniLMFineTuneClassifier(**{**FINETUNE, "freeze_layers": frozen}).fit(
            all_texts if on_all else tr, Y_all if on_all else Ytr, deadline=Deadline(deadline_s) if deadline_s else None
        )
        seconds = time.monotonic() - t0
        P_test = learner.predict_proba(te)
        name = label + (f" {deadline_s:.0f} s" if deadline_s else "")
        record(name, P_test, seconds, {"steps": learner.steps_})
        if on_all:
            counts = weights[frozen]  # no held-out predictions: the weights chosen on TRAIN's fine-tune
            tests = [*cheap_all.values(), P_test]
        else:
            counts, _ = _greedy_ensemble(
                "multiclass", Yva, [v for v, _ in cheap.values()] + [learner.predict_proba(va)], 6
            )
            weights[frozen] = counts
            tests = [t for _, t in cheap.values()] + [P_test]
        P_ens = sum(c * tests[i] for i, c in counts.items()) / sum(counts.values())
        record(name + " + cheap members", P_ens, seconds, {"weights": {names[i]: c for i, c in counts.items()}})
    cols = ["accuracy", "macro_f1", "accuracy - default", "ci95_low", "ci95_high", "train_s", "steps"]
    md = report.markdown_table(rows, cols)
    header = (
        f"ag_news (TRAIN {len(tr)}, VALIDATE {len(va)}, TEST {len(te)} rows); {os.cpu_count()} CPU cores, fp32 matmul "
        f"{gflops:.0f} GFLOPS; {platform.python_version()}; run {started:%Y-%m-%d %H:%M} UTC. The default at "
        f"--budget {args.budget:.0f} s; short fine-tunes at a {args.finetune_s:.0f} s deadline. Intervals: "
        "paired bootstrap of TEST rows (1000 resamples) for accuracy minus the default's."
    )
    report.publish(
        "text_ceiling",
        "Text: room above the default on ag_news",
        started,
        {"matmul_gflops": gflops, "budget_s": args.budget, "finetune_s": args.finetune_s, "results": rows},
        header,
        md,
        docs=not args.no_docs,
    )


if __name__ == "__main__":
    main()
