"""bench/images: Automill's mobile image model types against an EfficientNet-Lite0 linear probe on
cifar10, same split, same wall-clock budget, one run.

    .venv/bin/python -m bench.images --budget 300
    .venv/bin/python -m bench.images --budget 60 --train-per-class 40 --no-docs   # a quick look

Systems (each gets the same wall-clock budget for training):
- linear_probe: frozen ImageNet EfficientNet-Lite0 at 224 px (torch, channels_last), pooled
  features, LogisticRegression with C tuned on VALIDATE; exported as the same network with the
  probe as its last layer.
- automill/<model type>: automill.engine.image.fit_image with that model type (the server's path).

For each: TEST accuracy, train seconds, TF Lite file size (the type's default export quantization;
fp32 for the probe) and single-threaded TF Lite latency per image (ai-edge-litert, mean of 100
runs after warm-up). Prints a table, writes bench/results/images-<timestamp>.{json,md} and the
"Image classification" section of docs/benchmarks.md. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from automill.core.deadline import Deadline
from automill.engine.image import EXPORT_QUANTIZATION, fit_image
from automill.export.edge import export_package
from automill.learners.efficientnet import EfficientNetClassifier, build, normalise, set_threads
from automill.problems.images import decode_batch
from bench import report

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"
TYPES = ("mobile-low-latency-1", "mobile-versatile-1", "mobile-high-accuracy-1")


def load_split(per_class: dict[str, int]) -> tuple[list[str], dict[str, tuple[list[bytes], np.ndarray]]]:
    with open(CIFAR / "cifar10.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    labels = sorted({r[2] for r in rows})
    out: dict[str, tuple[list[bytes], np.ndarray]] = {}
    for split in ("TRAIN", "VALIDATE", "TEST"):
        seen: dict[str, int] = {}
        part = []
        for r in rows:
            if r[0] == split and seen.get(r[2], 0) < per_class[split]:
                seen[r[2]] = seen.get(r[2], 0) + 1
                part.append(r)
        blobs = [(CIFAR / "images" / r[1].rsplit("/", 1)[1]).read_bytes() for r in part]
        out[split] = (blobs, np.eye(len(labels))[[labels.index(r[2]) for r in part]])
    return labels, out


def linear_probe(data: dict[str, tuple[list[bytes], np.ndarray]], budget: float) -> EfficientNetClassifier:
    """Frozen pooled features + LogisticRegression (C tuned on VALIDATE), as a user would write it."""
    import torch
    from sklearn.linear_model import LogisticRegression

    set_threads()
    deadline = Deadline(budget)
    net = build(224, 1000).eval().to(memory_format=torch.channels_last)

    def features(blobs: list[bytes]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(blobs), 32):
                x = normalise(decode_batch(blobs[i : i + 32], 224))
                h = net._swish(net._bn1(net._conv_head(_blocks(net, x))))
                out.append(torch.flatten(net._avg_pooling(h), 1).numpy())
        return np.concatenate(out)

    Xt, Xv = features(data["TRAIN"][0]), features(data["VALIDATE"][0])
    yt, yv = data["TRAIN"][1].argmax(1), data["VALIDATE"][1].argmax(1)
    best: tuple[float, Any] = (-1.0, None)
    for C in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0):
        if deadline.expired() and best[1] is not None:
            break
        clf = LogisticRegression(C=C, max_iter=2000).fit(Xt, yt)
        acc = float((clf.predict(Xv) == yv).mean())
        if acc > best[0]:
            best = (acc, clf)
    clf = best[1]
    head = build(224, len(clf.classes_))
    head.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("_fc")}, strict=False)
    head._fc.weight.data = torch.tensor(clf.coef_, dtype=torch.float32)
    head._fc.bias.data = torch.tensor(clf.intercept_, dtype=torch.float32)
    model = EfficientNetClassifier(size=224, cut=17)
    model.n_labels_ = len(clf.classes_)
    model.net_ = head.eval().to(memory_format=torch.channels_last)
    return model


def _blocks(net: Any, x: Any) -> Any:
    x = net._swish(net._bn0(net._conv_stem(x)))
    for block in net._blocks:
        x = block(x)
    return x


def tflite_latency_ms(path: Path, size: int, runs: int = 100) -> float:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    idx = it.get_input_details()[0]["index"]
    x = np.random.default_rng(0).normal(size=(1, size, size, 3)).astype(np.float32)
    for _ in range(10):
        it.set_tensor(idx, x)
        it.invoke()
    started = time.perf_counter()
    for _ in range(runs):
        it.set_tensor(idx, x)
        it.invoke()
    return (time.perf_counter() - started) / runs * 1000


def measure(
    name: str,
    model: EfficientNetClassifier,
    train_s: float,
    labels: list[str],
    test: tuple[list[bytes], np.ndarray],
    quantization: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    images = decode_batch(test[0], model.size)
    scores = model.predict_proba(images)
    acc = float((scores.argmax(1) == test[1].argmax(1)).mean())
    with tempfile.TemporaryDirectory() as tmp:
        meta = export_package(model, labels, "tflite", quantization, Path(tmp), images[:64])
        latency = tflite_latency_ms(Path(tmp) / "model.tflite", model.size)
    row = {
        "system": name,
        "accuracy": round(acc, 4),
        "train_s": round(train_s, 1),
        "input_px": model.size,
        "tflite_quantization": quantization,
        "tflite_mb": round(meta["size_bytes"] / 1e6, 2),
        "tflite_ms_1_thread": round(latency, 2),
        "tflite_top1_agreement": meta["parity"]["top1_agreement"],
        **extra,
    }
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=300, help="wall-clock seconds of training per system")
    ap.add_argument("--train-per-class", type=int, default=400)
    ap.add_argument("--systems", nargs="*", default=["linear_probe", *TYPES])
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = ap.parse_args()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    started = datetime.now(UTC)
    labels, data = load_split({"TRAIN": args.train_per_class, "VALIDATE": 50, "TEST": 100})
    rows = []
    for system in args.systems:
        t0 = time.monotonic()
        if system == "linear_probe":
            model = linear_probe(data, args.budget)
            rows.append(measure(system, model, time.monotonic() - t0, labels, data["TEST"], "float32", {"stop": ""}))
            continue
        result = fit_image(
            "multiclass",
            lambda items, size: decode_batch(list(items), size),
            data["TRAIN"][0],
            data["TRAIN"][1],
            data["VALIDATE"][0],
            data["VALIDATE"][1],
            deadline=Deadline(args.budget),
            model_type=system,
        )
        rows.append(
            measure(
                f"automill/{system}",
                result.model,
                time.monotonic() - t0,
                labels,
                data["TEST"],
                EXPORT_QUANTIZATION.get(system, "float32"),
                {"stop": f"{result.stop_reason} ({result.info['epochs']} epochs)"},
            )
        )
    cols = [
        "accuracy",
        "train_s",
        "input_px",
        "tflite_quantization",
        "tflite_mb",
        "tflite_ms_1_thread",
        "tflite_top1_agreement",
        "stop",
    ]
    md = report.markdown_table(rows, cols)
    n = {k: len(v[0]) for k, v in data.items()}
    header = (
        f"cifar10 ({n['TRAIN']} TRAIN / {n['VALIDATE']} VALIDATE / {n['TEST']} TEST images), TEST accuracy. "
        f"Budget {args.budget:.0f} s of training per system; {os.cpu_count()} CPU cores; Python "
        f"{platform.python_version()}; run {started:%Y-%m-%d %H:%M} UTC. TF Lite latency: one image, "
        "one thread, ai-edge-litert; top-1 agreement of the TF Lite file with the in-process model on 64 "
        "TEST images."
    )
    report.publish(
        "images",
        "Image classification",
        started,
        {"budget_s": args.budget, "results": rows},
        header,
        md,
        docs=not args.no_docs,
    )


if __name__ == "__main__":
    main()
