"""/openapi.json describes exactly the routes the server serves (api.openapi against api.routes)."""

from __future__ import annotations

import re

from automill.api.openapi import document
from automill.api.routes import ROUTES


def _concrete(path: str) -> str:
    """An OpenAPI path with each parameter filled in, as a request would name it."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_every_documented_path_is_served_and_every_route_documented() -> None:
    doc = document()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    for method, path in documented:
        version, _, rest = path.lstrip("/").partition("/")
        served = [
            r for r in ROUTES if r.method == method and version in r.versions and r.pattern.match(_concrete(rest))
        ]
        assert served, f"{method} {path} is documented but not served"
    for r in ROUTES:
        for version in r.versions:
            hits = [
                p
                for m, p in documented
                if m == r.method and p.startswith(f"/{version}/") and r.pattern.match(_concrete(p[len(version) + 2 :]))
            ]
            assert hits, f"{r.method} {r.pattern.pattern} ({version}) is served but not documented"


def test_shapes_come_from_the_descriptors() -> None:
    doc = document()
    create = doc["paths"]["/v1/projects/{project}/locations/{location}/datasets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/google.cloud.automl.v1.Dataset"
    }
    dataset = doc["components"]["schemas"]["google.cloud.automl.v1.Dataset"]["properties"]
    assert dataset["exampleCount"]["format"] == "int32" and dataset["createTime"]["format"] == "date-time"
    meta = doc["components"]["schemas"]["google.cloud.automl.v1.TextClassificationDatasetMetadata"]["properties"]
    assert meta["classificationType"]["enum"] == ["CLASSIFICATION_TYPE_UNSPECIFIED", "MULTICLASS", "MULTILABEL"]
    assert all("default" in op["responses"] for ops in doc["paths"].values() for op in ops.values())
