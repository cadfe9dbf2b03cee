"""The acceptance flow of issue 2, driven by the official client against a real server process."""

from __future__ import annotations

import csv
import json
import time

import pytest
import requests
from google.api_core import exceptions as gexc

from tests.e2e.clients import PARENT, clients, operations_client

#: One flow in the default run (v1beta1 on PostgreSQL: v1 on SQLite is the quickstart's, the gRPC test's and the
#: API-key test's); all four under --slow.
DEFAULT_RUN_IDS = {"postgres-v1beta1"}

SMS = "gs://automill-bench/sms_spam/sms_spam.csv"


def wait_running(ops, name: str, timeout: float = 60) -> None:
    """Until a worker has started the operation (progress > 0)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        op = ops.get_operation(name)
        if op.done:
            pytest.fail(f"operation {name} finished before it could be cancelled")
        meta = op.metadata
        if b"progressPercent" in meta.value or _progress(op) > 0:
            return
        time.sleep(0.1)
    pytest.fail(f"operation {name} never started")


def _progress(op) -> int:
    from google.cloud.automl_v1 import OperationMetadata as M1
    from google.cloud.automl_v1beta1 import OperationMetadata as M2

    for cls in (M1, M2):
        if op.metadata.type_url.endswith(cls.pb().DESCRIPTOR.full_name):
            msg = cls.pb()()
            op.metadata.Unpack(msg)
            return msg.progress_percent
    return 0


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_text_classification_end_to_end(server, version: str) -> None:
    mod, client, predictor = clients(version, server.endpoint)
    ops = operations_client(client)

    # -- dataset ------------------------------------------------------------------------------------
    dataset_msg = mod.Dataset(
        display_name=f"sms_{version}",
        text_classification_dataset_metadata=mod.TextClassificationDatasetMetadata(
            classification_type=mod.ClassificationType.MULTICLASS
        ),
    )
    if version == "v1":
        create_op = client.create_dataset(parent=PARENT, dataset=dataset_msg)
        dataset = create_op.result(timeout=30)
        assert create_op.metadata.create_dataset_details is not None
    else:
        dataset = client.create_dataset(parent=PARENT, dataset=dataset_msg)
    assert dataset.name.startswith(f"{PARENT}/datasets/TCN")
    dataset_id = dataset.name.rsplit("/", 1)[-1]

    imp = client.import_data(name=dataset.name, input_config={"gcs_source": {"input_uris": [SMS]}})
    imp.result(timeout=120)
    assert imp.done() and imp.exception() is None
    got = client.get_dataset(name=dataset.name)
    assert got.example_count > 5000  # 5,574 rows, duplicate texts merged

    specs = requests.get(f"{server.endpoint}/{version}/{dataset.name}/annotationSpecs", timeout=10).json()
    names = sorted(s["displayName"] for s in specs["annotationSpecs"])
    assert names == ["ham", "spam"]
    for s in specs["annotationSpecs"]:
        spec = client.get_annotation_spec(name=s["name"])
        assert spec.display_name == s["displayName"] and spec.example_count > 0

    listed = list(client.list_datasets(request={"parent": PARENT, "filter": "text_classification_dataset_metadata:*"}))
    assert [d.name for d in listed] == [dataset.name]
    assert (
        list(client.list_datasets(request={"parent": PARENT, "filter": "image_classification_dataset_metadata:*"}))
        == []
    )

    # -- model --------------------------------------------------------------------------------------
    create = client.create_model(
        parent=PARENT,
        model={
            "display_name": f"sms_model_{version}",
            "dataset_id": dataset_id,
            "text_classification_model_metadata": {},
        },
    )
    model = create.result(timeout=600)
    assert model.name.startswith(f"{PARENT}/models/TCN")
    assert create.operation.name.rsplit("/", 1)[-1].startswith("TCN")
    assert model.text_classification_model_metadata.classification_type == mod.ClassificationType.MULTICLASS

    evals = list(client.list_model_evaluations(request={"parent": model.name, "filter": ""}))
    assert len(evals) == 3  # overall + ham + spam
    overall = list(client.list_model_evaluations(request={"parent": model.name, "filter": "NOT annotation_spec_id:*"}))
    assert len(overall) == 1 and not overall[0].annotation_spec_id
    m = overall[0].classification_evaluation_metrics
    assert m.au_prc >= 0.95, m.au_prc
    assert len(m.confidence_metrics_entry) == 24
    assert len(m.confusion_matrix.row) == 2
    per_label = list(client.list_model_evaluations(request={"parent": model.name, "filter": "annotation_spec_id:*"}))
    assert sorted(e.display_name for e in per_label) == ["ham", "spam"]
    assert client.get_model_evaluation(name=per_label[0].name).annotation_spec_id == per_label[0].annotation_spec_id
    all_models = list(client.list_model_evaluations(request={"parent": f"{PARENT}/models/-", "filter": ""}))
    assert len(all_models) == 3

    # -- deploy + predict ---------------------------------------------------------------------------
    client.deploy_model(name=model.name).result(timeout=60)
    assert client.get_model(name=model.name).deployment_state == mod.Model.DeploymentState.DEPLOYED
    spam = "WINNER!! You have won a free prize of 1000 cash. Call 09061701461 now to claim, text CLAIM to 87121"
    resp = predictor.predict(name=model.name, payload={"text_snippet": {"content": spam, "mime_type": "text/plain"}})
    top = resp.payload[0]
    assert top.display_name == "spam" and top.classification.score > 0.5
    resp = predictor.predict(
        name=model.name,
        payload={"text_snippet": {"content": "see you at lunch tomorrow?"}},
        params={"score_threshold": "0.5"},
    )
    assert [p.display_name for p in resp.payload] == ["ham"]
    with pytest.raises(gexc.BadRequest):
        predictor.predict(name=model.name, payload={"text_snippet": {"content": "x" * 60_001}})

    # -- batch predict ------------------------------------------------------------------------------
    work = server.bucket_path("work")
    (work / "in").mkdir(parents=True)
    (work / "in" / "a.txt").write_text(spam)
    (work / "in" / "b.txt").write_text("ok see you at home later")
    (work / "in" / "list.csv").write_text("gs://work/in/a.txt\ngs://work/in/b.txt\ngs://work/in/missing.txt\n")
    bp = predictor.batch_predict(
        name=model.name,
        input_config={"gcs_source": {"input_uris": ["gs://work/in/list.csv"]}},
        output_config={"gcs_destination": {"output_uri_prefix": "gs://work/out"}},
    )
    bp.result(timeout=120)
    out_dir = bp.metadata.batch_predict_details.output_info.gcs_output_directory
    assert out_dir.startswith("gs://work/out/prediction-")
    local = work / out_dir[len("gs://work/") :]
    lines = [json.loads(x) for x in (local / "text_classification_1.jsonl").read_text().splitlines()]
    assert {ln["textSnippet"]["contentUri"] for ln in lines} == {"gs://work/in/a.txt", "gs://work/in/b.txt"}
    by_uri = {ln["textSnippet"]["contentUri"]: ln["annotations"][0]["displayName"] for ln in lines}
    assert by_uri["gs://work/in/a.txt"] == "spam"
    errors = [json.loads(x) for x in (local / "errors_1.jsonl").read_text().splitlines()]
    assert errors[0]["textSnippet"]["contentUri"] == "gs://work/in/missing.txt" and errors[0]["error"]["code"] == 5

    # -- export data --------------------------------------------------------------------------------
    ex = client.export_data(
        name=dataset.name, output_config={"gcs_destination": {"output_uri_prefix": "gs://work/export"}}
    )
    ex.result(timeout=120)
    export_dir = ex.metadata.export_data_details.output_info.gcs_output_directory
    assert f"/export_data-sms_{version}-" in export_dir
    rows = list(csv.reader((work / export_dir[len("gs://work/") :] / "text_classification_1.csv").open()))
    assert len(rows) == got.example_count
    assert {r[0] for r in rows} <= {"TRAIN", "VALIDATE", "TEST", "UNASSIGNED"} and rows[0][2] in ("ham", "spam")
    first_doc = work / rows[0][1][len("gs://work/") :]
    assert first_doc.read_text().strip()

    # -- operations: list done=true, cancel a running training ---------------------------------------
    done_ops = list(ops.list_operations(name=PARENT, filter_="done=true"))
    assert create.operation.name in {o.name for o in done_ops}
    assert all(o.done for o in done_ops)
    slow = client.create_model(
        parent=PARENT,
        model={"display_name": "cancel_me", "dataset_id": dataset_id, "text_classification_model_metadata": {}},
    )
    wait_running(ops, slow.operation.name)
    t0 = time.monotonic()
    slow.cancel()
    with pytest.raises(gexc.Cancelled):
        slow.result(timeout=30)
    assert time.monotonic() - t0 < 5.0 + 2.0  # stopped within 5 s (+ client polling slack)
    assert slow.cancelled()
    assert ops.get_operation(slow.operation.name).error.code == 1
    running = list(ops.list_operations(name=PARENT, filter_="done=false"))
    assert slow.operation.name not in {o.name for o in running}
    assert [m.display_name for m in client.list_models(parent=PARENT)] == [f"sms_model_{version}"]

    # -- delete ---------------------------------------------------------------------------------------
    client.undeploy_model(name=model.name).result(timeout=60)
    client.delete_model(name=model.name).result(timeout=60)
    with pytest.raises(gexc.NotFound):
        client.get_model(name=model.name)
    client.delete_dataset(name=dataset.name).result(timeout=60)
    with pytest.raises(gexc.NotFound):
        client.get_dataset(name=dataset.name)

    # -- the server's log: Automill's lines, not the libraries' repeated notices -------------------------
    log = server.log()
    assert "automill.engine: trial" in log and "running create_model" in log
    for noise in ("WARNING torchao", "torch/utils/_pytree.py", "Loading weights", "setup plugin alembic"):
        assert noise not in log, noise
