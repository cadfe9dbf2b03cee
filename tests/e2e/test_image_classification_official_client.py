"""Image classification (Vision Edge flow) through the official client on a cifar10 subset:
import with bad rows, a mobile-low-latency-1 model under a budget, evaluations, deploy with
node_count, predict with image bytes, batch predict, TF Lite export run with ai-edge-litert,
export data, and resumable training (accepted; refused for changed labels or another model type)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from google.api_core import exceptions

from tests.e2e.clients import PARENT, clients
from tests.e2e.edge import tflite_outputs

CIFAR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10"


def subset(per_class: dict[str, int]) -> list[list[str]]:
    with open(CIFAR / "cifar10.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    out, seen = [], {}
    for r in rows:
        k = (r[0], r[2])
        if seen.get(k, 0) < per_class[r[0]]:
            seen[k] = seen.get(k, 0) + 1
            out.append(r)
    return out


def tflite_scores(path: Path, image: bytes, size: int) -> np.ndarray:
    return tflite_outputs(path, image, size)[0]


# Measured 94 s of the default run, so under --slow. Its fast path: the quickstart trains, deploys and predicts
# an image model with the official client; the v1beta1 test below stays.
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_image_classification_low_latency_flow(server) -> None:
    mod, client, predictor = clients("v1", server.endpoint)
    work = server.bucket_path("work")
    work.mkdir(parents=True)
    rows = subset({"TRAIN": 30, "VALIDATE": 8, "TEST": 10})
    good = (CIFAR / "images" / rows[0][1].rsplit("/", 1)[1]).read_bytes()
    (work / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (work / "not_an_image.png").write_bytes(b"hello, I am text")
    lines = [",".join(r) for r in rows] + [
        "TRAIN,gs://work/truncated.jpg,cat",
        "TRAIN,gs://work/not_an_image.png,dog",
        "TRAIN,gs://work/missing.jpg,cat",
    ]
    (work / "import.csv").write_text("\n".join(lines) + "\n")

    dataset = client.create_dataset(
        parent=PARENT,
        dataset={
            "display_name": "cifar_small",
            "image_classification_dataset_metadata": {"classification_type": "MULTICLASS"},
        },
    ).result(timeout=30)
    dataset_id = dataset.name.rsplit("/", 1)[-1]
    assert dataset_id.startswith("ICN")
    op = client.import_data(name=dataset.name, input_config={"gcs_source": {"input_uris": ["gs://work/import.csv"]}})
    op.result(timeout=300)
    failures = [f.message for f in op.metadata.partial_failures]
    assert len(failures) == 3, failures
    assert any("truncated.jpg" in f and "not a readable image" in f for f in failures)
    assert any("not_an_image.png" in f for f in failures) and any("missing.jpg" in f for f in failures)
    assert client.get_dataset(name=dataset.name).example_count == len(rows)

    model = client.create_model(
        parent=PARENT,
        model={
            "display_name": "cifar_fast",
            "dataset_id": dataset_id,
            "image_classification_model_metadata": {
                "model_type": "mobile-low-latency-1",
                "train_budget_milli_node_hours": 25,
            },
        },
    ).result(timeout=600)
    meta = model.image_classification_model_metadata
    assert model.name.rsplit("/", 1)[-1].startswith("ICN")
    assert meta.model_type == "mobile-low-latency-1" and meta.train_budget_milli_node_hours == 25
    assert 1 <= meta.train_cost_milli_node_hours <= 25 * 1.5
    assert meta.stop_reason in ("MODEL_CONVERGED", "BUDGET_REACHED") and meta.node_qps > 1

    evals = list(client.list_model_evaluations(parent=model.name))
    assert len(evals) == 11  # overall + one per label
    overall = next(e for e in evals if not e.annotation_spec_id)
    m = overall.classification_evaluation_metrics
    assert overall.evaluated_example_count == 100
    assert m.au_prc > 0.45 and len(m.confusion_matrix.row) == 10  # 10 classes, chance is 0.1
    assert sum(sum(r.example_count) for r in m.confusion_matrix.row) == 100

    client.deploy_model(
        request={"name": model.name, "image_classification_model_deployment_metadata": {"node_count": 2}}
    ).result(timeout=60)
    deployed = client.get_model(name=model.name)
    assert deployed.deployment_state == mod.Model.DeploymentState.DEPLOYED
    assert deployed.image_classification_model_metadata.node_count == 2

    test_rows = [r for r in rows if r[0] == "TEST"]
    image = (CIFAR / "images" / test_rows[0][1].rsplit("/", 1)[1]).read_bytes()
    resp = predictor.predict(
        name=model.name, payload={"image": {"image_bytes": image}}, params={"score_threshold": "0"}
    )
    assert len(resp.payload) == 10
    scores = [p.classification.score for p in resp.payload]
    assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-3
    default = predictor.predict(name=model.name, payload={"image": {"image_bytes": image}})
    assert all(p.classification.score >= 0.5 for p in default.payload)  # the default score_threshold
    with pytest.raises(exceptions.BadRequest, match="not a readable image"):
        predictor.predict(name=model.name, payload={"image": {"image_bytes": good[:200]}})

    # TF Lite export (int8 weights by default for mobile-low-latency-1), run with ai-edge-litert.
    ex = client.export_model(
        name=model.name,
        output_config={"model_format": "tflite", "gcs_destination": {"output_uri_prefix": "gs://work/exports"}},
    )
    ex.result(timeout=300)
    out = work / ex.metadata.export_model_details.output_info.gcs_output_directory[len("gs://work/") :]
    assert out.name.startswith("model-export-cifar_fast-")
    assert sorted(p.name for p in out.iterdir()) == ["dict.txt", "model.tflite", "tflite_metadata.json"]
    tmeta = json.loads((out / "tflite_metadata.json").read_text())
    labels = (out / "dict.txt").read_text().split()
    assert labels == tmeta["labels"] and len(labels) == 10
    assert tmeta["quantization"] == "int8_weights" and (out / "model.tflite").stat().st_size <= 5 * 1024 * 1024
    assert tmeta["parity"]["images"] == 64 and tmeta["parity"]["top1_agreement"] >= 0.9
    lite = tflite_scores(out / "model.tflite", image, tmeta["input"]["shape"][1])
    assert labels[int(np.argmax(lite))] == resp.payload[0].display_name
    with pytest.raises(exceptions.MethodNotImplemented, match="tflite, onnx"):
        client.export_model(
            name=model.name,
            output_config={"model_format": "core_ml", "gcs_destination": {"output_uri_prefix": "gs://work/exports"}},
        )

    # Batch predict: three images and a missing one.
    paths = [f"gs://automill-bench/cifar10/images/{r[1].rsplit('/', 1)[1]}" for r in test_rows[:3]]
    (work / "batch.csv").write_text("\n".join([*paths, "gs://work/nope.jpg"]) + "\n")
    bp = predictor.batch_predict(
        name=model.name,
        input_config={"gcs_source": {"input_uris": ["gs://work/batch.csv"]}},
        output_config={"gcs_destination": {"output_uri_prefix": "gs://work/preds"}},
    )
    bp.result(timeout=120)
    pdir = work / bp.metadata.batch_predict_details.output_info.gcs_output_directory[len("gs://work/") :]
    got = [json.loads(line) for line in (pdir / "image_classification_1.jsonl").read_text().splitlines()]
    assert [g["ID"] for g in got] == paths and all(
        "classification" in g["annotations"][0] for g in got if g["annotations"]
    )
    errors = [json.loads(line) for line in (pdir / "errors_1.jsonl").read_text().splitlines()]
    assert [e["ID"] for e in errors] == ["gs://work/nope.jpg"] and errors[0]["error"]["code"] == 5

    # Export data: the import format, images copied beside the CSV.
    ed = client.export_data(
        name=dataset.name, output_config={"gcs_destination": {"output_uri_prefix": "gs://work/data"}}
    )
    ed.result(timeout=120)
    edir = work / ed.metadata.export_data_details.output_info.gcs_output_directory[len("gs://work/") :]
    with open(edir / "image_classification_1.csv", newline="") as fh:
        exported = list(csv.reader(fh))
    assert len(exported) == len(rows) and all((work / r[1][len("gs://work/") :]).is_file() for r in exported)

    # Resumable training: same type and labels -> accepted, from the base model's weights.
    resumed = client.create_model(
        parent=PARENT,
        model={
            "display_name": "cifar_fast_2",
            "dataset_id": dataset_id,
            "image_classification_model_metadata": {
                "model_type": "mobile-low-latency-1",
                "train_budget_milli_node_hours": 25,
                "base_model_id": model.name.rsplit("/", 1)[-1],
            },
        },
    ).result(timeout=600)
    assert resumed.image_classification_model_metadata.base_model_id == model.name.rsplit("/", 1)[-1]
    r_overall = next(e for e in client.list_model_evaluations(parent=resumed.name) if not e.annotation_spec_id)
    assert r_overall.classification_evaluation_metrics.au_prc > 0.45
    with pytest.raises(exceptions.BadRequest, match=r"FAILED_PRECONDITION|model type"):
        client.create_model(
            parent=PARENT,
            model={
                "display_name": "cifar_other",
                "dataset_id": dataset_id,
                "image_classification_model_metadata": {
                    "model_type": "mobile-versatile-1",
                    "base_model_id": model.name.rsplit("/", 1)[-1],
                },
            },
        )
    (work / "more.csv").write_text("TRAIN,gs://work/new_label.png,unicorn\n")
    from PIL import Image

    Image.new("RGB", (32, 32), (255, 0, 255)).save(work / "new_label.png")
    client.import_data(name=dataset.name, input_config={"gcs_source": {"input_uris": ["gs://work/more.csv"]}}).result(
        timeout=60
    )
    with pytest.raises(exceptions.BadRequest, match="labels of dataset"):
        client.create_model(
            parent=PARENT,
            model={
                "display_name": "cifar_more",
                "dataset_id": dataset_id,
                "image_classification_model_metadata": {
                    "model_type": "mobile-low-latency-1",
                    "base_model_id": model.name.rsplit("/", 1)[-1],
                },
            },
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_image_classification_v1beta1_budget_in_hours(server) -> None:
    """v1beta1 speaks node hours (trainBudget/trainCost); the stored budget is 1000 x that."""
    from tests.e2e.rest import PARENT as P
    from tests.e2e.rest import Rest

    api = Rest(server.endpoint, "v1beta1")
    work = server.bucket_path("work")
    work.mkdir(parents=True)
    rows = subset({"TRAIN": 6, "VALIDATE": 2, "TEST": 2})
    (work / "import.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    ds = api.call(
        "POST",
        f"{P}/datasets",
        {"displayName": "cifar_tiny", "imageClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    api.wait(
        api.call(
            "POST", f"{ds['name']}:importData", {"inputConfig": {"gcsSource": {"inputUris": ["gs://work/import.csv"]}}}
        )
    )
    op = api.wait(
        api.call(
            "POST",
            f"{P}/models",
            {
                "displayName": "tiny",
                "datasetId": ds["name"].rsplit("/", 1)[-1],
                "imageClassificationModelMetadata": {"modelType": "mobile-low-latency-1", "trainBudget": "1"},
            },
        ),
        timeout=600,
    )
    meta = op["response"]["imageClassificationModelMetadata"]
    assert meta["trainBudget"] == "1" and meta["trainCost"] == "1" and "trainBudgetMilliNodeHours" not in meta
    assert meta["stopReason"] == "MODEL_CONVERGED"  # early stopping, long before the hour
    v1 = Rest(server.endpoint, "v1").call("GET", op["response"]["name"])["imageClassificationModelMetadata"]
    assert v1["trainBudgetMilliNodeHours"] == "1000" and 1 <= int(v1["trainCostMilliNodeHours"]) <= 100
