"""The per-key request rate (max_requests_per_minute): past it, 429 RESOURCE_EXHAUSTED with Retry-After,
per key, and never for a keyless loopback server's own user."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.conftest import serving
from tests.e2e.test_auth import create_key

PATH = "v1/projects/rate/locations/us-central1/datasets"


def test_each_key_has_its_own_rate(tmp_path: Path) -> None:
    with serving(tmp_path / "data", workers=0, env={"AUTOMILL_MAX_REQUESTS_PER_MINUTE": "5"}) as server:
        url = f"{server.endpoint}/{PATH}"
        assert all(requests.get(url, timeout=10).status_code == 200 for _ in range(8))  # anonymous: not limited
        first = create_key(server.data_dir, "--project", "rate", "--role", "viewer", "--name", "first")
        second = create_key(server.data_dir, "--project", "rate", "--role", "viewer", "--name", "second")
        codes = [requests.get(url, headers={"x-goog-api-key": first}, timeout=10) for _ in range(7)]
        assert [r.status_code for r in codes[:5]] == [200] * 5
        refused = codes[5]
        assert refused.status_code == 429 and refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert int(refused.headers["Retry-After"]) >= 1 and "first" in refused.json()["error"]["message"]
        assert requests.get(url, headers={"Authorization": f"Bearer {second}"}, timeout=10).status_code == 200
