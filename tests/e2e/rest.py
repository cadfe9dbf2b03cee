"""Plain HTTP helpers for curl-like tests (the bodies people type, not the client's)."""

from __future__ import annotations

import time
from typing import Any

import requests

PARENT = "projects/curl/locations/us-central1"


class Rest:
    def __init__(self, endpoint: str, version: str = "v1") -> None:
        self.base = f"{endpoint}/{version}"

    def call(
        self, method: str, path: str, body: Any = None, *, raw: str | None = None, params: Any = None, expect: int = 200
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        data = raw if raw is not None else (None if body is None else __import__("json").dumps(body))
        resp = requests.request(method, f"{self.base}/{path}", data=data, params=params, headers=headers, timeout=30)
        assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def wait(self, op: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while not op.get("done"):
            assert time.monotonic() < end, f"operation {op['name']} not done in {timeout}s: {op}"
            time.sleep(0.3)
            op = self.call("GET", op["name"])
        return op

    def create_text_dataset(self, name: str, ctype: str = "MULTICLASS") -> str:
        op = self.call(
            "POST",
            f"{PARENT}/datasets",
            {"displayName": name, "textClassificationDatasetMetadata": {"classificationType": ctype}},
        )
        return self.wait(op)["response"]["name"]
