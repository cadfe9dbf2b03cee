"""The ``docker`` export of any model: a folder that serves ``:predict`` on its own.

    manifest = export_docker_package(model_dir, out_dir, problem_type=..., model_name=..., display_name=...)

The folder (``out_dir``, a local folder the ExportModel job then copies to the bucket) holds:

- ``model/``: the model's serving files, what ``problem.load(model/)`` reads (``model.pt``, the
  torch weights image models keep for training and edge exports, stays behind: serving uses
  ``model.onnx``);
- ``automill-model.json`` (MANIFEST): problem type, model id and display name, labels, the
  Automill version, the predict request and response shape;
- ``automill-src/``: Automill's own source (it is not on PyPI) with a ``pyproject.toml`` built from
  the installed package's metadata, and ``constraints.txt`` pinning its direct dependencies to the
  versions of the exporting server (pickled scikit-learn models want the same version);
- ``wheels/``: an optional wheelhouse the image build also installs from (empty but for a README);
- ``Dockerfile`` and ``README.md``: build and run the image, or run the folder without docker with
  ``automill serve-model FOLDER`` (api/standalone.py).

Nothing here builds or runs docker: the Dockerfile is written, not tested, where the export runs.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST = "automill-model.json"
MODEL_DIR = "model"
FORMAT = "automill-docker"
FORMAT_VERSION = 1
#: Files of a model folder that serving does not read (training state of image models).
TRAINING_ONLY = {"model.pt"}
#: Package folders an exported server does not need (sample data sets for the docs).
SOURCE_SKIP = {"__pycache__", "samples"}
PORT = 8080
#: The README's row for automill-src/.
SOURCE_CELL = (
    "Automill's source (it is not on PyPI), its `pyproject.toml` and `constraints.txt` "
    "(the exporting server's dependency versions)"
)

_EXAMPLE_PAYLOADS = {
    "image": {"image": {"imageBytes": "<base64 of a JPEG, PNG, GIF, BMP, WEBP or ICO image>"}},
    "text": {"textSnippet": {"content": "text to classify or to extract entities from", "mimeType": "text/plain"}},
}


def automill_version() -> str:
    try:
        return metadata.version("automill")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def export_docker_package(
    model_dir: Path,
    out_dir: Path,
    *,
    problem_type: str,
    model_name: str,
    display_name: str,
    metadata_key: str = "",
    predict_params: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Write the folder into ``out_dir``; return the manifest written as ``automill-model.json``.
    ``metadata_key`` (e.g. textClassificationModelMetadata) and ``predict_params`` (the params the
    problem's predict reads) only describe the model in the manifest."""
    meta = json.loads((model_dir / "model.json").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    model_out = out_dir / MODEL_DIR
    model_out.mkdir()
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and path.name not in TRAINING_ONLY:
            shutil.copy2(path, model_out / path.name)
    model_id = model_name.rsplit("/", 1)[-1]
    version = automill_version()
    image = problem_type.startswith("image_")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "automill_version": version,
        "exported_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "problem_type": problem_type,
        "model": {
            "name": model_name,
            "id": model_id,
            "display_name": display_name,
            "metadata_key": metadata_key,
            "model_type": meta.get("model_type", ""),
        },
        "labels": list(meta.get("display_names", [])),
        "annotation_spec_ids": list(meta.get("annotation_spec_ids", [])),
        "model_dir": MODEL_DIR,
        "predict": {
            "method": "POST",
            "paths": [
                f"/{v}/projects/{{project}}/locations/{{location}}/models/{model_id}:predict" for v in ("v1", "v1beta1")
            ],
            "accepts": "any project and location; the model segment must be this model's id",
            "request": {"payload": _EXAMPLE_PAYLOADS["image" if image else "text"]},
            "params": list(predict_params),  # PredictRequest.params this model reads (string values)
            "request_type": "google.cloud.automl.v1.PredictRequest (JSON)",
            "response_type": "google.cloud.automl.v1.PredictResponse (JSON), as the full server answers",
            "annotation_payload": _PAYLOAD_KIND.get(problem_type, ""),
        },
        "serve": {
            "docker": f"docker build -t {_tag(model_id)} . && docker run --rm -p {PORT}:{PORT} {_tag(model_id)}",
            "without_docker": "automill serve-model . --port 8081",
        },
    }
    _write_source(out_dir / "automill-src", version)
    (out_dir / "wheels").mkdir()
    (out_dir / "wheels" / "README.md").write_text(
        "Optional: wheels put here are installed from while the image builds (`pip install --find-links`), "
        "e.g. packages that only your own package index has, or all of them for a build without network.\n"
    )
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    (out_dir / "Dockerfile").write_text(_dockerfile(manifest))
    (out_dir / "README.md").write_text(_readme(manifest))
    return manifest


_PAYLOAD_KIND = {
    "image_classification": "classification",
    "image_object_detection": "imageObjectDetection",
    "text_classification": "classification",
    "text_sentiment": "textSentiment",
    "text_extraction": "textExtraction",
}


def _tag(model_id: str) -> str:
    return "automill-" + re.sub(r"[^a-z0-9_.-]", "-", model_id.lower())


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an exported folder (ValueError when ``folder`` is not one)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ValueError(
            f"{folder} is not an exported Automill model: {MANIFEST} is missing "
            "(export the model with model_format docker)"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT or int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{path} is format {manifest.get('format')!r} version {manifest.get('format_version')!r}; "
            f"this Automill ({automill_version()}) reads {FORMAT} up to version {FORMAT_VERSION}"
        )
    return manifest


# -- Automill's source, installable without PyPI knowing it ---------------------------------------------
def _write_source(dest: Path, version: str) -> None:
    import automill

    package = Path(automill.__file__).resolve().parent
    shutil.copytree(
        package,
        dest / "automill",
        ignore=lambda d, names: [n for n in names if n in SOURCE_SKIP or n.endswith((".pyc", ".pyo"))],
    )
    try:
        dist = metadata.distribution("automill")
        requires = [r for r in dist.requires or [] if "extra ==" not in r]
        python = str(dist.metadata.json.get("requires_python") or ">=3.11,<3.12")
    except metadata.PackageNotFoundError:
        requires, python = [], ">=3.11,<3.12"
    deps = "".join(f"    {json.dumps(r)},\n" for r in requires)
    (dest / "pyproject.toml").write_text(
        "# Written by Automill's docker export from the installed package (Automill is not on PyPI).\n"
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "automill"\nversion = "{version}"\nrequires-python = "{python}"\n'
        f"dependencies = [\n{deps}]\n\n"
        '[project.scripts]\nautomill = "automill.cli.main:app"\n\n'
        '[tool.setuptools.packages.find]\nwhere = ["."]\ninclude = ["automill*"]\n\n'
        '[tool.setuptools.package-data]\nautomill = ["store/migrations/*.ini", "store/migrations/*.mako"]\n'
    )
    (dest / "constraints.txt").write_text(
        "# Direct dependencies at the versions of the server that exported this model.\n"
        + "".join(f"{name}=={ver}\n" for name, ver in _pins(requires))
    )


def _pins(requires: list[str]) -> list[tuple[str, str]]:
    out = []
    for req in requires:
        name = re.split(r"[\s\[<>=!~;(]", req, maxsplit=1)[0]
        try:
            out.append((name, metadata.version(name).split("+", 1)[0]))  # 2.13.0+cpu -> 2.13.0
        except metadata.PackageNotFoundError:
            continue
    return out


# -- the Dockerfile and README ---------------------------------------------------------------------------
def _dockerfile(m: dict[str, Any]) -> str:
    model = m["model"]
    return f"""\
# A prediction-only Automill server for model {model["id"]} ("{model["display_name"]}", {m["problem_type"]}).
#   docker build -t {_tag(model["id"])} .
#   docker run --rm -p {PORT}:{PORT} {_tag(model["id"])}
# Written by Automill {m["automill_version"]} without docker at hand: not built where it was written (README.md).
FROM python:3.11-slim

# Automill is not on PyPI: its source is in automill-src/. Its dependencies (torch, transformers,
# spaCy, onnxruntime, ...) come from the package index while the image builds, pinned by
# automill-src/constraints.txt, plus any wheels put in wheels/. Point pip elsewhere with e.g.
#   --build-arg PIP_ARGS="--index-url https://your.mirror/simple"
# Nothing is downloaded when the container runs.
ARG PIP_ARGS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY wheels/ /tmp/wheels/
COPY automill-src/ /tmp/automill-src/
RUN pip install $PIP_ARGS --find-links /tmp/wheels -c /tmp/automill-src/constraints.txt /tmp/automill-src \\
    && rm -rf /tmp/automill-src /tmp/wheels

ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
RUN useradd --create-home --uid 10001 automill
COPY {MANIFEST} /srv/model-export/{MANIFEST}
COPY {MODEL_DIR}/ /srv/model-export/{MODEL_DIR}/
USER automill
WORKDIR /srv/model-export
EXPOSE {PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \\
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/healthz', timeout=4)"
CMD ["automill", "serve-model", "/srv/model-export", "--host", "0.0.0.0", "--port", "{PORT}"]
"""


def _readme(m: dict[str, Any]) -> str:
    model, tag = m["model"], _tag(m["model"]["id"])
    example = json.dumps(m["predict"]["request"])
    return f"""\
# {model["display_name"]} ({model["id"]}), exported by Automill

The {m["problem_type"]} model {model["id"]}, exported {m["exported_at"]} by Automill {m["automill_version"]} with
`model_format: docker`. This folder serves the same `:predict` REST call as the Automill server
that trained it, with or without docker, and needs no database and no network at predict time.

| file | what |
| --- | --- |
| `{MODEL_DIR}/` | the model's files, as the server loads them |
| `{MANIFEST}` | problem type, model id and name, labels (in output order), the predict request and response shape |
| `Dockerfile` | a prediction-only image: `automill serve-model` on port {PORT} |
| `automill-src/` | {SOURCE_CELL} |
| `wheels/` | optional wheels the image build installs from |

Labels: {", ".join(m["labels"]) or "(none)"}. Params it reads (`PredictRequest.params`, string
values): {", ".join(m["predict"]["params"]) or "none"}.

## Build and run the image

```bash
docker build -t {tag} .
docker run --rm -p {PORT}:{PORT} {tag}
curl -s http://127.0.0.1:{PORT}/healthz
curl -s -X POST -H 'Content-Type: application/json' \\
  http://127.0.0.1:{PORT}/v1/projects/my-project/locations/us-central1/models/{model["id"]}:predict \\
  -d '{example}'
```

The build installs Automill from `automill-src/` and its dependencies from the package index
(PyPI by default) at the versions in `automill-src/constraints.txt`; it needs network access, the
running container does not. For another index or a mirror, pass
`--build-arg PIP_ARGS="--index-url https://mirror.example/simple"`; packages your index lacks
(the exporting server may have had some from its own index) go into `wheels/` as `.whl` files.
torch from PyPI comes with CUDA libraries; for a smaller CPU-only image add PyTorch's CPU index
with `--extra-index-url` in `PIP_ARGS`.

This Dockerfile was written by Automill on a machine without docker and was not built there:
it was checked by reading. If a build fails, the same server runs without docker, as below.

## Run it without docker

Where Automill {m["automill_version"]} is installed (`pip install ./automill-src` installs this copy):

```bash
automill serve-model . --host 127.0.0.1 --port 8081
```

## Calling it

`POST /v1/projects/{{project}}/locations/{{location}}/models/{model["id"]}:predict` (or `/v1beta1/...`)
with a PredictRequest body; the answer is the PredictResponse JSON the Automill server gives, and
errors are google.rpc.Status JSON. Any project and location are accepted; the model segment must be
`{model["id"]}` (another id answers 404), so the official client works with the model's original
name and `api_endpoint="http://127.0.0.1:{PORT}"`. `GET /healthz` answers once the model is loaded.
"""
