"""DeployModel answers at once and loads in the background (services/deployment.py), on a real
SQLite database with a real trained text model. Where a test needs a load that is still running,
the cache's loader is held on an event: the order of events is what is tested, not a timing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automill.core.deadline import Deadline
from automill.core.errors import FailedPrecondition, InvalidArgument
from automill.jobs import queue
from automill.jobs.context import JobContext
from automill.jobs.states import JobState
from automill.problems.base import StoredExample
from automill.problems.registry import get_problem
from automill.services.container import Services
from automill.services.handlers.deploy import deploy_model
from automill.settings import Settings
from automill.store.db import new_etag, utcnow
from automill.store.tables import ModelRow, OperationRow

PARENT = "projects/p/locations/us-central1"
NAME = f"{PARENT}/models/TCN7"
WORDS = {"1": "goal match team score league", "2": "chip software code computer server"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real mobile-low-latency-1 text model's folder."""
    examples = [
        StoredExample(f"{WORDS[spec]} story {i}", "TEST" if i % 4 == 0 else "TRAIN", [spec])
        for i in range(24)
        for spec in WORDS
    ]
    out = tmp_path_factory.mktemp("model") / "TCN7"
    get_problem("text_classification").train(
        examples,
        [("1", "sport"), ("2", "tech")],
        {"classificationType": "MULTICLASS"},
        deadline=Deadline(60),
        out_dir=out,
        progress=lambda p: None,
        model_type="mobile-low-latency-1",
    )
    return out


@pytest.fixture
def sv(tmp_path: Path, trained: Path) -> Iterator[Services]:
    services = Services(Settings(data_dir=tmp_path))
    services.db.migrate()
    now = utcnow()
    with services.db.tx() as s:
        s.add(
            ModelRow(
                id="TCN7",
                project="p",
                location="us-central1",
                display_name="m",
                dataset_id="TCN1",
                problem_type="text_classification",
                problem_metadata={},
                labels={},
                etag=new_etag("TCN7", now),
                deployment_state="UNDEPLOYED",
                create_time=now,
                update_time=now,
                artifact_dir=str(trained),
                seq=7,
            )
        )
    yield services
    services.deployment.wait_idle()
    services.db.dispose()


def state(sv: Services) -> str:
    with sv.db.tx() as s:
        return sv.models.row(s, NAME).deployment_state


def op_row(sv: Services, name: str) -> OperationRow:
    with sv.db.tx() as s:
        row = s.get(OperationRow, name.rsplit("/", 1)[-1])
        assert row is not None
        s.expunge(row)
        return row


class HeldLoader:
    """Wraps the cache's real loader; each load waits until released."""

    def __init__(self, sv: Services) -> None:
        self.real, self.release, self.started = sv.serving.load, threading.Event(), threading.Event()
        sv.serving.load = self  # type: ignore[method-assign]

    def __call__(self, *args: Any) -> Any:
        self.started.set()
        assert self.release.wait(30)
        return self.real(*args)


def test_deploy_returns_a_running_operation_and_deploys_when_loaded(sv: Services) -> None:
    held = HeldLoader(sv)
    view = sv.deployment.deploy(NAME, {})
    assert held.started.wait(30)
    assert not view.done and state(sv) == "UNDEPLOYED"  # not servable while it loads
    assert op_row(sv, view.name).state == JobState.RUNNING
    held.release.set()
    sv.deployment.wait_idle()
    assert op_row(sv, view.name).state == JobState.SUCCEEDED and state(sv) == "DEPLOYED"
    assert sv.predictions.predict(NAME, {"textSnippet": {"content": "a goal in the match"}}, {})["payload"]
    again = sv.deployment.deploy(NAME, {})
    assert again.done  # the same deployment again is a no-op


def test_undeploy_while_loading_cancels_the_deploy(sv: Services) -> None:
    held = HeldLoader(sv)
    view = sv.deployment.deploy(NAME, {})
    assert held.started.wait(30)
    assert sv.deployment.undeploy(NAME).done
    held.release.set()
    sv.deployment.wait_idle()
    assert op_row(sv, view.name).state == JobState.CANCELLED
    assert state(sv) == "UNDEPLOYED"


def test_files_that_do_not_load_fail_the_operation_and_change_nothing(
    sv: Services, tmp_path: Path, trained: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((trained / "model.json").read_text())
    (broken / "model.pkl").write_bytes(b"not a pickle")
    with sv.db.tx() as s:
        sv.models.row(s, NAME).artifact_dir = str(broken)
    view = sv.deployment.deploy(NAME, {})
    sv.deployment.wait_idle()
    row = op_row(sv, view.name)
    assert row.state == JobState.FAILED and row.error_code == 13 and "could not be loaded" in row.error_message
    assert state(sv) == "UNDEPLOYED"


def test_missing_files_and_bad_node_count_are_refused_in_the_request(sv: Services, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="node_count"):
        sv.deployment.deploy(NAME, {"imageClassificationModelDeploymentMetadata": {"nodeCount": "0"}})
    with pytest.raises(InvalidArgument, match="not an integer"):
        sv.deployment.deploy(NAME, {"imageClassificationModelDeploymentMetadata": {"nodeCount": "two"}})
    with sv.db.tx() as s:
        sv.models.row(s, NAME).artifact_dir = str(tmp_path / "gone")
    with pytest.raises(FailedPrecondition, match="missing"):
        sv.deployment.deploy(NAME, {})
    with sv.db.tx() as s:
        assert s.query(OperationRow).count() == 0  # nothing was created by the refused requests
    assert state(sv) == "UNDEPLOYED"


def test_a_deploy_whose_server_was_lost_is_finished_by_a_worker(sv: Services) -> None:
    held = HeldLoader(sv)
    view = sv.deployment.deploy(NAME, {})
    assert held.started.wait(30)
    # The serving process is gone: its lease runs out, the sweep requeues, a worker claims.
    assert queue.sweep(sv.db, now=op_row(sv, view.name).lease_expires_at + 1) == [view.name.rsplit("/", 1)[-1]]
    claimed = queue.claim(sv.db, "worker", 30.0, kinds={"deploy_model"})
    assert claimed is not None and claimed.attempt == 2
    worker = Services(sv.settings)  # the worker's own process: its own cache, the same database
    ctx = JobContext(
        db=worker.db,
        op_id=claimed.id,
        kind=claimed.kind,
        request=claimed.request,
        owner="worker",
        attempt=claimed.attempt,
        project="p",
        location="us-central1",
        services=worker,
    )
    assert queue.complete(worker.db, claimed.id, "worker", claimed.attempt, deploy_model(ctx), [])
    worker.db.dispose()
    assert op_row(sv, view.name).state == JobState.SUCCEEDED and state(sv) == "DEPLOYED"
    held.release.set()  # the lost server's load ends late: it no longer owns the operation
    sv.deployment.wait_idle()
    assert op_row(sv, view.name).state == JobState.SUCCEEDED
