"""A server killed with SIGKILL during training, then restarted: the operation ends, no data is lost."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import Server
from tests.e2e.rest import PARENT, Rest

#: Leases and claims rest on the database's locking: both databases in the default run.
POSTGRES_IN_DEFAULT_RUN = True
#: PostgreSQL in the default run (test_kill_chaos kills trainings on SQLite there); both under --slow.
DEFAULT_RUN_IDS = {"postgres"}


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out |= {int(x) for x in text}
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_sigkill_during_training_then_restart(server: Server) -> None:
    api = Rest(server.endpoint)
    dataset = api.create_text_dataset("killme")
    api.wait(
        api.call(
            "POST",
            f"{dataset}:importData",
            {"inputConfig": {"gcsSource": {"inputUris": ["gs://automill-bench/sms_spam/sms_spam.csv"]}}},
        )
    )
    before = api.call("GET", dataset)
    specs_before = api.call("GET", f"{dataset}/annotationSpecs")
    op = api.call(
        "POST",
        f"{PARENT}/models",
        {"displayName": "killed", "datasetId": dataset.rsplit("/", 1)[-1], "textClassificationModelMetadata": {}},
    )
    end = time.monotonic() + 60
    while api.call("GET", op["name"])["metadata"].get("progressPercent", 0) < 1:
        assert time.monotonic() < end, "training never started"
        time.sleep(0.1)

    workers = children(server.proc.pid)
    assert workers, "serve should have started worker processes"
    server.kill9()
    end = time.monotonic() + 10
    while any(alive(p) for p in workers):
        assert time.monotonic() < end, "workers outlived the killed server"
        time.sleep(0.1)

    server.port = __import__("tests.conftest", fromlist=["free_port"]).free_port()
    server.start()
    api = Rest(server.endpoint)
    final = api.wait(api.call("GET", op["name"]), timeout=180)
    assert final["done"] is True
    if "error" in final:
        assert final["error"]["message"], final
    else:
        model = final["response"]
        assert model["displayName"] == "killed"
        assert api.call("GET", model["name"])["name"] == model["name"]
    after = api.call("GET", dataset)
    assert after["exampleCount"] == before["exampleCount"]
    assert api.call("GET", f"{dataset}/annotationSpecs") == specs_before
    assert "error" not in final, f"the restarted server should resume the training: {final}"
