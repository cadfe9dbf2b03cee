"""Workers started apart from the server (issue 33): ``automill serve --workers 0`` and an
``automill worker`` of its own, killed with SIGKILL mid-training; another worker started after it
finishes the training from the killed one's checkpoint (the text search's finished trials, the
image network's best weights), within what the budget had left. Both run under --slow, on SQLite
and PostgreSQL (each takes one to two minutes); the default run covers the same accounting with the
unit tests of tests/unit/test_budget_attempts.py.

The budget holds across attempts: the model's cost is the sum over the attempts (as the
``operation_attempts`` table records them) and within the budget + 10 %, and the wall time from the
first attempt's start to done is within the budget + the time the training waited for a worker +
10 %."""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from automill.jobs import queue
from automill.store.db import Database
from tests.conftest import DATASETS, Server
from tests.e2e.images import png
from tests.e2e.rest import PARENT, Rest

#: Short leases so that a dead worker's training is claimed again within seconds.
LEASE_SECONDS = 3.0
#: Text: 10 milli node hours = 36 s, the default model type (killed after its first trials).
TEXT_BUDGET = 10
#: Image: 20 milli node hours = 72 s, the whole network fine-tuned (killed a few epochs in).
IMAGE_BUDGET = 20


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(x) for x in (task / "children").read_text().split()}
    return out


class Workers:
    """``automill worker`` processes of their own, beside a server started with ``--workers 0``."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.server.data_dir / f"worker-{len(self.procs)}.log"
        cmd = [
            sys.executable,
            "-m",
            "automill",
            "worker",
            "--data-dir",
            str(self.server.data_dir),
            "--bucket",
            f"automill-bench={DATASETS}",
        ]
        if self.server.database_url:
            cmd += ["--database-url", self.server.database_url]
        env = {**os.environ, **self.server.env, "AUTOMILL_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:  # the child has its own copy of the file
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def apart(tmp_path: Path, database_url: str) -> Iterator[tuple[Server, Workers]]:
    server = Server(
        data_dir=tmp_path / "data",
        database_url=database_url,
        workers=0,
        env={"AUTOMILL_LEASE_SECONDS": str(LEASE_SECONDS)},
    )
    server.data_dir.mkdir()
    server.start()
    workers = Workers(server)
    try:
        yield server, workers
    finally:
        workers.stop()
        server.stop()


def text_dataset(api: Rest, server: Server) -> str:
    folder = server.bucket_path("work")
    folder.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(7)
    words = {"sport": "goal match team score league coach", "money": "bank loan rate price stock market"}
    rows = []
    for i in range(80):
        label = "sport" if i % 2 == 0 else "money"
        text = " ".join(rnd.choice(words[label].split()) for _ in range(8)) + f" item {i}"
        rows.append(f"{'TEST' if i >= 64 else 'TRAIN'},{text},{label}")
    (folder / "t.csv").write_text("\n".join(rows) + "\n")
    ds = api.create_text_dataset("apart")
    body = {"inputConfig": {"gcsSource": {"inputUris": ["gs://work/t.csv"]}}}
    assert "error" not in api.wait(api.call("POST", f"{ds}:importData", body))
    return ds


def image_dataset(api: Rest, server: Server) -> str:
    folder = server.bucket_path("work")
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(16):
        label, color = ("red", (200, 30, 30)) if i % 2 == 0 else ("blue", (30, 30, 200))
        (folder / f"img{i}.png").write_bytes(png(color, i))
        rows.append(f"{'TRAIN' if i < 10 else 'VALIDATE' if i < 13 else 'TEST'},gs://work/img{i}.png,{label}")
    (folder / "d.csv").write_text("\n".join(rows) + "\n")
    op = api.call(
        "POST",
        f"{PARENT}/datasets",
        {"displayName": "apart", "imageClassificationDatasetMetadata": {"classificationType": "MULTICLASS"}},
    )
    ds = api.wait(op)["response"]["name"]
    body = {"inputConfig": {"gcsSource": {"inputUris": ["gs://work/d.csv"]}}}
    assert "error" not in api.wait(api.call("POST", f"{ds}:importData", body))
    return ds


def unix(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def kill_and_resume(
    server: Server, workers: Workers, api: Rest, body: dict[str, Any], budget: int, stage: str, resumed: str
) -> None:
    """Train with ``body`` on the one worker started so far, SIGKILL it once the operation's stage names ``stage``
    (and a moment more), start another, and check the budget across the two attempts."""
    first = workers.procs[-1]
    op = api.call("POST", f"{PARENT}/models", body)
    end = time.monotonic() + 120
    while stage not in (api.call("GET", op["name"])["metadata"].get("stage") or ""):
        assert time.monotonic() < end, f"the training never reached {stage!r}"
        time.sleep(0.2)
    time.sleep(2)  # some way into it: what was finished so far is saved
    tree = children(first.pid)
    assert tree, "the worker should run the training in a child process"
    first.send_signal(signal.SIGKILL)
    killed_at = time.time()
    first.wait(10)
    end = time.monotonic() + 5
    while left := {p for p in tree if alive(p)}:
        assert time.monotonic() < end, f"the killed worker's training outlived it: {left}"
        time.sleep(0.05)

    second = workers.start()
    done = api.wait(api.call("GET", op["name"]), timeout=180)
    assert "error" not in done, done
    model = api.call("GET", done["response"]["name"])

    db = Database(server.database_url or f"sqlite:///{(server.data_dir / 'automill.db').resolve()}")
    try:
        attempts = queue.attempts(db, op["name"].rsplit("/", 1)[-1])
    finally:
        db.dispose()
    assert len(attempts) == 2, [(a.attempt, a.owner, a.seconds) for a in attempts]
    a1, a2 = attempts
    assert a1.seconds >= killed_at - a1.started_at - 1.5, "the killed attempt's compute was not recorded"
    budget_s = budget * 3.6
    total = a1.seconds + a2.seconds
    meta = next(v for k, v in model.items() if k.endswith("ModelMetadata"))
    cost = int(meta.get("trainCostMilliNodeHours") or model["trainCostMilliNodeHours"])
    log = workers.logs[1].read_text(errors="replace")
    seen = (cost, a1.seconds, a2.seconds, [line for line in log.splitlines() if "automill" in line])
    assert abs(cost - math.ceil(total / 3.6)) <= 1, seen  # the sum over the attempts
    assert cost <= budget * 1.1 + 1, seen  # (+1: the cost is rounded up)
    assert total <= budget_s * 1.1, seen
    # wall time from the first start to done: the budget, the wait for a worker (kill -> claim), 10 %
    wall = unix(done["metadata"]["updateTime"]) - a1.started_at
    waited = a2.started_at - killed_at
    assert wall <= budget_s * 1.1 + waited + 1, (wall, waited)
    log = workers.logs[1].read_text(errors="replace")
    assert "resuming from an earlier attempt's" in log and resumed in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert second.poll() is None

    # the model serves
    assert "error" not in api.wait(api.call("POST", f"{model['name']}:deploy", {}), timeout=120)
    assert api.call("GET", model["name"])["deploymentState"] == "DEPLOYED"


@pytest.mark.slow
def test_text_training_survives_its_worker(apart: tuple[Server, Workers]) -> None:
    server, workers = apart
    api = Rest(server.endpoint)
    workers.start()  # runs the imports; killed with the training's worker
    ds = text_dataset(api, server)
    meta = {"trainBudgetMilliNodeHours": str(TEXT_BUDGET)}
    body = {"displayName": "apart", "datasetId": ds.rsplit("/", 1)[-1], "textClassificationModelMetadata": meta}
    kill_and_resume(server, workers, api, body, TEXT_BUDGET, "trial 2 of", "finished trials")


@pytest.mark.slow
def test_image_training_survives_its_worker(apart: tuple[Server, Workers]) -> None:
    server, workers = apart
    api = Rest(server.endpoint)
    workers.start()
    ds = image_dataset(api, server)
    meta = {"trainBudgetMilliNodeHours": str(IMAGE_BUDGET), "modelType": "cloud"}
    body = {"displayName": "apart", "datasetId": ds.rsplit("/", 1)[-1], "imageClassificationModelMetadata": meta}
    kill_and_resume(server, workers, api, body, IMAGE_BUDGET, "epoch", "best weights")
