"""max_train_budget_milli_node_hours: a server-wide cap on every training's budget, reported in the
model's budget field."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import serving
from tests.e2e.rest import PARENT, Rest


def test_budget_cap(tmp_path: Path) -> None:
    with serving(tmp_path / "data", workers=1, env={"AUTOMILL_MAX_TRAIN_BUDGET_MILLI_NODE_HOURS": "3"}) as server:
        api = Rest(server.endpoint)
        rows = [
            f'"{w} story {i}",{lab}' for i in range(20) for w, lab in (("goal match", "sport"), ("chip code", "tech"))
        ]
        path = server.bucket_path("cap") / "rows.csv"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(rows) + "\n")
        dataset = api.create_text_dataset("cap")
        api.wait(
            api.call(
                "POST", f"{dataset}:importData", {"inputConfig": {"gcsSource": {"inputUris": ["gs://cap/rows.csv"]}}}
            )
        )
        op = api.call(
            "POST",
            f"{PARENT}/models",
            {
                "displayName": "capped",
                "datasetId": dataset.rsplit("/", 1)[-1],
                "textClassificationModelMetadata": {
                    "trainBudgetMilliNodeHours": "500",
                    "modelType": "mobile-low-latency-1",
                },
            },
        )
        model = api.wait(op, timeout=120)["response"]
        got = api.call("GET", model["name"])["textClassificationModelMetadata"]
        assert got["trainBudgetMilliNodeHours"] == "3"
        assert int(got["trainCostMilliNodeHours"]) <= 3
