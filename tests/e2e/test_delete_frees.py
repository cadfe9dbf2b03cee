"""Deletes that delete (issue 33): deleting an image dataset frees the images no other dataset
refers to, keeps those another dataset imported too, and a model trained on the deleted dataset keeps
working (predict, deploy, batch predict, export with its parity check); deleting a model removes its
folder; ``automill check`` then finds nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Server
from tests.e2e.images import png
from tests.e2e.rest import PARENT, Rest


def media_path(server: Server, data: bytes) -> Path:
    key = f"{hashlib.sha256(data).hexdigest()}.png"
    return server.data_dir / "media" / key[:2] / key


def check(server: Server) -> tuple[int, dict]:
    env = {**os.environ}
    cmd = [sys.executable, "-m", "automill", "check", "--data-dir", str(server.data_dir), "-o", "json"]
    if server.database_url:
        cmd += ["--database-url", server.database_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_dataset_delete_frees_its_images_and_its_model_still_works(server: Server) -> None:
    api = Rest(server.endpoint)
    folder = server.bucket_path("work")
    folder.mkdir(parents=True)
    images: dict[str, bytes] = {}
    rows_a, rows_b = [], []
    for i in range(16):
        label, color = ("red", (200, 30, 30)) if i % 2 == 0 else ("blue", (30, 30, 200))
        images[f"img{i}.png"] = png(color, i)
        use = "TRAIN" if i < 10 else "VALIDATE" if i < 12 else "TEST"
        rows_a.append(f"{use},gs://work/img{i}.png,{label}")
        if i < 8:  # dataset B imports half of A's images (TRAIN ones) ...
            rows_b.append(f"TRAIN,gs://work/img{i}.png,{label}")
    for i in range(16, 20):  # ... and some of its own
        label, color = ("red", (220, 20, 40)) if i % 2 == 0 else ("blue", (20, 40, 220))
        images[f"img{i}.png"] = png(color, i)
        rows_b.append(f"TEST,gs://work/img{i}.png,{label}")
    for name, data in images.items():
        (folder / name).write_bytes(data)
    (folder / "a.csv").write_text("\n".join(rows_a) + "\n")
    (folder / "b.csv").write_text("\n".join(rows_b) + "\n")
    (folder / "batch.csv").write_text("gs://work/img13.png\ngs://work/img14.png\n")

    datasets = {}
    for key in ("a", "b"):
        op = api.call(
            "POST",
            f"{PARENT}/datasets",
            {"displayName": f"frees_{key}", "imageClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
        )
        datasets[key] = api.wait(op)["response"]["name"]
    for key in ("a", "b"):
        done = api.wait(
            api.call(
                "POST",
                f"{datasets[key]}:importData",
                {"inputConfig": {"gcsSource": {"inputUris": [f"gs://work/{key}.csv"]}}},
            )
        )
        assert "error" not in done, done
    assert all(media_path(server, d).is_file() for d in images.values())

    training = api.call(
        "POST",
        f"{PARENT}/models",
        {
            "displayName": "frees_model",
            "datasetId": datasets["a"].rsplit("/", 1)[-1],
            "imageClassificationModelMetadata": {"trainBudgetMilliNodeHours": "5", "modelType": "mobile-low-latency-1"},
        },
    )
    done = api.wait(training, timeout=300)
    assert "error" not in done, done
    model = done["response"]["name"]

    assert api.wait(api.call("DELETE", datasets["a"]))["done"]
    only_a = [f"img{i}.png" for i in range(8, 16)]
    shared = [f"img{i}.png" for i in range(8)]
    only_b = [f"img{i}.png" for i in range(16, 20)]
    assert not any(media_path(server, images[n]).exists() for n in only_a), "A's own images must be freed"
    assert all(media_path(server, images[n]).is_file() for n in shared + only_b), "B's images must stay"
    assert api.call("GET", datasets["b"])["exampleCount"] == 12

    # The model trained on the deleted dataset still deploys, predicts, batch predicts and exports.
    assert "error" not in api.wait(api.call("POST", f"{model}:deploy", {}), timeout=120)
    payload = {
        "payload": {"image": {"imageBytes": base64.b64encode(images["img12.png"]).decode()}},
        "params": {"score_threshold": "0"},
    }
    pred = api.call("POST", f"{model}:predict", payload)
    assert {p["displayName"] for p in pred["payload"]} == {"red", "blue"}
    batch = api.wait(
        api.call(
            "POST",
            f"{model}:batchPredict",
            {
                "inputConfig": {"gcsSource": {"inputUris": ["gs://work/batch.csv"]}},
                "outputConfig": {"gcsDestination": {"outputUriPrefix": "gs://work/batch_out"}},
            },
        ),
        timeout=120,
    )
    assert "error" not in batch, batch
    exported = api.wait(
        api.call(
            "POST",
            f"{model}:export",
            {"outputConfig": {"modelFormat": "onnx", "gcsDestination": {"outputUriPrefix": "gs://work/exports"}}},
        ),
        timeout=300,
    )
    assert "error" not in exported, exported
    out = exported["metadata"]["exportModelDetails"]["outputInfo"]["gcsOutputDirectory"]
    assert (folder / out[len("gs://work/") :] / "model.onnx").is_file()
    # B still trains (its images are all there) -- checked through an export of its data
    exported_b = api.wait(
        api.call(
            "POST",
            f"{datasets['b']}:exportData",
            {"outputConfig": {"gcsDestination": {"outputUriPrefix": "gs://work/b_export"}}},
        ),
        timeout=120,
    )
    assert "error" not in exported_b, exported_b

    # No temporary folder outside the data folder's own, and nothing left behind.
    code, found = check(server)
    assert (code, found["count"]) == (0, 0), found

    # Deleting the model removes its folder; deleting B frees the rest.
    model_dir = server.data_dir / "models" / model.rsplit("/", 1)[-1]
    assert model_dir.is_dir()
    assert api.wait(api.call("DELETE", model))["done"]
    assert not model_dir.exists() and not list((server.data_dir / "models").glob(".deleted-*"))
    assert api.wait(api.call("DELETE", datasets["b"]))["done"]
    assert not any(media_path(server, d).exists() for d in images.values())
    code, found = check(server)
    assert (code, found["count"]) == (0, 0), found
