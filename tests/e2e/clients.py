"""The official google-cloud-automl clients pointed at a local server (REST, anonymous)."""

from __future__ import annotations

from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import automl_v1, automl_v1beta1

MODULES = {"v1": automl_v1, "v1beta1": automl_v1beta1}
PARENT = "projects/e2e/locations/us-central1"


def clients(version: str, endpoint: str) -> tuple[Any, Any, Any]:
    """-> (module, AutoMlClient, PredictionServiceClient)."""
    mod = MODULES[version]
    opts = ClientOptions(api_endpoint=endpoint)
    automl = mod.AutoMlClient(credentials=AnonymousCredentials(), transport="rest", client_options=opts)
    predict = mod.PredictionServiceClient(credentials=AnonymousCredentials(), transport="rest", client_options=opts)
    return mod, automl, predict


def operations_client(automl: Any) -> Any:
    return automl._transport.operations_client


def grpc_clients(version: str, channel: Any) -> tuple[Any, Any, Any]:
    """-> (module, AutoMlClient, PredictionServiceClient) on the gRPC transport (the client's default)
    over ``channel`` (e.g. ``grpc.insecure_channel("127.0.0.1:PORT")``)."""
    mod = MODULES[version]
    automl = mod.AutoMlClient(transport=mod.services.auto_ml.transports.AutoMlGrpcTransport(channel=channel))
    transports = mod.services.prediction_service.transports
    predict = mod.PredictionServiceClient(transport=transports.PredictionServiceGrpcTransport(channel=channel))
    return mod, automl, predict
