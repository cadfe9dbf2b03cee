"""The `automill` CLI against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.conftest import Server


def cli(server: Server, *args: str) -> str:
    env = {**os.environ, "AUTOMILL_ENDPOINT": server.endpoint, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "automill", *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_flow(server: Server) -> None:
    rows = [f'TRAIN,"{w} story {i}",{lab}' for i in range(30) for w, lab in (("goal match", "sport"), ("chip code", "tech"))]
    rows += [f'TEST,"{w} item {i}",{lab}' for i in range(8) for w, lab in (("goal match", "sport"), ("chip code", "tech"))]
    path = server.bucket_path("cli") / "rows.csv"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(rows) + "\n")
    created = json.loads(cli(server, "datasets", "create", "cli_ds"))
    dataset_id = created["response"]["name"].rsplit("/", 1)[-1]
    assert "cli_ds" in cli(server, "datasets", "list")
    imported = json.loads(cli(server, "datasets", "import", dataset_id, "gs://cli/rows.csv"))
    assert imported["done"] and "error" not in imported
    trained = json.loads(cli(server, "models", "create", "cli_model", dataset_id, "--model-type", "mobile-low-latency-1",
                             "--train-budget-milli-node-hours", "5"))
    model_id = trained["response"]["name"].rsplit("/", 1)[-1]
    listing = cli(server, "models", "list")
    assert "cli_model" in listing
    got = requests.get(f"{server.endpoint}/v1/{trained['response']['name']}", timeout=10).json()
    assert got["textClassificationModelMetadata"]["modelType"] == "mobile-low-latency-1"
    assert got["textClassificationModelMetadata"]["trainBudgetMilliNodeHours"] == "5"
    assert json.loads(cli(server, "models", "deploy", model_id))["done"]
    pred = json.loads(cli(server, "predict", model_id, "a goal in the match"))
    assert pred["payload"][0]["displayName"] == "sport"
    assert trained["name"].rsplit("/", 1)[-1] in cli(server, "operations", "list", "--filter", "done=true")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_creates_each_dataset_kind(server: Server) -> None:
    kinds = {"--entities": ("TEN", "textExtractionDatasetMetadata"), "--objects": ("IOD", "imageObjectDetectionDatasetMetadata"),
             "--images": ("ICN", "imageClassificationDatasetMetadata"), "--sentiment-max=4": ("TST", "textSentimentDatasetMetadata")}
    for flag, (prefix, key) in kinds.items():
        name = json.loads(cli(server, "datasets", "create", f"kind{prefix}", flag))["response"]["name"]
        assert name.rsplit("/", 1)[-1].startswith(prefix), (flag, name)
        assert key in requests.get(f"{server.endpoint}/v1/{name}", timeout=10).json()
