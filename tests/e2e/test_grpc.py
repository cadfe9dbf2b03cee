"""Issue 26: the API over gRPC, the official clients' default transport, against a real ``automill serve``.

The official client with its gRPC transport on an insecure channel runs the text classification flow
(long-running operations, list with a filter, cancel, deploy, predict, batch predict); every RPC of
the coverage table answers; resources cross between REST and gRPC; keys, roles and the audit log work
as over REST; reflection lists the services; grpc.aio's async client runs a flow; TLS serves both ports.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import automl_v1, automl_v1beta1
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from automill.api.grpc_bindings import OPERATIONS_SERVICE, bindings
from automill.services.lookup import DATASET_DATA_MISSING
from tests.conftest import ROOT, Server, free_port, serving
from tests.e2e.clients import PARENT, grpc_clients
from tests.e2e.test_auth import automill, create_key

SMS = "gs://automill-samples/sms_spam/sms_spam.csv"
SPAM = "WINNER!! You have won a free prize of 1000 cash. Call 09061701461 now to claim, text CLAIM to 87121"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module's keyless tests; gRPC on its default port (the HTTP port + 1)."""
    with serving(tmp_path_factory.mktemp("grpc") / "data", grpc_port=None, text_budget=1) as server:
        yield server


@pytest.fixture(scope="module")
def channel(srv: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(srv.grpc_target) as ch:
        yield ch


def rich_status(exc: gexc.GoogleAPICallError) -> status_pb2.Status:
    """The google.rpc.Status the server sent in grpc-status-details-bin."""
    trailers = dict(exc.response.trailing_metadata())  # type: ignore[union-attr]
    return status_pb2.Status.FromString(trailers["grpc-status-details-bin"])


def field_violations(exc: gexc.GoogleAPICallError) -> list[str]:
    out = []
    for detail in rich_status(exc).details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out += [v.field for v in bad.field_violations]
    return out


def test_text_classification_flow_over_grpc(srv: Server, channel: grpc.Channel) -> None:
    mod, client, predictor = grpc_clients("v1", channel)
    ops = client._transport.operations_client
    assert type(client._transport).__name__ == "AutoMlGrpcTransport"

    create = client.create_dataset(
        parent=PARENT,
        dataset=mod.Dataset(
            display_name="sms_grpc",
            text_classification_dataset_metadata={"classification_type": mod.ClassificationType.MULTICLASS},
        ),
    )
    dataset = create.result(timeout=30)
    assert create.metadata.create_dataset_details is not None
    assert dataset.name.startswith(f"{PARENT}/datasets/TCN")
    dataset_id = dataset.name.rsplit("/", 1)[-1]
    # made over gRPC, read over REST
    assert requests.get(f"{srv.endpoint}/v1/{dataset.name}", timeout=10).json()["displayName"] == "sms_grpc"

    client.import_data(name=dataset.name, input_config={"gcs_source": {"input_uris": [SMS]}}).result(timeout=120)
    assert 290 <= client.get_dataset(name=dataset.name).example_count <= 300
    listed = list(client.list_datasets(request={"parent": PARENT, "filter": "text_classification_dataset_metadata:*"}))
    assert dataset.name in [d.name for d in listed]
    assert not list(client.list_datasets(request={"parent": PARENT, "filter": "display_name=nothing_here"}))

    # -- train (the server's text budget: 1 milli node hour, 3.6 s) ------------------------------------------
    training = client.create_model(
        parent=PARENT,
        model={"display_name": "sms_grpc_model", "dataset_id": dataset_id, "text_classification_model_metadata": {}},
    )
    model = training.result(timeout=300)
    assert model.name.startswith(f"{PARENT}/models/TCN")
    assert model.text_classification_model_metadata.classification_type == mod.ClassificationType.MULTICLASS
    evals = list(client.list_model_evaluations(parent=model.name, filter=""))
    assert len(evals) == 3  # overall + ham + spam
    assert client.get_model_evaluation(name=evals[0].name).name == evals[0].name

    # -- operations: list with filters, cancel a running training -------------------------------------
    done = list(ops.list_operations(name=PARENT, filter_="done=true"))
    assert training.operation.name in {o.name for o in done} and all(o.done for o in done)
    slow = client.create_model(
        parent=PARENT,
        model={"display_name": "cancel_me", "dataset_id": dataset_id, "text_classification_model_metadata": {}},
    )
    assert slow.operation.name in {o.name for o in ops.list_operations(name=PARENT, filter_="done=false")}
    slow.cancel()  # queued or running: either way it stops
    with pytest.raises(gexc.Cancelled):
        slow.result(timeout=30)
    assert ops.get_operation(slow.operation.name).error.code == 1

    # -- deploy, predict ------------------------------------------------------------------------------
    client.deploy_model(name=model.name).result(timeout=60)
    assert client.get_model(name=model.name).deployment_state == mod.Model.DeploymentState.DEPLOYED
    top = predictor.predict(name=model.name, payload={"text_snippet": {"content": SPAM}}).payload[0]
    assert top.display_name == "spam" and top.classification.score > 0.5
    with pytest.raises(gexc.InvalidArgument) as bad:
        predictor.predict(name=model.name, payload={"text_snippet": {"content": "   "}})
    assert field_violations(bad.value) == ["payload.text_snippet.content"]
    assert bad.value.code == 400 and "empty" in bad.value.message
    # v1beta1's prediction service, on the same channel and model
    _, _, predictor_b = grpc_clients("v1beta1", channel)
    top_b = predictor_b.predict(name=model.name, payload={"text_snippet": {"content": SPAM}}).payload[0]
    assert top_b.display_name == "spam"

    # -- batch predict --------------------------------------------------------------------------------
    work = srv.bucket_path("grpcwork")
    (work / "in").mkdir(parents=True)
    (work / "in" / "a.txt").write_text(SPAM)
    (work / "in" / "b.txt").write_text("ok see you at home later")
    (work / "in" / "list.csv").write_text("gs://grpcwork/in/a.txt\ngs://grpcwork/in/b.txt\n")
    batch = predictor.batch_predict(
        name=model.name,
        input_config={"gcs_source": {"input_uris": ["gs://grpcwork/in/list.csv"]}},
        output_config={"gcs_destination": {"output_uri_prefix": "gs://grpcwork/out"}},
    )
    batch.result(timeout=120)
    out_dir = batch.metadata.batch_predict_details.output_info.gcs_output_directory
    lines = [json.loads(x) for x in (work / out_dir[len("gs://grpcwork/") :] / "text_classification_1.jsonl").open()]
    by_uri = {ln["textSnippet"]["contentUri"]: ln["annotations"][0]["displayName"] for ln in lines}
    assert by_uri["gs://grpcwork/in/a.txt"] == "spam" and len(by_uri) == 2

    # -- v1beta1 long-running operations answer in v1beta1's types (google.longrunning has no version) ---
    _, client_b, _ = grpc_clients("v1beta1", channel)
    undeploy = client_b.undeploy_model(name=model.name)
    undeploy.result(timeout=60)
    assert isinstance(undeploy.metadata, automl_v1beta1.OperationMetadata)
    assert client_b.get_model(name=model.name).deployment_state == automl_v1beta1.Model.DeploymentState.UNDEPLOYED

    # -- errors: Google's NOT_FOUND wording, a malformed name names its field ---------------------------
    with pytest.raises(gexc.NotFound, match="The model does not exist"):
        client.get_model(name=f"{PARENT}/models/TCN404")
    with pytest.raises(gexc.InvalidArgument) as bad:
        client.get_model(name=dataset.name)  # a dataset's name is no model's
    assert field_violations(bad.value) == ["name"]
    client.delete_model(name=model.name).result(timeout=60)
    client.delete_dataset(name=dataset.name).result(timeout=60)
    with pytest.raises(gexc.NotFound, match="Dataset does not exist"):
        client.get_dataset(name=dataset.name)


def test_rest_and_grpc_see_the_same_resources(srv: Server, channel: grpc.Channel) -> None:
    made = requests.post(
        f"{srv.endpoint}/v1beta1/{PARENT}/datasets",
        json={"displayName": "from_rest", "textSentimentDatasetMetadata": {"sentimentMax": 4}},
        timeout=10,
    ).json()
    _, client_b, _ = grpc_clients("v1beta1", channel)
    got = client_b.get_dataset(name=made["name"])
    assert got.display_name == "from_rest" and got.text_sentiment_dataset_metadata.sentiment_max == 4
    client_b.update_dataset(
        request={
            "dataset": {"name": made["name"], "display_name": "renamed_over_grpc"},
            "update_mask": {"paths": ["display_name"]},
        }
    )
    assert requests.get(f"{srv.endpoint}/v1/{made['name']}", timeout=10).json()["displayName"] == "renamed_over_grpc"
    _, client, _ = grpc_clients("v1", channel)
    op = client.delete_dataset(name=made["name"])
    op.result(timeout=30)
    rest_op = requests.get(f"{srv.endpoint}/v1/{op.operation.name}", timeout=10).json()
    assert rest_op["done"] is True and rest_op["name"] == op.operation.name


def coverage_rows() -> list[tuple[str, str, bool, bool, str, str]]:
    """(service, RPC, v1, v1beta1, gRPC cell, status) of docs/api-coverage.md's RPC tables."""
    rows, service = [], ""
    for line in (ROOT / "docs" / "api-coverage.md").read_text().splitlines():
        if line.startswith("### "):
            service = {"AutoMl service": "AutoMl", "PredictionService": "PredictionService"}.get(
                line[4:].strip(), OPERATIONS_SERVICE if "longrunning" in line else ""
            )
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if service and len(cells) >= 7 and re.fullmatch(r"[A-Z][A-Za-z]+", cells[0]) and cells[0] != "RPC":
            rows.append((service, cells[0], cells[2] == "✓", cells[3] == "✓", cells[4], cells[5]))
    return rows


def _full_methods(service: str, rpc: str, v1: bool, v1beta1: bool) -> list[str]:
    if service == OPERATIONS_SERVICE:
        return [f"/{OPERATIONS_SERVICE}/{rpc}"]
    return [f"/google.cloud.automl.{v}.{service}/{rpc}" for v, on in (("v1", v1), ("v1beta1", v1beta1)) if on]


def _example_request(full_method: str, *, well_formed: bool) -> bytes:
    """A request naming resources that do not exist (``well_formed``), or an empty one."""
    b = bindings()[full_method]
    msg = b.request()
    if well_formed:
        for pf in b.path_fields:
            target: Any = msg
            *parents, last = pf.field.split(".")
            for part in parents:
                target = getattr(target, part)
            parts = pf.template.split("/")
            ids = {"projects": "cov", "locations": "us-central1"}
            value = "/".join(ids.get(parts[i - 1], "TCN404") if p == "*" else p for i, p in enumerate(parts))
            setattr(target, last, value)
    return msg.SerializeToString()  # type: ignore[no-any-return]


def test_every_rpc_of_the_coverage_table_answers_over_grpc(channel: grpc.Channel) -> None:
    rows = coverage_rows()
    assert len(rows) >= 30, rows
    served = bindings()
    seen = set()
    for service, rpc, v1, v1beta1, grpc_cell, status in rows:
        assert grpc_cell == "✓", f"{rpc}: the gRPC column says {grpc_cell!r}"
        for full in _full_methods(service, rpc, v1, v1beta1):
            assert full in served, full
            seen.add(full)
            call = channel.unary_unary(full, request_serializer=None, response_deserializer=None)
            for well_formed in (True, False):
                try:
                    call(_example_request(full, well_formed=well_formed), timeout=30)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as err:
                    code = err.code()  # type: ignore[attr-defined]
                    assert err.details(), full  # type: ignore[attr-defined]
                    assert "/work/" not in err.details() and "/tmp/" not in err.details()  # type: ignore[attr-defined]
                assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (full, well_formed, code)
                if well_formed and status.startswith("implemented"):
                    assert code != grpc.StatusCode.UNIMPLEMENTED, full
                if not well_formed:
                    assert code == grpc.StatusCode.INVALID_ARGUMENT, (full, code)
    assert seen == set(served), set(served) - seen  # and nothing served that the table leaves out


def test_reflection_lists_and_describes_the_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    asks = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="google.cloud.automl.v1beta1.PredictionService"),
    ]
    answers = list(stub.ServerReflectionInfo(iter(asks), timeout=10))
    names = {s.name for s in answers[0].list_services_response.service}
    assert {
        "google.cloud.automl.v1.AutoMl",
        "google.cloud.automl.v1.PredictionService",
        "google.cloud.automl.v1beta1.AutoMl",
        "google.cloud.automl.v1beta1.PredictionService",
        "google.longrunning.Operations",
    } <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in answers[1].file_descriptor_response.file_descriptor_proto
    ]
    assert files[0].package == "google.cloud.automl.v1beta1"  # the file that holds it, then what it imports
    assert {m.name for s in files[0].service for m in s.method} == {"Predict", "BatchPredict"}
    names = {f.name for f in files}
    assert set(files[0].dependency) <= names  # every import answered: a client can build the service


def test_async_client_runs_a_flow(srv: Server) -> None:
    from google.cloud.automl_v1.services.auto_ml.transports import AutoMlGrpcAsyncIOTransport

    async def flow() -> None:
        async with grpc.aio.insecure_channel(srv.grpc_target) as ch:
            client = automl_v1.AutoMlAsyncClient(transport=AutoMlGrpcAsyncIOTransport(channel=ch))
            op = await client.create_dataset(
                parent=PARENT,
                dataset={
                    "display_name": "async_sms",
                    "text_classification_dataset_metadata": {"classification_type": 1},
                },
            )
            dataset = await op.result(timeout=30)
            imp = await client.import_data(name=dataset.name, input_config={"gcs_source": {"input_uris": [SMS]}})
            await imp.result(timeout=120)
            assert (await client.get_dataset(name=dataset.name)).example_count >= 290
            names = [
                d.name
                async for d in await client.list_datasets(
                    request={"parent": PARENT, "filter": "display_name=async_sms"}
                )
            ]
            assert names == [dataset.name]
            with pytest.raises(gexc.NotFound):
                await client.get_model(name=f"{PARENT}/models/TCN404")
            await (await client.delete_dataset(name=dataset.name)).result(timeout=30)

    asyncio.run(flow())


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_keys_roles_audit_and_tls_over_grpc(tmp_path: Path) -> None:
    cert, key_file = _self_signed(tmp_path)
    data = tmp_path / "data"
    grpc_port = free_port()
    data.mkdir()  # keys first: the server starts keyed
    editor = create_key(data, "--project", "auth", "--role", "editor", "--name", "grpc_editor")
    viewer = create_key(data, "--project", "auth", "--role", "viewer", "--name", "grpc_viewer")
    with serving(data, grpc_port=grpc_port, tls=(cert, key_file), workers=0) as server:
        _keys_roles_audit(server, grpc_port, cert, editor, viewer)


def _keys_roles_audit(server: Server, grpc_port: int, cert: Path, editor: str, viewer: str) -> None:
    root = cert.read_bytes()
    parent = "projects/auth/locations/us-central1"

    def clients(token: str | None) -> tuple[Any, Any, Any]:
        creds = grpc.ssl_channel_credentials(root)
        if token is not None:  # what google-auth's credentials do: authorization: Bearer on every call
            creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(token))
        return grpc_clients("v1", grpc.secure_channel(f"localhost:{grpc_port}", creds))

    _, anon, _ = clients(None)
    with pytest.raises(gexc.Unauthenticated):
        anon.list_datasets(parent=parent)
    with pytest.raises(gexc.Unauthenticated):
        anon.list_datasets(parent=parent, metadata=[("x-goog-api-key", "am_000000000000_" + "x" * 43)])
    _, as_editor, _ = clients(editor)
    op = as_editor.create_dataset(
        parent=parent,
        dataset={"display_name": "tls", "text_classification_dataset_metadata": {"classification_type": 1}},
    )
    dataset = op.result(timeout=30)
    # the same key in x-goog-api-key (client_options.api_key's header) on a channel without credentials
    assert [d.name for d in anon.list_datasets(parent=parent, metadata=[("x-goog-api-key", editor)])] == [dataset.name]
    _, as_viewer, _ = clients(viewer)
    assert as_viewer.get_dataset(name=dataset.name).display_name == "tls"
    with pytest.raises(gexc.PermissionDenied):
        as_viewer.delete_dataset(name=dataset.name)
    with pytest.raises(gexc.PermissionDenied):
        as_editor.get_dataset(name="projects/elsewhere/locations/us-central1/datasets/TCN1")
    # HTTPS on the HTTP port, same certificate
    https = requests.get(
        f"https://localhost:{server.port}/v1/{parent}/datasets",
        headers={"x-goog-api-key": editor},
        verify=str(cert),
        timeout=10,
    )
    assert https.status_code == 200 and https.json()["datasets"][0]["name"] == dataset.name

    entries = json.loads(automill("audit", "--data-dir", str(server.data_dir), "-o", "json", "--limit", "50").stdout)[
        "entries"
    ]
    mine = {(e["key"], e["method"], e["httpMethod"], e["httpStatus"], e["status"]) for e in entries}
    assert ("grpc_editor", "CreateDataset", "GRPC", 200, "OK") in mine
    assert ("anonymous", "ListDatasets", "GRPC", 401, "UNAUTHENTICATED") in mine
    assert ("(invalid key)", "ListDatasets", "GRPC", 401, "UNAUTHENTICATED") in mine
    assert ("grpc_viewer", "DeleteDataset", "GRPC", 403, "PERMISSION_DENIED") in mine
    assert ("grpc_editor", "GetDataset", "GRPC", 403, "PERMISSION_DENIED") in mine
    assert editor not in server.log() and viewer not in server.log()


def test_a_busy_default_grpc_port_leaves_rest_serving(tmp_path: Path) -> None:
    """Without --grpc-port the gRPC port is the HTTP port + 1; when that one is taken the server still serves
    REST (and says so); an explicit --grpc-port that cannot be bound stops the server."""
    with _port_pair() as (http_port, taken):
        with serving(tmp_path / "a", port=http_port, grpc_port=None, workers=0) as server:
            assert requests.get(f"{server.endpoint}/healthz", timeout=5).status_code == 200
            deadline = time.monotonic() + 5
            while "gRPC is off" not in server.log() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert f"gRPC is off: port {taken} (the HTTP port + 1) is in use" in server.log()
        with (
            pytest.raises(RuntimeError, match="server exited early"),
            serving(tmp_path / "b", grpc_port=taken, workers=0),
        ):
            pass


@contextmanager
def _port_pair() -> Iterator[tuple[int, int]]:
    """(a free port P, P + 1 held by a listening socket)."""
    for _ in range(50):
        with socket.socket() as blocker:
            try:
                blocker.bind(("127.0.0.1", free_port() + 1))
            except OSError:
                continue
            blocker.listen()
            taken = blocker.getsockname()[1]
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", taken - 1))
                except OSError:
                    continue
            yield taken - 1, taken
            return
    raise RuntimeError("no free pair of ports")


def test_google_wording_and_unimplemented_metadata_over_rest_and_grpc(srv: Server, channel: grpc.Channel) -> None:
    """Issue 26's conformance gaps: Google's NOT_FOUND sentences (its samples' tests look for them), and a
    model type Automill does not implement is UNIMPLEMENTED naming its field, not 'set exactly one'."""
    missing_ds, missing_model = f"{PARENT}/datasets/TCN0000000000000000000", f"{PARENT}/models/TRL0000000000000000000"
    rest = f"{srv.endpoint}/v1beta1"
    video = requests.post(
        f"{rest}/{PARENT}/models",
        json={"displayName": "v", "datasetId": "VCN1", "videoClassificationModelMetadata": {}},
        timeout=10,
    )
    assert video.status_code == 501, video.text
    err = video.json()["error"]
    assert err["status"] == "UNIMPLEMENTED" and "videoClassificationModelMetadata" in err["message"]
    ic = {"inputConfig": {"gcsSource": {"inputUris": [SMS]}}}
    oc = {"outputConfig": {"gcsDestination": {"outputUriPrefix": "gs://automill-out/y"}}}
    model = {"datasetId": "TCN0000000000000000000", "displayName": "m", "textClassificationModelMetadata": {}}
    answers = {
        "get dataset": requests.get(f"{rest}/{missing_ds}", timeout=10),
        "import": requests.post(f"{rest}/{missing_ds}:importData", json=ic, timeout=10),
        "export": requests.post(f"{rest}/{missing_ds}:exportData", json=oc, timeout=10),
        "create model": requests.post(f"{rest}/{PARENT}/models", json=model, timeout=10),
        "delete model": requests.delete(f"{rest}/{missing_model}", timeout=10),
        "deploy model": requests.post(f"{rest}/{missing_model}:deploy", json={}, timeout=10),
    }
    expected = {
        "get dataset": "Dataset does not exist.",
        "import": "The Dataset doesn't exist or is inaccessible for use with AutoMl.",
        "export": "The Dataset doesn't exist or is inaccessible for use with AutoMl.",
        "create model": "Dataset does not exist.",
        "delete model": "The model does not exist.",
        "deploy model": "The model does not exist.",
    }
    for what, answer in answers.items():
        assert answer.status_code == 404 and expected[what] in answer.json()["error"]["message"], (what, answer.text)
    mod, client, _ = grpc_clients("v1beta1", channel)
    with pytest.raises(gexc.MethodNotImplemented) as unimplemented:
        client.create_model(
            parent=PARENT, model=mod.Model(display_name="v", dataset_id="VCN1", video_classification_model_metadata={})
        )
    assert "videoClassificationModelMetadata" in unimplemented.value.message
    assert field_violations(unimplemented.value) == ["model.video_classification_model_metadata"]
    with pytest.raises(gexc.NotFound, match=re.escape(DATASET_DATA_MISSING)):
        client.import_data(name=missing_ds, input_config={"gcs_source": {"input_uris": [SMS]}})
    with pytest.raises(gexc.NotFound, match=r"The model does not exist\."):
        client.deploy_model(name=missing_model)
