"""ExportModel with model_format docker, for every problem type through `automill models export`, and
`automill serve-model` on the exported folders: the standalone server answers :predict as the full
server does (issue 31)."""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.conftest import Server, free_port
from tests.e2e.clients import clients
from tests.e2e.rest import PARENT, Rest

#: 5 milli node hours (18 s) per text model keeps the four trainings short.
TEXT_BUDGET = 5
TEXTS = [
    "goal match tonight",
    "new chip code",
    "the match ended with a late goal",
    "code review of the chip",
    "goal",
    "something else entirely",
]


def write(server: Server, name: str, text: str) -> str:
    path = server.bucket_path("work") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return f"gs://work/{name}"


def make_data(server: Server) -> dict[str, tuple[dict, str]]:
    """Dataset body and import URI per problem type (tiny data)."""
    from PIL import Image

    cls = [
        f'{use},"{w} {kind} {use.lower()} {i}",{lab}'
        for use, n in (("TRAIN", 24), ("VALIDATE", 4), ("TEST", 6))
        for i in range(n)
        for w, kind, lab in (("goal match", "story", "sport"), ("chip code", "item", "tech"))
    ]
    words = {0: "awful dull boring", 1: "plain average okay", 2: "wonderful great moving"}
    sent = [
        f'{use},"{words[v]} film {use.lower()} {i}",{v}'
        for use, n in (("TRAIN", 16), ("VALIDATE", 3), ("TEST", 4))
        for i in range(n)
        for v in (0, 1, 2)
    ]
    people, cities = ["Alice Smith", "Bob Jones", "Carol White", "Dan Brown"], ["Paris", "Berlin", "Madrid", "Rome"]
    ner = []
    for i in range(80):
        who, where = people[i % 4], cities[(i // 4) % 4]
        text = f"{who} met officials in {where} on day {i} ."
        ner.append(
            json.dumps(
                {
                    "text_snippet": {"content": text},
                    "annotations": [
                        {
                            "display_name": "PER",
                            "text_extraction": {"text_segment": {"start_offset": 0, "end_offset": len(who)}},
                        },
                        {
                            "display_name": "LOC",
                            "text_extraction": {
                                "text_segment": {
                                    "start_offset": text.index(where),
                                    "end_offset": text.index(where) + len(where),
                                }
                            },
                        },
                    ],
                }
            )
        )
    write(server, "ner_train.jsonl", "\n".join(ner[:64]) + "\n")
    write(server, "ner_test.jsonl", "\n".join(ner[64:]) + "\n")
    folder = server.bucket_path("work")
    rnd, rows = random.Random(0), []
    for i in range(16):
        label, base = ("red", (200, 30, 30)) if i % 2 == 0 else ("blue", (30, 30, 200))
        im = Image.new("RGB", (32, 32), base)
        for _ in range(60):
            im.putpixel(
                (rnd.randrange(32), rnd.randrange(32)), tuple(min(255, max(0, c + rnd.randint(-40, 40))) for c in base)
            )
        im.save(folder / f"img{i}.png")
        rows.append(f"{'TRAIN' if i < 10 else 'VALIDATE' if i < 12 else 'TEST'},gs://work/img{i}.png,{label}")
    return {
        "text_classification": (
            {"textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
            write(server, "cls.csv", "\n".join(cls) + "\n"),
        ),
        "text_sentiment": (
            {"textSentimentDatasetMetadata": {"sentimentMax": 2}},
            write(server, "sent.csv", "\n".join(sent) + "\n"),
        ),
        "text_extraction": (
            {"textExtractionDatasetMetadata": {}},
            write(server, "ner.csv", "TRAIN,gs://work/ner_train.jsonl\nTEST,gs://work/ner_test.jsonl\n"),
        ),
        "image_classification": (
            {"imageClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
            write(server, "img.csv", "\n".join(rows) + "\n"),
        ),
        "image_object_detection": (
            {"imageObjectDetectionDatasetMetadata": {}},
            "gs://automill-samples/raccoons/raccoons.csv",
        ),
    }


@contextmanager
def serve_model(folder: Path, log: Path) -> Iterator[str]:
    """`automill serve-model FOLDER` on a free port; yields its endpoint once /healthz answers."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as log_file:  # the server keeps writing to its copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "automill", "serve-model", str(folder), "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"serve-model exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"serve-model not ready:\n{log.read_text()}"
            try:
                if requests.get(f"{endpoint}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def predict(endpoint: str, name: str, body: dict, version: str = "v1", expect: int = 200) -> dict:
    resp = requests.post(f"{endpoint}/{version}/{name}:predict", json=body, timeout=60)
    assert resp.status_code == expect, resp.text
    return resp.json()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_docker_export_of_every_problem_type(server: Server, tmp_path: Path) -> None:
    api = Rest(server.endpoint)
    data = make_data(server)
    datasets = {}
    for kind, (meta, _) in data.items():
        op = api.call("POST", f"{PARENT}/datasets", {"displayName": f"exp_{kind}"[:32], **meta})
        datasets[kind] = api.wait(op)["response"]["name"]
    imports = {
        k: api.call("POST", f"{datasets[k]}:importData", {"inputConfig": {"gcsSource": {"inputUris": [uri]}}})
        for k, (_, uri) in data.items()
    }
    for kind, op in imports.items():
        assert "error" not in api.wait(op), kind
    trainings = {}
    for kind, name in datasets.items():
        key = next(iter(data[kind][0])).replace("DatasetMetadata", "ModelMetadata")
        meta = {"trainBudgetMilliNodeHours": "5"}
        if kind == "image_object_detection":  # its features take longer to compute than 18 s on 2 cores
            meta = {"trainBudgetMilliNodeHours": "10", "modelType": "mobile-low-latency-1"}
        trainings[kind] = api.call(
            "POST",
            f"{PARENT}/models",
            {"displayName": f"exp_{kind}"[:32], "datasetId": name.rsplit("/", 1)[-1], key: meta},
        )
    models = {}
    for kind, op in trainings.items():
        done = api.wait(op, timeout=400)
        assert "error" not in done, (kind, done)
        models[kind] = done["response"]["name"]

    # The full server's answers for the text classification model, deployed.
    cls_model = models["text_classification"]
    assert "error" not in api.wait(api.call("POST", f"{cls_model}:deploy", {}))
    full = {
        t: predict(
            server.endpoint, cls_model, {"payload": {"textSnippet": {"content": t}}, "params": {"score_threshold": "0"}}
        )
        for t in TEXTS
    }

    # Export every model as docker with the CLI: the folder is named as other exports are.
    folders = {}
    env = {**os.environ, "AUTOMILL_ENDPOINT": server.endpoint, "AUTOMILL_CONFIG": str(tmp_path / "cli.ini")}
    for kind, name in models.items():
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "automill",
                "models",
                "export",
                name,
                "gs://work/out",
                "--format",
                "docker",
                "-o",
                "json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, (kind, proc.stdout, proc.stderr)
        done = json.loads(proc.stdout)
        assert done["done"] and "error" not in done, (kind, done)
        uri = done["metadata"]["exportModelDetails"]["outputInfo"]["gcsOutputDirectory"]
        assert uri.startswith(f"gs://work/out/model-export-exp_{kind}-"), uri
        folders[kind] = server.bucket_path("work") / uri[len("gs://work/") :]
    for kind, folder in folders.items():
        top = sorted(p.name for p in folder.iterdir())
        assert top == ["Dockerfile", "README.md", "automill-model.json", "automill-src", "model", "wheels"], (kind, top)
        manifest = json.loads((folder / "automill-model.json").read_text())
        assert manifest["problem_type"] == kind and manifest["model"]["name"] == models[kind]
        assert manifest["model"]["id"] == models[kind].rsplit("/", 1)[-1] and manifest["labels"]
        assert manifest["automill_version"] and manifest["predict"]["paths"][0].endswith(
            f"{manifest['model']['id']}:predict"
        )
        assert (folder / "model" / "model.json").is_file()
        assert (folder / "automill-src" / "automill" / "api" / "standalone.py").is_file()
        assert "automill" in (folder / "automill-src" / "pyproject.toml").read_text()
        assert "scikit-learn==" in (folder / "automill-src" / "constraints.txt").read_text()
        dockerfile = (folder / "Dockerfile").read_text()
        assert "FROM python:3.11" in dockerfile and "serve-model" in dockerfile and "COPY automill-src/" in dockerfile
        readme = (folder / "README.md").read_text()
        assert "docker build" in readme and "automill serve-model" in readme and "not built" in readme
    assert sorted(p.name for p in (folders["image_classification"] / "model").iterdir()) == ["model.json", "model.onnx"]
    assert (folders["text_classification"] / "model" / "model.pkl").is_file()

    # Format rules: tflite/onnx are image formats; docker takes no params; no format = docker for text.
    dest = {"gcsDestination": {"outputUriPrefix": "gs://work/fmt"}}
    err = api.call("POST", f"{cls_model}:export", {"outputConfig": {"modelFormat": "tflite", **dest}}, expect=400)
    assert err["error"]["status"] == "FAILED_PRECONDITION" and "docker" in err["error"]["message"]
    err = api.call(
        "POST",
        f"{cls_model}:export",
        {"outputConfig": {"modelFormat": "docker", **dest, "params": {"quantization": "float32"}}},
        expect=400,
    )
    assert err["error"]["status"] == "INVALID_ARGUMENT"
    done = api.wait(api.call("POST", f"{cls_model}:export", {"outputConfig": dest}))
    out = done["metadata"]["exportModelDetails"]["outputInfo"]["gcsOutputDirectory"]
    assert (server.bucket_path("work") / out[len("gs://work/") :] / "Dockerfile").is_file()

    # serve-model on the text classification export: the same answers as the full server.
    cls_id = cls_model.rsplit("/", 1)[-1]
    with serve_model(folders["text_classification"], tmp_path / "cls.log") as endpoint:
        health = requests.get(f"{endpoint}/healthz", timeout=5).json()
        assert health["status"] == "ok" and health["model"] == cls_id
        for text, want in full.items():
            got = predict(
                endpoint, cls_model, {"payload": {"textSnippet": {"content": text}}, "params": {"score_threshold": "0"}}
            )
            assert [p["displayName"] for p in got["payload"]] == [p["displayName"] for p in want["payload"]], text
            assert [p["annotationSpecId"] for p in got["payload"]] == [p["annotationSpecId"] for p in want["payload"]]
            for g, w in zip(got["payload"], want["payload"], strict=True):
                assert abs(g["classification"]["score"] - w["classification"]["score"]) <= 1e-6, (text, g, w)
        # default params, v1beta1, and any project / location
        default_full = predict(server.endpoint, cls_model, {"payload": {"textSnippet": {"content": TEXTS[0]}}})
        other = f"projects/elsewhere/locations/eu/models/{cls_id}"
        assert (
            predict(endpoint, other, {"payload": {"textSnippet": {"content": TEXTS[0]}}}, "v1beta1")["payload"]
            == predict(server.endpoint, cls_model, {"payload": {"textSnippet": {"content": TEXTS[0]}}}, "v1beta1")[
                "payload"
            ]
        )
        assert [
            p["displayName"]
            for p in predict(endpoint, cls_model, {"payload": {"textSnippet": {"content": TEXTS[0]}}})["payload"]
        ] == [p["displayName"] for p in default_full["payload"]]
        # the official client, pointed at the standalone server
        _, _, predictor = clients("v1", endpoint)
        resp = predictor.predict(
            name=cls_model,
            payload={"text_snippet": {"content": TEXTS[1], "mime_type": "text/plain"}},
            params={"score_threshold": "0"},
        )
        assert [(p.display_name, round(p.classification.score, 5)) for p in resp.payload] == [
            (p["displayName"], round(p["classification"]["score"], 5)) for p in full[TEXTS[1]]["payload"]
        ]
        # errors: google.rpc.Status JSON, as the full server answers them
        for body, field in (
            ({"payload": {"textSnippet": {"content": "  "}}}, "payload.text_snippet.content"),
            (
                {"payload": {"textSnippet": {"content": "x"}}, "params": {"score_threshold": "2"}},
                "params.score_threshold",
            ),
            ({"payload": {}, "bogus": 1}, None),
        ):
            mine, theirs = (
                predict(endpoint, cls_model, body, expect=400),
                predict(server.endpoint, cls_model, body, expect=400),
            )
            assert mine["error"]["status"] == theirs["error"]["status"] == "INVALID_ARGUMENT", mine
            assert mine["error"]["message"] == theirs["error"]["message"]
            if field:
                assert mine["error"]["details"][0]["fieldViolations"][0]["field"] == field
        bad = requests.post(
            f"{endpoint}/v1/{cls_model}:predict", data="{nope", timeout=10, headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400 and "Invalid JSON" in bad.json()["error"]["message"]
        wrong = predict(endpoint, f"{PARENT}/models/TCN999", {"payload": {"textSnippet": {"content": "x"}}}, expect=404)
        assert wrong["error"]["status"] == "NOT_FOUND" and cls_id in wrong["error"]["message"]
        assert requests.get(f"{endpoint}/v1/{PARENT}/models", timeout=10).json()["error"]["code"] in (404, 405)
        not_json = requests.post(
            f"{endpoint}/v1/{cls_model}:predict", data=b"{}", timeout=10, headers={"Content-Type": "text/plain"}
        )
        assert not_json.status_code == 415 and not_json.json()["error"]["status"] == "INVALID_ARGUMENT"

    # One predict each for the sentiment, extraction and image exports.
    image = base64.b64encode((server.bucket_path("work") / "img0.png").read_bytes()).decode()
    from automill.store.blobs import BUILTIN_BUCKETS

    raccoon = base64.b64encode(
        (BUILTIN_BUCKETS["automill-samples"] / "raccoons" / "raccoon-168.jpg").read_bytes()
    ).decode()
    bodies = {
        "text_sentiment": {"payload": {"textSnippet": {"content": "wonderful great moving film"}}},
        "text_extraction": {"payload": {"textSnippet": {"content": "Bob Jones met officials in Rome on day 3 ."}}},
        "image_classification": {"payload": {"image": {"imageBytes": image}}, "params": {"score_threshold": "0"}},
        "image_object_detection": {
            "payload": {"image": {"imageBytes": raccoon}},
            "params": {"score_threshold": "0", "max_bounding_box_count": "3"},
        },
    }
    for kind, body in bodies.items():
        with serve_model(folders[kind], tmp_path / f"{kind}.log") as endpoint:
            got = predict(endpoint, models[kind], body)
            if kind == "text_sentiment":
                assert got["payload"][0]["textSentiment"].get("sentiment", 0) in (0, 1, 2)  # JSON leaves 0 out
                assert -1 <= float(got["metadata"]["sentiment_score"]) <= 1
            elif kind == "text_extraction":
                text = body["payload"]["textSnippet"]["content"]
                for p in got.get("payload", []):
                    seg = p["textExtraction"]["textSegment"]
                    assert text[int(seg.get("startOffset", 0)) : int(seg["endOffset"])] == seg["content"]
            elif kind == "image_object_detection":
                assert 1 <= len(got["payload"]) <= 3 and all(p["displayName"] == "raccoon" for p in got["payload"])
                vs = got["payload"][0]["imageObjectDetection"]["boundingBox"]["normalizedVertices"]
                assert len(vs) == 2
            else:
                assert {p["displayName"] for p in got["payload"]} == {"red", "blue"}
                assert abs(sum(p["classification"]["score"] for p in got["payload"]) - 1) < 1e-3
