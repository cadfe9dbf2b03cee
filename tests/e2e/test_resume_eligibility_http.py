"""Google's resumable-training rules through REST (issue 23): a base model trained more than 14 days ago,
or whose dataset's labels changed, is refused with FAILED_PRECONDITION, and ``:resumeEligibility`` says
why (what the console shows next to a model without "Resume training")."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import serving
from tests.e2e.rest import Rest
from tests.e2e.test_resumable_training import dataset_with, rows, train

P = "projects/elig/locations/us-central1"


# A real training and three imports, about 30 s; the rules have a fast test in tests/unit/test_resume_eligibility.py.
@pytest.mark.slow
def test_eligibility_route_and_the_14_day_rule(tmp_path: Path) -> None:
    with serving(tmp_path / "data") as server:
        api = Rest(server.endpoint)
        ds = dataset_with(api, server, P, "elig_ds", ["sport", "tech"])
        base = api.wait(train(api, P, ds, "base", modelType="mobile-low-latency-1", trainBudgetMilliNodeHours="2"))
        assert "error" not in base, base
        model = base["response"]["name"]
        base_id = model.rsplit("/", 1)[-1]

        fresh = api.call("GET", f"{model}:resumeEligibility")
        assert fresh["eligible"] is True and "reasons" not in fresh, fresh
        assert fresh["model"] == model and fresh["modelType"] == "mobile-low-latency-1"
        trained = datetime.fromisoformat(fresh["trainTime"].replace("Z", "+00:00"))
        until = datetime.fromisoformat(fresh["eligibleUntil"].replace("Z", "+00:00"))
        assert until - trained == timedelta(days=14)
        assert abs(datetime.now(UTC) - trained) < timedelta(minutes=10)
        assert Rest(server.endpoint, "v1beta1").call("GET", f"{model}:resumeEligibility")["eligible"] is True

        # Trained 15 days ago (the stored train time moved back): not eligible, and CreateModel refuses it.
        with sqlite3.connect(server.data_dir / "automill.db") as db:
            old = (datetime.now(UTC) - timedelta(days=15)).replace(tzinfo=None)
            assert (
                db.execute("UPDATE models SET create_time = ? WHERE id = ?", (old.isoformat(sep=" "), base_id)).rowcount
                == 1
            )
        stale = api.call("GET", f"{model}:resumeEligibility")
        assert stale["eligible"] is False and [r["rule"] for r in stale["reasons"]] == ["age"], stale
        assert "14 days" in stale["reasons"][0]["message"] and "15 days ago" in stale["reasons"][0]["message"]
        err = train(api, P, ds, "too_old", modelType="mobile-low-latency-1", baseModelId=base_id, expect=400)["error"]
        assert err["status"] == "FAILED_PRECONDITION" and "14 days" in err["message"], err
        assert err["details"][0]["fieldViolations"][0]["field"] == "model.base_model_id"

        # 13 days ago: eligible again. Then the labels change: not eligible, and the reason names them.
        with sqlite3.connect(server.data_dir / "automill.db") as db:
            recent = (datetime.now(UTC) - timedelta(days=13)).replace(tzinfo=None)
            db.execute("UPDATE models SET create_time = ? WHERE id = ?", (recent.isoformat(sep=" "), base_id))
        assert api.call("GET", f"{model}:resumeEligibility")["eligible"] is True
        (server.bucket_path("rtb") / "food.csv").write_text(rows(["food"], n=10))
        imp = api.wait(
            api.call("POST", f"{ds}:importData", {"inputConfig": {"gcsSource": {"inputUris": ["gs://rtb/food.csv"]}}})
        )
        assert "error" not in imp, imp
        changed = api.call("GET", f"{model}:resumeEligibility")
        assert [r["rule"] for r in changed["reasons"]] == ["labels"] and "food" in changed["reasons"][0]["message"]
        err = train(api, P, ds, "relabelled", modelType="mobile-low-latency-1", baseModelId=base_id, expect=400)[
            "error"
        ]
        assert err["status"] == "FAILED_PRECONDITION" and "food" in err["message"]

        # Unknown models and other projects' models answer NOT_FOUND, as GetModel does.
        assert api.call("GET", f"{P}/models/TCN999:resumeEligibility", expect=404)["error"]["status"] == "NOT_FOUND"
        other = model.replace("/elig/", "/someone/")
        assert api.call("GET", f"{other}:resumeEligibility", expect=404)["error"]["status"] == "NOT_FOUND"
        names = sorted(m["displayName"] for m in api.call("GET", f"{P}/models")["model"])
        assert names == ["base"]  # nothing half-created by the refusals
