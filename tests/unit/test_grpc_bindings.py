"""api.grpc_bindings: each gRPC method is its REST call, transcoded by the API's own HTTP rules."""

from __future__ import annotations

import pytest
from google.cloud import automl_v1, automl_v1beta1
from google.longrunning import operations_pb2
from google.rpc import error_details_pb2

from automill.api.grpc_bindings import OPERATIONS_SERVICE, bindings, register_service_descriptors
from automill.api.grpc_server import credential, peer_host, status_of
from automill.api.routes import resolve
from automill.core.errors import InvalidArgument, ResourceExhausted

LOC = "projects/p/locations/us-central1"


def b(service: str, rpc: str):  # type: ignore[no-untyped-def]
    return bindings()[f"/{service}/{rpc}"]


def test_every_method_of_both_versions_and_longrunning_is_bound_to_a_rest_route() -> None:
    served = bindings()
    for version, mod in (("v1", automl_v1), ("v1beta1", automl_v1beta1)):
        for service in ("AutoMl", "PredictionService"):
            client = getattr(mod, f"{service}Client" if service == "AutoMl" else "PredictionServiceClient")
            rpcs = {name for name in dir(client) if not name.startswith("_") and callable(getattr(client, name, None))}
            mine = {x.rpc for x in served.values() if x.service == f"google.cloud.automl.{version}.{service}"}
            snake = {"".join("_" + c.lower() if c.isupper() else c for c in r).lstrip("_") for r in mine}
            assert snake <= rpcs and mine, (version, service, snake - rpcs)
    assert {x.rpc for x in served.values() if x.service == OPERATIONS_SERVICE} == {
        "GetOperation",
        "ListOperations",
        "CancelOperation",
        "DeleteOperation",
        "WaitOperation",
    }
    for binding in served.values():  # the transcoded path of a well-formed request finds its REST route
        msg = binding.request()
        for pf in binding.path_fields:
            target = msg
            *parents, last = pf.field.split(".")
            for part in parents:
                target = getattr(target, part)
            setattr(target, last, pf.template.replace("*", "x"))
        path, _, _ = binding.transcode(msg)
        route, _ = resolve(binding.http_method, binding.version, path)
        assert route.handler is not None


def test_path_body_and_query_are_split_like_googles_gateways() -> None:
    upd = automl_v1.UpdateDatasetRequest(
        dataset={"name": f"{LOC}/datasets/TCN1", "display_name": "x"}, update_mask={"paths": ["display_name"]}
    )
    assert b("google.cloud.automl.v1.AutoMl", "UpdateDataset").transcode(automl_v1.UpdateDatasetRequest.pb(upd)) == (
        f"{LOC}/datasets/TCN1",
        {"updateMask": "displayName"},
        {"name": f"{LOC}/datasets/TCN1", "displayName": "x"},
    )
    lst = automl_v1.ListModelsRequest(parent=LOC, filter="dataset_id=TCN1", page_size=5)
    assert b("google.cloud.automl.v1.AutoMl", "ListModels").transcode(automl_v1.ListModelsRequest.pb(lst)) == (
        f"{LOC}/models",
        {"filter": "dataset_id=TCN1", "pageSize": "5"},
        {},
    )
    pred = automl_v1beta1.PredictRequest(
        name=f"{LOC}/models/ICN1", payload={"image": {"image_bytes": b"\x89PNG"}}, params={"score_threshold": "0.2"}
    )
    path, query, body = b("google.cloud.automl.v1beta1.PredictionService", "Predict").transcode(
        automl_v1beta1.PredictRequest.pb(pred)
    )
    assert path == f"{LOC}/models/ICN1:predict" and query == {}
    assert body == {"payload": {"image": {"imageBytes": "iVBORw=="}}, "params": {"score_threshold": "0.2"}}
    wait = operations_pb2.WaitOperationRequest(name=f"{LOC}/operations/TCN9")
    wait.timeout.FromSeconds(3)
    assert b(OPERATIONS_SERVICE, "WaitOperation").transcode(wait) == (
        f"{LOC}/operations/TCN9:wait",
        {},
        {"timeout": "3s"},
    )


@pytest.mark.parametrize(
    "name",
    ["", "bogus", f"{LOC}/operations/TCN1", f"{LOC}/models/a:b", f"{LOC}/models/TCN1/modelEvaluations/1"],
)
def test_a_name_that_does_not_fit_its_rpc_is_refused_naming_the_field(name: str) -> None:
    req = automl_v1.DeleteModelRequest.pb(automl_v1.DeleteModelRequest(name=name))
    with pytest.raises(InvalidArgument) as err:
        b("google.cloud.automl.v1.AutoMl", "DeleteModel").transcode(req)
    assert err.value.field == "name" and "projects/*/locations/*/models/*" in err.value.message


def test_reflection_descriptors_and_the_error_details() -> None:
    names = register_service_descriptors()
    assert "google.cloud.automl.v1beta1.AutoMl" in names and OPERATIONS_SERVICE in names
    status = status_of(InvalidArgument("bad budget", field="model.budget"))
    assert status.code == 3 and status.message == "bad budget"
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad) and bad.field_violations[0].field == "model.budget"
    busy = ResourceExhausted("slow down")
    busy.retry_after = 7  # type: ignore[attr-defined]
    retry = error_details_pb2.RetryInfo()
    assert status_of(busy).details[0].Unpack(retry) and retry.retry_delay.seconds == 7


def test_credentials_and_peers_read_as_rest_reads_headers() -> None:
    assert credential({}) is None
    assert credential({"x-goog-api-key": " k "}) == "k"
    assert credential({"authorization": "Bearer t"}) == "t"
    assert credential({"authorization": "Basic abc"}) == ""
    assert peer_host("ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert peer_host("ipv6:%5B::1%5D:5000") == "::1"
