"""max_running_operations_per_project: one operation past the project's quota of queued or running
operations is refused with 429 RESOURCE_EXHAUSTED and Retry-After, and other projects are not
affected. With no workers, the imports stay queued."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.conftest import serving
from tests.e2e.rest import Rest


def test_quota_of_running_operations(tmp_path: Path) -> None:
    with serving(tmp_path / "data", workers=0, env={"AUTOMILL_MAX_RUNNING_OPERATIONS_PER_PROJECT": "2"}) as server:
        api = Rest(server.endpoint)

        def dataset(project: str) -> str:
            op = api.call(
                "POST",
                f"projects/{project}/locations/us-central1/datasets",
                {"displayName": "q", "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
            )
            return api.wait(op)["response"]["name"]

        body = {"inputConfig": {"gcsSource": {"inputUris": ["gs://quota/rows.csv"]}}}
        for _ in range(2):
            api.call("POST", f"{dataset('busy')}:importData", body)
        third = dataset("busy")
        resp = requests.post(f"{server.endpoint}/v1/{third}:importData", json=body, timeout=10)
        assert resp.status_code == 429 and resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED", resp.text
        assert int(resp.headers["Retry-After"]) > 0 and "busy" in resp.json()["error"]["message"]
        ops = api.call("GET", "projects/busy/locations/us-central1/operations", params={"filter": "done=false"})
        assert len(ops["operations"]) == 2  # nothing was queued for the refused request
        api.call("POST", f"{dataset('calm')}:importData", body)  # another project has its own quota
        api.call("POST", f"{ops['operations'][0]['name']}:cancel", {})
        api.call("POST", f"{third}:importData", body)  # a cancelled operation frees its place
