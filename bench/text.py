"""bench/text: Automill's text engine against the usual baselines, same split, same budget, one run.

    .venv/bin/python -m bench.text --budget 300            # all four datasets
    .venv/bin/python -m bench.text --budget 60 --datasets sms_spam

Systems (each gets the same wall-clock budget, embeddings are recomputed per system):
- tfidf_lr: TF-IDF (word 1-2 grams) + LogisticRegression, C (and the multi-label threshold) tuned on VALIDATE
- flaml: FLAML AutoML (lgbm, lrl1) on the same TF-IDF features, VALIDATE as its validation set
- minilm_lr: packaged MiniLM sentence embeddings + LogisticRegression, C tuned on VALIDATE
- automill/<model type>: automill.engine.text.fit_text with that model type

Prints a table and writes bench/results/text-<timestamp>.{json,md} and docs/benchmarks.md, with a
second table of paired differences on the same TEST rows (Automill's default against the best peer,
mobile-high-accuracy-1 against the default) and their 95 % bootstrap intervals, so that "above"
can be told from TEST-set noise. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, cohen_kappa_score, f1_score, mean_absolute_error
from sklearn.multiclass import OneVsRestClassifier

from automill.core.deadline import Deadline
from automill.engine.text import fit_text
from automill.learners import minilm
from bench import report

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
KINDS = {"sms_spam": "multiclass", "ag_news": "multiclass", "goemotions": "multilabel", "sst5": "ordinal"}


def load(name: str) -> dict[str, Any]:
    with open(DATASETS / name / f"{name}.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    labels = sorted({lab for r in rows for lab in r[2:]}, key=lambda x: (len(x), x) if KINDS[name] == "ordinal" else x)
    index = {lab: i for i, lab in enumerate(labels)}
    out: dict[str, Any] = {"labels": labels}
    for split in ("TRAIN", "VALIDATE", "TEST"):
        part = [r for r in rows if r[0] == split]
        Y = np.zeros((len(part), len(labels)))
        for i, r in enumerate(part):
            for lab in r[2:]:
                Y[i, index[lab]] = 1
        out[split] = ([r[1] for r in part], Y)
    return out


def metrics(kind: str, Y: np.ndarray, P: np.ndarray, thresholds: np.ndarray | None = None) -> dict[str, float]:
    if kind == "multilabel":
        t = thresholds if thresholds is not None else np.full(Y.shape[1], 0.5)
        pred = t <= P
        return {
            "micro_f1": f1_score(Y, pred, average="micro", zero_division=0),
            "micro_au_prc": average_precision_score(Y.ravel(), P.ravel()),
        }
    y, p = Y.argmax(1), P.argmax(1)
    if kind == "ordinal":
        from automill.problems.text_sentiment.problem import decide

        p = decide(P) if thresholds is None else p
        return {
            "accuracy": accuracy_score(y, p),
            "mae": mean_absolute_error(y, p),
            "qwk": cohen_kappa_score(y, p, weights="quadratic"),
        }
    return {"accuracy": accuracy_score(y, p), "macro_f1": f1_score(y, p, average="macro")}


def paired(
    kind: str,
    Y: np.ndarray,
    a: tuple[np.ndarray, np.ndarray | None],
    b: tuple[np.ndarray, np.ndarray | None],
    n: int = 1000,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """Per metric: (a - b, 2.5 % and 97.5 % quantiles of a - b over ``n`` paired bootstrap resamples of the rows)."""
    rng = np.random.default_rng(seed)
    point_a, point_b = metrics(kind, Y, *a), metrics(kind, Y, *b)
    diffs: dict[str, list[float]] = {k: [] for k in point_a}
    for _ in range(n):
        idx = rng.integers(0, len(Y), len(Y))
        ma, mb = metrics(kind, Y[idx], a[0][idx], a[1]), metrics(kind, Y[idx], b[0][idx], b[1])
        for k in diffs:
            diffs[k].append(ma[k] - mb[k])
    return {
        k: (point_a[k] - point_b[k], float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975)))
        for k, v in diffs.items()
    }


PEERS = ("tfidf_lr", "flaml", "minilm_lr")
DEFAULT, HIGH = "automill/mobile-versatile-1", "automill/mobile-high-accuracy-1"
LOWER_IS_BETTER = {"mae"}


def comparisons(
    name: str,
    kind: str,
    Y: np.ndarray,
    results: list[dict[str, Any]],
    preds: dict[str, tuple[np.ndarray, np.ndarray | None]],
    n: int = 1000,
) -> list[dict[str, Any]]:
    """The default against the best peer (per metric) and mobile-high-accuracy-1 against the default
    (``n`` bootstrap resamples per pair)."""
    rows: list[dict[str, Any]] = []
    here = {r["system"]: r for r in results if r["dataset"] == name and "note" not in r}
    done: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {}
    for metric in metrics(kind, Y, *next(iter(preds.values()))) if preds else []:
        pairs = []
        peers = [p for p in PEERS if p in preds]
        if DEFAULT in preds and peers:
            best = (min if metric in LOWER_IS_BETTER else max)(peers, key=lambda p: here[p][metric])
            pairs.append((DEFAULT, best))
        if HIGH in preds and DEFAULT in preds:
            pairs.append((HIGH, DEFAULT))
        for a, b in pairs:
            if (a, b) not in done:
                done[a, b] = paired(kind, Y, preds[a], preds[b], n=n)
            diff, lo, hi = done[a, b][metric]
            rows.append(
                {
                    "dataset": name,
                    "metric": metric,
                    "system": a,
                    "against": b,
                    "difference": round(diff, 4),
                    "ci95_low": round(lo, 4),
                    "ci95_high": round(hi, 4),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def selection_score(kind: str, Y: np.ndarray, P: np.ndarray) -> float:
    m = metrics(kind, Y, P, thresholds=np.full(Y.shape[1], 0.5) if kind != "multilabel" else None)
    return m.get("macro_f1", m.get("micro_f1", m.get("accuracy", 0.0)))


def best_global_threshold(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    grid = np.arange(0.05, 0.95, 0.05)
    scores = [f1_score(Y, t <= P, average="micro", zero_division=0) for t in grid]
    return np.full(Y.shape[1], grid[int(np.argmax(scores))])


class Fitted:
    def __init__(
        self,
        predict: Callable[[list[str]], np.ndarray],
        thresholds: np.ndarray | None = None,
        members: list[tuple[dict[str, Any], Callable[[list[str]], np.ndarray]]] | None = None,
    ) -> None:
        self.predict = predict
        self.thresholds = thresholds
        #: An ensemble's members (description, predict), scored alone on TEST as a diagnostic.
        self.members = members or []


def _lr(kind: str, C: float) -> Any:
    lr = LogisticRegression(C=C, max_iter=3000)
    return OneVsRestClassifier(lr) if kind == "multilabel" else lr


def _proba(kind: str, model: Any, X: Any, k: int) -> np.ndarray:
    if kind == "multilabel":
        return model.predict_proba(X)
    out = np.zeros((X.shape[0], k))
    out[:, model.classes_] = model.predict_proba(X)
    return out


def _target(kind: str, Y: np.ndarray) -> np.ndarray:
    return Y if kind == "multilabel" else Y.argmax(1)


def peer_tfidf_lr(kind: str, data: dict[str, Any], budget: float) -> Fitted:
    (tr, Ytr), (va, Yva) = data["TRAIN"], data["VALIDATE"]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    Xtr, Xva = vec.fit_transform(tr), None
    Xva = vec.transform(va)
    best: tuple[float, Any] = (-1.0, None)
    deadline = Deadline(budget)
    for C in (1.0, 3.0, 10.0, 30.0, 100.0):
        if deadline.expired():
            break
        m = _lr(kind, C).fit(Xtr, _target(kind, Ytr))
        s = selection_score(kind, Yva, _proba(kind, m, Xva, Ytr.shape[1]))
        best = max(best, (s, m), key=lambda x: x[0])
    model = best[1]
    thr = best_global_threshold(Yva, _proba(kind, model, Xva, Ytr.shape[1])) if kind == "multilabel" else None
    return Fitted(lambda texts: _proba(kind, model, vec.transform(texts), Ytr.shape[1]), thr)


def peer_minilm_lr(kind: str, data: dict[str, Any], budget: float) -> Fitted:
    (tr, Ytr), (va, Yva) = data["TRAIN"], data["VALIDATE"]
    Xtr, Xva = minilm.embed(tr), minilm.embed(va)
    best: tuple[float, Any] = (-1.0, None)
    for C in (1.0, 3.0, 10.0, 30.0):
        m = _lr(kind, C).fit(Xtr, _target(kind, Ytr))
        s = selection_score(kind, Yva, _proba(kind, m, Xva, Ytr.shape[1]))
        best = max(best, (s, m), key=lambda x: x[0])
    model = best[1]
    thr = best_global_threshold(Yva, _proba(kind, model, Xva, Ytr.shape[1])) if kind == "multilabel" else None
    return Fitted(lambda texts: _proba(kind, model, minilm.embed(texts), Ytr.shape[1]), thr)


def peer_flaml(kind: str, data: dict[str, Any], budget: float) -> Fitted | None:
    if kind == "multilabel":
        return None  # FLAML AutoML has no multi-label task
    from flaml import AutoML

    (tr, Ytr), (va, Yva) = data["TRAIN"], data["VALIDATE"]
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    Xtr, Xva = vec.fit_transform(tr), None
    Xva = vec.transform(va)
    automl = AutoML()
    automl.fit(
        Xtr,
        Ytr.argmax(1),
        X_val=Xva,
        y_val=Yva.argmax(1),
        task="classification",
        time_budget=max(10, budget - 5),
        estimator_list=["lgbm", "lrl1"],
        metric="accuracy" if kind != "multiclass" else "macro_f1",
        verbose=0,
        seed=0,
    )
    k = Ytr.shape[1]

    def predict(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), k))
        out[:, automl.classes_] = automl.predict_proba(vec.transform(texts))
        return out

    return Fitted(predict)


def automill(model_type: str) -> Callable[[str, dict[str, Any], float], Fitted]:
    def run(kind: str, data: dict[str, Any], budget: float) -> Fitted:
        (tr, Ytr), (va, Yva) = data["TRAIN"], data["VALIDATE"]
        result = fit_text(kind, tr, Ytr, va, Yva, deadline=Deadline(budget), model_type=model_type)
        print(
            json.dumps(
                {
                    "model_type": model_type,
                    "stop_reason": result.stop_reason,
                    "trials": result.trials,
                    "members": result.model.describe(),
                },
                default=str,
            ),
            flush=True,
        )
        members = [
            (m, member.learner.predict_proba)
            for m, member in zip(result.model.describe(), result.model.members, strict=True)
        ]
        return Fitted(result.model.predict_proba, result.model.thresholds, members if len(members) > 1 else None)

    return run


SYSTEMS: dict[str, Callable[[str, dict[str, Any], float], Fitted | None]] = {
    "tfidf_lr": peer_tfidf_lr,
    "flaml": peer_flaml,
    "minilm_lr": peer_minilm_lr,
    "automill/mobile-low-latency-1": automill("mobile-low-latency-1"),
    "automill/mobile-versatile-1": automill("mobile-versatile-1"),
    "automill/mobile-high-accuracy-1": automill("mobile-high-accuracy-1"),
}


def member_scores(
    name: str, system: str, kind: str, fitted: Fitted, texts: list[str], Y: np.ndarray
) -> list[dict[str, Any]]:
    """Each ensemble member alone on TEST (multi-label: at the ensemble's thresholds), to tell what
    the ensemble adds from how its members did."""
    rows = []
    for desc, predict in fitted.members:
        scores = metrics(kind, Y, predict(texts), fitted.thresholds)
        rows.append(
            {
                "dataset": name,
                "system": system,
                "family": desc["family"],
                "config": desc["config"],
                "weight": desc["weight"],
                **{k: round(float(v), 4) for k, v in scores.items()},
            }
        )
        print(json.dumps({"member": rows[-1]}, default=str), flush=True)
    return rows


def run(
    datasets: list[str], systems: list[str], budget: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    results, compared, members = [], [], []
    for name in datasets:
        kind, data = KINDS[name], load(name)
        test_texts, Y_test = data["TEST"]
        preds: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        for system in systems:
            minilm._CACHE.clear()  # every system pays for its own embeddings
            t0 = time.monotonic()
            fitted = SYSTEMS[system](kind, data, budget)
            train_s = time.monotonic() - t0
            if fitted is None:
                results.append({"dataset": name, "system": system, "note": "not applicable"})
                continue
            minilm._CACHE.clear()
            t1 = time.monotonic()
            P = fitted.predict(test_texts)
            preds[system] = (P, fitted.thresholds)
            batch_ms = 1000 * (time.monotonic() - t1) / len(test_texts)
            t2 = time.monotonic()
            for text in test_texts[:50]:
                fitted.predict([text + " "])
            single_ms = 1000 * (time.monotonic() - t2) / min(50, len(test_texts))
            row = {
                "dataset": name,
                "system": system,
                "train_s": round(train_s, 1),
                "latency_ms_batch": round(batch_ms, 2),
                "latency_ms_single": round(single_ms, 1),
                **{k: round(float(v), 4) for k, v in metrics(kind, Y_test, P, fitted.thresholds).items()},
            }
            print(json.dumps(row), flush=True)
            results.append(row)
            members += member_scores(name, system, kind, fitted, test_texts, Y_test)
        compared += comparisons(name, kind, Y_test, results, preds)
    return results, compared, members


def table(results: list[dict[str, Any]]) -> str:
    cols = [
        "accuracy",
        "macro_f1",
        "micro_f1",
        "micro_au_prc",
        "mae",
        "qwk",
        "train_s",
        "latency_ms_batch",
        "latency_ms_single",
    ]
    lines = ["| dataset | system | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for r in results:
        cells = [str(r.get(c, "")) for c in cols] if "note" not in r else [r["note"]] + [""] * (len(cols) - 1)
        lines.append(f"| {r['dataset']} | {r['system']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=300, help="wall-clock seconds per system and dataset")
    ap.add_argument("--datasets", nargs="*", default=list(KINDS))
    ap.add_argument("--systems", nargs="*", default=list(SYSTEMS))
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    started = datetime.now(UTC)
    results, compared, members = run(args.datasets, args.systems, args.budget)
    md = table(results)
    if compared:
        md += (
            "\n\nPaired differences on the same TEST rows (system minus the one it is held against; for mae "
            "lower is better), with 95 % intervals from 1000 bootstrap resamples of the rows:\n\n"
            + report.markdown_table(
                compared, ["system", "against", "metric", "difference", "ci95_low", "ci95_high"], first="dataset"
            )
        )
    header = (
        f"Budget {args.budget:.0f} s per system and dataset; {os.cpu_count()} CPU cores; "
        f"{platform.python_version()}; run {started:%Y-%m-%d %H:%M} UTC. Metrics on each dataset's TEST rows; "
        "latency = ms per text, batch of the whole TEST split and one text at a time."
    )
    report.publish(
        "text",
        "Text",
        started,
        {"budget_s": args.budget, "results": results, "paired": compared, "members": members},
        header,
        md,
        docs=not args.no_docs,
    )


if __name__ == "__main__":
    main()
