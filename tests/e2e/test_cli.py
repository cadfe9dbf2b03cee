"""The `automill` CLI against one real server: every command, -o json/yaml/table, config, exit codes,
Ctrl-C while waiting. One text model and one image model are trained once for the module."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import Server, free_port, serving

ID = re.compile(r"\b[A-Z]{3}\d{19}\b")


class Cli:
    def __init__(self, endpoint: str, config: Path) -> None:
        self.endpoint, self.config = endpoint, config

    def env(self, columns: int = 80, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMILL_")}
        return {
            **env,
            "AUTOMILL_ENDPOINT": self.endpoint,
            "AUTOMILL_CONFIG": str(self.config),
            "COLUMNS": str(columns),
            **extra,
        }

    def run(
        self, *args: str, code: int = 0, stdin: bytes | str | None = None, columns: int = 80, **env: str
    ) -> subprocess.CompletedProcess[str]:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = subprocess.run(
            [sys.executable, "-m", "automill", *args],
            env=self.env(columns, **env),
            input=data,
            capture_output=True,
            timeout=300,
        )
        out = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())
        assert out.returncode == code, f"{args}: rc={out.returncode}\n{out.stdout}\n{out.stderr}"
        assert "Traceback" not in out.stderr, out.stderr
        return out

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.run(*args, "-o", "json", **kw).stdout)

    def table(self, *args: str, columns: int = 80) -> str:
        out = self.run(*args, columns=columns).stdout
        assert max(len(line) for line in out.splitlines()) <= columns, out
        return out

    def error(self, code: int, status: str, *args: str, **kw: Any) -> str:
        err = self.run(*args, code=code, **kw).stderr
        assert err.startswith(f"error: {status}: "), err
        return err


def short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("cli") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def cli(srv: Server, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(srv.endpoint, tmp_path_factory.mktemp("cfg") / "automill" / "config.ini")


@pytest.fixture(scope="module")
def text(srv: Server, cli: Cli) -> dict[str, str]:
    """A text classification dataset and a trained, deployed model."""
    rows = [
        f'TRAIN,"{w} story {i}",{lab}' for i in range(30) for w, lab in (("goal match", "sport"), ("chip code", "tech"))
    ]
    rows += [
        f'TEST,"{w} item {i}",{lab}' for i in range(8) for w, lab in (("goal match", "sport"), ("chip code", "tech"))
    ]
    folder = srv.bucket_path("cli")
    folder.mkdir(parents=True)
    (folder / "rows.csv").write_text("\n".join(rows) + "\n")
    ds = cli.json("datasets", "create", "cli_ds")
    assert "@type" not in ds and ds["displayName"] == "cli_ds" and "textClassificationDatasetMetadata" in ds
    dataset_id = short(ds["name"])
    imported = cli.json("datasets", "import", dataset_id, "gs://cli/rows.csv")
    assert imported["done"] and "error" not in imported and imported["metadata"]["importDataDetails"] == {}
    model = cli.json(
        "models",
        "create",
        "cli_model",
        "--dataset",
        dataset_id,
        "--model-type",
        "mobile-low-latency-1",
        "--budget",
        "5",
    )
    assert "@type" not in model and model["displayName"] == "cli_model" and model["datasetId"] == dataset_id
    return {"dataset": dataset_id, "model": short(model["name"])}


@pytest.fixture(scope="module")
def image(srv: Server, cli: Cli) -> dict[str, str]:
    """An image classification dataset of red and blue squares and a model trained for a few seconds
    (budget 5 = 18 s at most; 2 ran out on a busy machine)."""
    from PIL import Image

    folder = srv.bucket_path("img")
    folder.mkdir(parents=True)
    rnd, rows = random.Random(0), []
    for i in range(16):
        label, base = ("red", (200, 30, 30)) if i % 2 == 0 else ("blue", (30, 30, 200))
        im = Image.new("RGB", (32, 32), base)
        for _ in range(60):
            im.putpixel(
                (rnd.randrange(32), rnd.randrange(32)), tuple(min(255, max(0, c + rnd.randint(-40, 40))) for c in base)
            )
        ext = "jpg" if i % 3 == 0 else "png"
        im.save(folder / f"img{i}.{ext}")
        use = "TRAIN" if i < 10 else "VALIDATE" if i < 12 else "TEST"
        rows.append(f"{use},gs://img/img{i}.{ext},{label}")
    (folder / "import.csv").write_text("\n".join(rows) + "\n")
    (folder / "batch.csv").write_text("gs://img/img13.png\ngs://img/img14.png\ngs://img/missing.png\n")
    ds = cli.json("datasets", "create", "cli_images", "--images")
    assert "imageClassificationDatasetMetadata" in ds
    dataset_id = short(ds["name"])
    out = cli.run("datasets", "import", dataset_id, "gs://img/import.csv").stdout
    assert f"imported into {dataset_id}: 16 examples" in out
    model = cli.json(
        "models",
        "create",
        "cli_img_model",
        "--dataset",
        dataset_id,
        "--budget",
        "5",
        "--model-type",
        "mobile-low-latency-1",
    )
    meta = model["imageClassificationModelMetadata"]
    assert meta["trainBudgetMilliNodeHours"] == "5" and meta["modelType"] == "mobile-low-latency-1"
    return {"dataset": dataset_id, "model": short(model["name"]), "folder": str(folder)}


# -- help ---------------------------------------------------------------------------------------------
GROUPS = {
    "config": ["set", "get", "list", "unset"],
    "datasets": ["get", "list", "create", "update", "delete", "import", "export"],
    "annotation-specs": ["get", "list"],
    "models": ["get", "list", "create", "update", "delete", "deploy", "undeploy", "export", "batch-predict"],
    "evaluations": ["list", "get"],
    "operations": ["get", "list", "wait", "cancel", "delete"],
}


def test_help_lists_every_command_with_an_example() -> None:
    from automill.cli.main import app

    runner = CliRunner()
    env = {"COLUMNS": "200"}
    top = runner.invoke(app, ["--help"], env=env)
    assert top.exit_code == 0
    for name in [*GROUPS, "predict", "serve", "worker", "migrate"]:
        assert re.search(rf"│ {name}\s", top.output), name
    for group, commands in GROUPS.items():
        out = runner.invoke(app, [group, "--help"], env=env).output
        for command in commands:
            assert re.search(rf"│ {command}\s", out), (group, command)
            sub = runner.invoke(app, [group, command, "--help"], env=env).output
            assert f"Example: automill {group} {command}" in sub, (group, command, sub)
            assert "--output" in sub or "--output-format" in sub, (group, command)
    assert "Example: automill predict" in runner.invoke(app, ["predict", "--help"], env=env).output


# -- config -------------------------------------------------------------------------------------------
def test_config_set_get_list_and_precedence(cli: Cli) -> None:
    assert not cli.config.exists()
    assert cli.json("config", "list")["settings"]["project"] == {"value": "my-project", "source": "default"}
    cli.run("config", "set", "project", "proj_a")
    cli.run("config", "set", "location", "europe-west4")
    cli.run("config", "set", "api_key", "secret-key-123")
    assert "proj_a" in cli.config.read_text() and (cli.config.stat().st_mode & 0o777) == 0o600
    assert cli.run("config", "get", "project").stdout.strip() == "proj_a"
    assert cli.json("config", "get", "api-key") == {"api-key": "secret-key-123"}
    listing = cli.json("config", "list")["settings"]
    assert listing["location"] == {"value": "europe-west4", "source": "file"}
    assert listing["endpoint"]["source"] == "env AUTOMILL_ENDPOINT"
    assert "secret-key-123" not in cli.run("config", "list").stdout  # masked in the table
    assert cli.run("config", "get", "project", AUTOMILL_PROJECT="proj_env").stdout.strip() == "proj_env"
    assert yaml.safe_load(cli.run("config", "get", "-o", "yaml").stdout)["location"] == "europe-west4"
    cli.error(3, "INVALID_ARGUMENT", "config", "set", "colour", "blue")
    cli.error(3, "INVALID_ARGUMENT", "config", "set", "endpoint", "not a url")
    for key in ("project", "location", "api-key"):
        cli.run("config", "unset", key)
    assert cli.run("config", "get", "project").stdout.strip() == "my-project"


def test_project_flag_overrides_env_and_file(cli: Cli, text: dict[str, str]) -> None:
    cli.run("config", "set", "project", "elsewhere")
    try:
        assert cli.json("datasets", "list") == {}
        assert cli.json("datasets", "list", AUTOMILL_PROJECT="my-project")["datasets"]
        assert cli.json("datasets", "list", "--project", "my-project", AUTOMILL_PROJECT="other")["datasets"]
        full = f"projects/my-project/locations/us-central1/datasets/{text['dataset']}"
        assert cli.json("datasets", "get", full)["name"] == full  # a full name ignores the configured parent
    finally:
        cli.run("config", "unset", "project")


def test_api_key_header_and_json_content_type(cli: Cli) -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, {k.lower(): v for k, v in self.headers.items()}))
            body = b'{"name": "projects/p/locations/l/operations/X", "done": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = do_PATCH = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
        cli.run("datasets", "list", "-o", "json", "--endpoint", endpoint, AUTOMILL_API_KEY="k-123")
        cli.run("operations", "cancel", "X", "-o", "json", "--endpoint", endpoint, AUTOMILL_API_KEY="k-123")
    finally:
        httpd.shutdown()
    assert [m for m, _ in seen] == ["GET", "POST"]
    assert all(h["x-goog-api-key"] == "k-123" for _, h in seen)
    assert seen[1][1]["content-type"] == "application/json"


# -- datasets and annotation specs --------------------------------------------------------------------
def test_datasets_commands(srv: Server, cli: Cli, text: dict[str, str]) -> None:
    ds_id = text["dataset"]
    got = cli.json("datasets", "get", ds_id)
    assert got["exampleCount"] == 76
    assert yaml.safe_load(cli.run("datasets", "get", ds_id, "-o", "yaml").stdout) == got
    assert ds_id in cli.table("datasets", "get", ds_id)
    listing = cli.json("datasets", "list")
    assert ds_id in [short(d["name"]) for d in listing["datasets"]]
    assert cli.json("datasets", "list", "--filter", "display_name=cli_ds")["datasets"][0]["name"] == got["name"]
    assert len(cli.json("datasets", "list", "--limit", "1", "--page-size", "1")["datasets"]) == 1
    updated = cli.json("datasets", "update", ds_id, "--description", "news", "--label", "team=ml")
    assert updated["description"] == "news" and updated["labels"] == {"team": "ml"}

    specs = cli.json("annotation-specs", "list", ds_id)["annotationSpecs"]
    assert sorted(s["displayName"] for s in specs) == ["sport", "tech"]
    spec_id = short(specs[0]["name"])
    assert cli.json("annotation-specs", "get", ds_id, spec_id)["name"] == specs[0]["name"]
    assert cli.json("annotation-specs", "get", specs[0]["name"])["displayName"] == specs[0]["displayName"]
    assert spec_id in cli.table("annotation-specs", "list", ds_id)

    exported = cli.json("datasets", "export", ds_id, "gs://cli/exports")
    folder = exported["metadata"]["exportDataDetails"]["outputInfo"]["gcsOutputDirectory"]
    assert (srv.bucket_path("cli") / folder[len("gs://cli/") :] / "text_classification_1.csv").exists()
    assert "exported" in cli.run("datasets", "export", ds_id, "gs://cli/exports2").stdout

    op = cli.json("datasets", "import", ds_id, "gs://cli/rows.csv", "--async")
    assert op["name"].split("/operations/")[1] and "importDataDetails" in op["metadata"]
    assert cli.json("operations", "wait", short(op["name"]))["done"]
    # the CLI's first syntax still works: --parent, --no-wait
    old = cli.json(
        "datasets",
        "import",
        ds_id,
        "gs://cli/rows.csv",
        "--no-wait",
        "--parent",
        "projects/my-project/locations/us-central1",
    )
    assert "importDataDetails" in old["metadata"]
    cli.run("operations", "wait", short(old["name"]))


def test_datasets_create_each_kind_and_delete(cli: Cli) -> None:
    kinds = {
        "--entities": ("TEN", "textExtractionDatasetMetadata"),
        "--objects": ("IOD", "imageObjectDetectionDatasetMetadata"),
        "--images": ("ICN", "imageClassificationDatasetMetadata"),
        "--sentiment-max=4": ("TST", "textSentimentDatasetMetadata"),
    }
    for flag, (prefix, key) in kinds.items():
        ds = cli.json("datasets", "create", f"kind{prefix}", flag)
        assert short(ds["name"]).startswith(prefix) and key in ds, (flag, ds)
    multi = cli.json("datasets", "create", "kind_multi", "--multilabel")
    assert multi["textClassificationDatasetMetadata"]["classificationType"] == "MULTILABEL"
    op = cli.json("datasets", "create", "kind_async", "--async")
    assert op["done"] and op["response"]["displayName"] == "kind_async"
    deleted = cli.json("datasets", "delete", short(multi["name"]))
    assert deleted["done"] and "error" not in deleted
    assert "deleted dataset" in cli.run("datasets", "delete", short(op["response"]["name"]), "--quiet").stdout
    cli.error(4, "NOT_FOUND", "datasets", "get", short(multi["name"]))


# -- text model ---------------------------------------------------------------------------------------
def test_text_model_commands(srv: Server, cli: Cli, text: dict[str, str], tmp_path: Path) -> None:
    model_id = text["model"]
    got = cli.json("models", "get", model_id)
    meta = got["textClassificationModelMetadata"]
    assert meta["modelType"] == "mobile-low-latency-1" and meta["trainBudgetMilliNodeHours"] == "5"
    assert model_id in [short(m["name"]) for m in cli.json("models", "list")["model"]]
    assert cli.json("models", "list", "--filter", f"dataset_id={text['dataset']}")["model"][0]["name"] == got["name"]
    assert cli.json("models", "update", model_id, "--label", "stage=test")["labels"] == {"stage": "test"}

    cli.error(3, "FAILED_PRECONDITION", "predict", model_id, "a goal")  # not deployed yet
    deployed = cli.json("models", "deploy", model_id)
    assert deployed["done"] and "error" not in deployed
    assert cli.json("models", "get", model_id)["deploymentState"] == "DEPLOYED"

    pred = cli.json("predict", model_id, "a goal in the match")
    assert pred["payload"][0]["displayName"] == "sport"
    doc = tmp_path / "doc.txt"
    doc.write_text("chip code review")
    assert cli.json("predict", model_id, "--file", str(doc))["payload"][0]["displayName"] == "tech"
    assert cli.json("predict", model_id, "-", stdin="the goal of the match")["payload"][0]["displayName"] == "sport"
    one = cli.json("predict", model_id, "goal match", "--param", "score_threshold=0.9")["payload"]
    assert [p["displayName"] for p in one] == ["sport"]
    table = cli.table("predict", model_id, "goal match")
    assert "sport" in table and "SCORE" in table

    evals = cli.json("evaluations", "list", model_id)["modelEvaluation"]
    assert len(evals) == 3
    overall = next(e for e in evals if not e.get("annotationSpecId"))
    assert cli.json("evaluations", "get", model_id)["name"] == overall["name"]
    assert cli.json("evaluations", "get", model_id, short(overall["name"]))["name"] == overall["name"]
    assert cli.json("evaluations", "get", overall["name"])["name"] == overall["name"]
    report = cli.table("evaluations", "list", model_id)
    assert "PRECISION" in report and "RECALL" in report and "F1" in report and "Confusion matrix" in report
    assert model_id in report and all(short(e["name"]) in report for e in evals)
    assert re.search(r"│?\s*sport\s+8\s+0", report) and re.search(r"tech\s+0\s+8", report), report
    assert "Confusion matrix" in cli.table("evaluations", "get", model_id)
    assert overall["name"] in [e["name"] for e in cli.json("evaluations", "list", "-")["modelEvaluation"]]

    undeployed = cli.json("models", "undeploy", model_id)
    assert undeployed["done"]
    cli.error(3, "FAILED_PRECONDITION", "predict", model_id, "a goal")


# -- image model --------------------------------------------------------------------------------------
def test_image_model_commands(srv: Server, cli: Cli, image: dict[str, str]) -> None:
    model_id, folder = image["model"], Path(image["folder"])
    assert "deployed model" in cli.run("models", "deploy", image["model"], "--node-count", "2").stdout
    assert cli.json("models", "get", model_id)["imageClassificationModelMetadata"]["nodeCount"] == "2"
    pred = cli.json("predict", model_id, "--file", str(folder / "img13.png"), "--score-threshold", "0")
    assert {p["displayName"] for p in pred["payload"]} == {"red", "blue"}
    piped = cli.json(
        "predict", model_id, "-", "--param", "score_threshold=0", stdin=(folder / "img12.jpg").read_bytes()
    )
    assert len(piped["payload"]) == 2  # image bytes sniffed from stdin
    no_ext = folder / "picture"
    no_ext.write_bytes((folder / "img14.png").read_bytes())
    assert len(cli.json("predict", model_id, "--file", str(no_ext), "--score-threshold", "0")["payload"]) == 2

    # no --quantization: an ONNX export is float32 whatever the model type's TF Lite default
    exported = cli.json("models", "export", model_id, "gs://img/exports", "--format", "onnx")
    out = folder / exported["metadata"]["exportModelDetails"]["outputInfo"]["gcsOutputDirectory"][len("gs://img/") :]
    assert sorted(p.name for p in out.iterdir()) == ["dict.txt", "model.onnx", "onnx_metadata.json"]
    cli.error(1, "UNIMPLEMENTED", "models", "export", model_id, "gs://img/exports", "--format", "core_ml")

    bp = cli.json(
        "models",
        "batch-predict",
        model_id,
        "--input",
        "gs://img/batch.csv",
        "--output",
        "gs://img/preds",
        "--param",
        "score_threshold=0.2",
    )
    where = folder / bp["metadata"]["batchPredictDetails"]["outputInfo"]["gcsOutputDirectory"][len("gs://img/") :]
    lines = [
        json.loads(x) for f in sorted(where.glob("image_classification_*.jsonl")) for x in f.read_text().splitlines()
    ]
    assert len(lines) == 2 and all(x["ID"].startswith("gs://img/img1") for x in lines)
    assert "missing.png" in "".join(f.read_text() for f in where.glob("errors_*.jsonl"))
    text_out = cli.run(
        "models", "batch-predict", model_id, "--input", "gs://img/batch.csv", "--output", "gs://img/preds2"
    ).stdout
    assert "written to gs://img/preds2/prediction-cli_img_model-" in text_out

    evals = cli.json("evaluations", "list", model_id)["modelEvaluation"]
    assert {e.get("displayName") for e in evals if e.get("annotationSpecId")} == {"red", "blue"}
    report = cli.table("evaluations", "list", model_id)
    assert "Confusion matrix" in report and "red" in report and "blue" in report


# -- tables never cut an id ---------------------------------------------------------------------------
def test_tables_print_whole_ids_at_80_columns(cli: Cli, text: dict[str, str], image: dict[str, str]) -> None:
    for args in (
        ["datasets", "list"],
        ["models", "list"],
        ["operations", "list"],
        ["models", "get", text["model"]],
        ["datasets", "get", image["dataset"]],
    ):
        out = cli.table(*args)
        json_out = cli.json(*args)
        ids = {short(x["name"]) for v in json_out.values() if isinstance(v, list) for x in v} or {
            short(json_out["name"])
        }
        for i in ids:
            assert len(i) == 22 and i in out, (args, i, out)
    models = cli.table("models", "list")
    assert text["dataset"] in models and image["dataset"] in models and image["model"] in models
    assert all(len(m) == 22 for m in ID.findall(models))
    wide = cli.table("models", "list", columns=140)
    assert "BUDGET" in wide and "COST" in wide and "mobile-low-latency-1" in wide


# -- operations and waiting ---------------------------------------------------------------------------
def test_operations_commands_and_ctrl_c(cli: Cli, text: dict[str, str]) -> None:
    ops = cli.json("operations", "list")["operations"]
    assert {"createDatasetDetails", "importDataDetails", "createModelDetails"} <= {
        k for o in ops for k in o["metadata"]
    }
    first = short(ops[0]["name"])
    assert cli.json("operations", "get", first)["name"] == ops[0]["name"]
    assert first in cli.table("operations", "get", first)
    assert cli.json("operations", "wait", first)["done"]
    assert all(o.get("done") for o in cli.json("operations", "list", "--filter", "done=true")["operations"])

    # a training long enough to interrupt: Ctrl-C, answer no (resume hint), then yes (cancel)
    op = cli.json(
        "models",
        "create",
        "cli_cancel",
        "--dataset",
        text["dataset"],
        "--budget",
        "50",
        "--model-type",
        "mobile-high-accuracy-1",
        "--async",
    )
    assert not op.get("done")
    op_id = short(op["name"])
    for answer, said in (("n\n", f"automill operations wait {op_id}"), ("y\n", "cancel requested")):
        proc = subprocess.Popen(
            [sys.executable, "-m", "automill", "operations", "wait", op_id],
            env=cli.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(answer, timeout=60)
        assert proc.returncode == 130, (out, err)
        assert f"Cancel operation {op_id}? [y/N]" in err and said in err and "Traceback" not in err
    err = cli.error(1, "CANCELLED", "operations", "wait", op_id)
    assert op_id in err
    assert cli.json("operations", "get", op_id)["error"]["code"] == 1

    other = cli.json(
        "models",
        "create",
        "cli_cancel2",
        "--dataset",
        text["dataset"],
        "--budget",
        "50",
        "--model-type",
        "mobile-high-accuracy-1",
        "--async",
    )
    assert cli.json("operations", "cancel", short(other["name"])) == {}
    cli.error(1, "CANCELLED", "operations", "wait", short(other["name"]))
    assert cli.json("operations", "delete", short(other["name"])) == {}
    assert "deleted operation" in cli.run("operations", "delete", op_id, "--quiet").stdout
    cli.error(4, "NOT_FOUND", "operations", "get", op_id)


# -- errors -------------------------------------------------------------------------------------------
def test_error_exit_codes(cli: Cli, text: dict[str, str], tmp_path: Path) -> None:
    missing = "TCN1000000000000009999"
    for args in (
        ["datasets", "get", missing],
        ["models", "get", missing],
        ["operations", "get", missing],
        ["evaluations", "list", missing],
        ["annotation-specs", "list", missing],
    ):
        cli.error(4, "NOT_FOUND", *args)
    down = f"http://127.0.0.1:{free_port()}"
    err = cli.error(6, "UNAVAILABLE", "datasets", "list", "--endpoint", down)
    assert down in err
    cli.error(6, "UNAVAILABLE", "models", "get", "X", AUTOMILL_ENDPOINT=down)
    cli.error(3, "INVALID_ARGUMENT", "datasets", "create", "bad name!")
    cli.error(3, "INVALID_ARGUMENT", "predict", text["model"], "--file", str(tmp_path / "nope.txt"))
    cli.error(
        3,
        "INVALID_ARGUMENT",
        "models",
        "batch-predict",
        text["model"],
        "--input",
        "gs://cli/x.csv",
        "--output",
        "gs://cli/o",
        "--param",
        "no_equals_sign",
    )
    cli.error(3, "INVALID_ARGUMENT", "datasets", "get", "a/b")
    cli.error(3, "INVALID_ARGUMENT", "models", "create", "m", "--dataset", text["dataset"], "--model-type", "nonsense")
    bad = tmp_path / "bad.ini"
    bad.write_text("this is [not an ini")
    cli.error(3, "INVALID_ARGUMENT", "datasets", "list", AUTOMILL_CONFIG=str(bad))
    assert cli.run("datasets", "list", "-o", "xml", code=2).returncode == 2  # typer's usage error


# -- deletes last --------------------------------------------------------------------------------------
def test_models_delete(cli: Cli, text: dict[str, str]) -> None:
    deleted = cli.json("models", "delete", text["model"])
    assert deleted["done"] and "error" not in deleted
    cli.error(4, "NOT_FOUND", "models", "get", text["model"])
    assert "deleted dataset" in cli.run("datasets", "delete", text["dataset"], "-q").stdout
