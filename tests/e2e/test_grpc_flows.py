"""The official client's end-to-end flows of every problem type, unchanged, over gRPC (issue 26).

Each flow is the REST test function itself (text classification v1beta1, sentiment, multi-label,
entity extraction, image classification, object detection), run against a server with a gRPC port
and with its module's ``clients`` swapped for the gRPC transport on an insecure channel: datasets,
imports, training, long-running operations (``.result()``, lists with filters, cancel), deploy,
predict, batch predict and export go over gRPC; the flows' few REST-only checks (Automill's
extension fields) still go to the HTTP port of the same server. The fast gRPC path of the default
run is tests/e2e/test_grpc.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.conftest import Server, free_port, serving
from tests.e2e.clients import grpc_clients

FLOWS = [
    ("test_text_classification_official_client", "test_text_classification_end_to_end", {"version": "v1beta1"}),
    ("test_sentiment_multilabel_official_client", "test_sentiment_sst5_v1beta1", {}),
    ("test_sentiment_multilabel_official_client", "test_multilabel_goemotions_v1", {}),
    ("test_extraction_official_client", "test_entity_extraction_conll_subset", {}),
    ("test_image_classification_official_client", "test_image_classification_low_latency_flow", {}),
    ("test_image_classification_official_client", "test_image_classification_v1beta1_budget_in_hours", {}),
    ("test_object_detection_official_client", "test_object_detection_raccoon", {}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("module", "flow", "kwargs"), FLOWS, ids=[f[1] for f in FLOWS])
def test_rest_flow_over_grpc(
    module: str, flow: str, kwargs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = importlib.import_module(f"tests.e2e.{module}")
    budget = getattr(mod, "TEXT_BUDGET", Server.text_budget)
    with (
        serving(tmp_path / "data", grpc_port=free_port(), text_budget=budget) as server,
        grpc.insecure_channel(server.grpc_target) as channel,
    ):
        used: list[str] = []

        def clients(version: str, endpoint: str) -> tuple[Any, Any, Any]:
            assert endpoint == server.endpoint
            used.append(version)
            return grpc_clients(version, channel)

        monkeypatch.setattr(mod, "clients", clients)
        getattr(mod, flow)(server, **kwargs)
        assert used, f"{flow} made no client"
        assert "GRPC" in _audited_transports(server)  # the flow's changes really came over gRPC


def _audited_transports(server: Server) -> set[str]:
    import sqlite3

    with sqlite3.connect(server.data_dir / "automill.db") as db:
        return {row[0] for row in db.execute("SELECT DISTINCT http_method FROM audit_log")}
