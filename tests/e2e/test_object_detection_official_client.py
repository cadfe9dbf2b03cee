"""Object detection through the official client on raccoon: import (with bad rows), a
mobile-versatile-1 model, evaluations, predict returning boxes, batch predict, and a TF Lite export
whose boxes (run with ai-edge-litert) match the server's."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.clients import PARENT, clients
from tests.e2e.edge import tflite_outputs

RACCOON = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "raccoon"

#: 80 milli node hours (288 s): at 40 the model passed the mAP bar but found no box above 0.2 in
#: the first TEST image on a CI machine 2-4x slower than usual; the bars below are unchanged. At 80,
#: before box scores were calibrated, a model that converged early (best epoch 7 of 15) on a 2-core
#: machine again had none: its peaks were under 0.4 on most TEST images.
BUDGET = 80

#: Up to 80 + 20 milli node hours of training (six minutes): a long flow, run with --slow. The default
#: run's fast paths of object detection are the quickstart's (tests/e2e/test_docs_run.py: train, deploy,
#: predict on the sample raccoons) and tests/e2e/test_model_export_docker.py (train, export, serve).
pytestmark = pytest.mark.slow


def tflite_boxes(path: Path, image: bytes, meta: dict) -> list[tuple[float, tuple[float, ...]]]:
    from automill.learners.centernet import decode

    out = tflite_outputs(path, image, meta["input"]["shape"][1])
    return [(s, b) for _, s, b in decode(out, len(meta["labels"]), 0.5, 100)[0]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_object_detection_raccoon(server) -> None:
    _, client, predictor = clients("v1", server.endpoint)
    work = server.bucket_path("work")
    work.mkdir(parents=True)
    with open(RACCOON / "raccoon.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    lines = [",".join(r) for r in rows] + [
        "TRAIN,gs://automill-bench/raccoon/images/raccoon-1.jpg,raccoon,0.9,0.2,,,0.1,0.6,,"
    ]
    (work / "import.csv").write_text("\n".join(lines) + "\n")
    dataset = client.create_dataset(
        parent=PARENT, dataset={"display_name": "raccoon", "image_object_detection_dataset_metadata": {}}
    ).result(timeout=30)
    dataset_id = dataset.name.rsplit("/", 1)[-1]
    assert dataset_id.startswith("IOD")
    op = client.import_data(name=dataset.name, input_config={"gcs_source": {"input_uris": ["gs://work/import.csv"]}})
    op.result(timeout=300)
    assert len(op.metadata.partial_failures) == 1 and "x_max" in op.metadata.partial_failures[0].message
    # raccoon has four pairs of byte-identical TRAIN images: one example each, boxes merged.
    by_bytes: dict[str, set[tuple[str, ...]]] = {}
    for r in rows:
        digest = hashlib.sha256((RACCOON / "images" / r[1].rsplit("/", 1)[1]).read_bytes()).hexdigest()
        by_bytes.setdefault(digest, set()).add(tuple(f"{float(v):.6f}" for v in (r[3], r[4], r[7], r[8])))
    assert client.get_dataset(name=dataset.name).example_count == len(by_bytes) == 196

    model = client.create_model(
        parent=PARENT,
        model={
            "display_name": "raccoon_edge",
            "dataset_id": dataset_id,
            "image_object_detection_model_metadata": {
                "model_type": "mobile-versatile-1",
                "train_budget_milli_node_hours": BUDGET,
            },
        },
    ).result(timeout=600)
    meta = model.image_object_detection_model_metadata
    assert model.name.rsplit("/", 1)[-1].startswith("IOD") and meta.model_type == "mobile-versatile-1"
    assert meta.stop_reason in ("MODEL_CONVERGED", "BUDGET_REACHED") and meta.node_qps > 1
    assert 1 <= meta.train_cost_milli_node_hours <= 1.5 * BUDGET

    evals = list(client.list_model_evaluations(parent=model.name))
    assert len(evals) == 2  # overall + raccoon
    overall = next(e for e in evals if not e.annotation_spec_id)
    m = overall.image_object_detection_evaluation_metrics
    assert m.evaluated_bounding_box_count == 44
    by_iou = {round(e.iou_threshold, 2): e for e in m.bounding_box_metrics_entries}
    assert sorted(by_iou) == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert by_iou[0.5].mean_average_precision > 0.3  # CI budget; the bench trains longer
    assert by_iou[0.5].confidence_metrics_entries[0].recall > 0
    assert 0 < m.bounding_box_mean_average_precision < by_iou[0.5].mean_average_precision

    client.deploy_model(name=model.name).result(timeout=60)
    test_path = next(r[1] for r in rows if r[0] == "TEST")
    image = (RACCOON / "images" / test_path.rsplit("/", 1)[1]).read_bytes()
    resp = predictor.predict(
        name=model.name,
        payload={"image": {"image_bytes": image}},
        params={"score_threshold": "0.2", "max_bounding_box_count": "3"},
    )
    assert 1 <= len(resp.payload) <= 3 and resp.metadata["max_bounding_box_count"] == "3"
    top = resp.payload[0]
    vs = top.image_object_detection.bounding_box.normalized_vertices
    assert top.display_name == "raccoon" and 0 <= vs[0].x < vs[1].x <= 1 and 0 <= vs[0].y < vs[1].y <= 1

    ex = client.export_model(
        name=model.name,
        output_config={"model_format": "tflite", "gcs_destination": {"output_uri_prefix": "gs://work/exports"}},
    )
    ex.result(timeout=300)
    out = work / ex.metadata.export_model_details.output_info.gcs_output_directory[len("gs://work/") :]
    assert sorted(p.name for p in out.iterdir()) == ["dict.txt", "model.tflite", "tflite_metadata.json"]
    tmeta = json.loads((out / "tflite_metadata.json").read_text())
    assert tmeta["parity"]["top_box_agreement"] >= 0.9
    server_boxes = [
        (
            p.image_object_detection.score,
            (
                p.image_object_detection.bounding_box.normalized_vertices[0].x,
                p.image_object_detection.bounding_box.normalized_vertices[0].y,
                p.image_object_detection.bounding_box.normalized_vertices[1].x,
                p.image_object_detection.bounding_box.normalized_vertices[1].y,
            ),
        )
        for p in predictor.predict(name=model.name, payload={"image": {"image_bytes": image}}).payload
    ]
    lite = tflite_boxes(out / "model.tflite", image, tmeta)
    assert len(lite) == len(server_boxes)
    for (s1, b1), (s2, b2) in zip(lite, server_boxes, strict=True):
        assert abs(s1 - s2) < 1e-3 and np.allclose(b1, b2, atol=1e-3)

    (work / "batch.csv").write_text(f"gs://automill-bench/raccoon/images/{test_path.rsplit('/', 1)[1]}\n")
    bp = predictor.batch_predict(
        name=model.name,
        input_config={"gcs_source": {"input_uris": ["gs://work/batch.csv"]}},
        output_config={"gcs_destination": {"output_uri_prefix": "gs://work/preds"}},
        params={"score_threshold": "0.2"},
    )
    assert bp.result(timeout=120).metadata["max_bounding_box_count"] == "100"
    pdir = work / bp.metadata.batch_predict_details.output_info.gcs_output_directory[len("gs://work/") :]
    line = json.loads((pdir / "image_object_detection_1.jsonl").read_text().splitlines()[0])
    assert line["ID"].endswith(".jpg") and "imageObjectDetection" in line["annotations"][0]

    ed = client.export_data(
        name=dataset.name, output_config={"gcs_destination": {"output_uri_prefix": "gs://work/data"}}
    )
    ed.result(timeout=120)
    edir = work / ed.metadata.export_data_details.output_info.gcs_output_directory[len("gs://work/") :]
    with open(edir / "image_object_detection_1.csv", newline="") as fh:
        exported = list(csv.reader(fh))
    assert len(exported) == sum(len(v) for v in by_bytes.values()) and all(len(r) == 11 for r in exported)

    # Resumable training (the base model id top-level, as in Google's body: the OD metadata has no
    # such field): accepted for the same model type and labels, refused for another type.
    from tests.e2e.rest import Rest

    api = Rest(server.endpoint)
    body = {
        "displayName": "raccoon_edge_2",
        "datasetId": dataset_id,
        "baseModelId": model.name.rsplit("/", 1)[-1],
        "imageObjectDetectionModelMetadata": {"modelType": "mobile-versatile-1", "trainBudgetMilliNodeHours": "20"},
    }
    resumed = api.wait(api.call("POST", f"{PARENT}/models", body), timeout=600)
    assert resumed["response"]["imageObjectDetectionModelMetadata"]["modelType"] == "mobile-versatile-1"
    body["imageObjectDetectionModelMetadata"]["modelType"] = "mobile-low-latency-1"
    err = api.call("POST", f"{PARENT}/models", body, expect=400)
    assert err["error"]["status"] == "FAILED_PRECONDITION" and "model type" in err["error"]["message"]
