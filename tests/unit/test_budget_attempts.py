"""Budgets across attempts (issue 33): each attempt at an operation records its compute as it goes
(``operation_attempts``, on SQLite and PostgreSQL), a retry learns what the earlier attempts used,
and the learners resume from what an earlier attempt saved (text: finished trials; image: the best
weights) or, with no time left, make it the model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from automill.core.deadline import BudgetExhausted, Deadline
from automill.engine.checkpoint import BestState, TrialLog
from automill.engine.text import BUDGET_REACHED, fit_text
from automill.jobs import queue
from automill.jobs.context import JobContext
from automill.jobs.result import JobResult
from automill.services.operations import new_operation
from automill.store.db import Database
from automill.store.tables import Base, OperationRow
from tests.unit.test_engine_text import data

OWNER, OTHER = "host:1:a", "host:2:b"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path}/a.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


def enqueue(db: Database) -> str:
    with db.tx() as s:
        return new_operation(
            s, project="p", location="l", prefix="TCN", kind="k", details_key="createModelDetails", works_on="x"
        ).id


def test_the_migrations_make_the_tables_the_code_declares(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "operation_attempts" in repr(d)] == []


def test_each_attempt_records_its_compute_and_a_retry_learns_what_the_earlier_ones_used(db: Database) -> None:
    op = enqueue(db)
    row = queue.claim(db, OWNER, lease_seconds=0.2)
    assert row is not None and row.attempt == 1
    started, earlier = queue.attempt_clock(db, op, 1)
    assert earlier == 0.0 and abs(started - time.time()) < 5
    time.sleep(0.3)
    assert queue.heartbeat(db, op, OWNER, 1, lease_seconds=0.2) == (True, False)
    (first,) = queue.attempts(db, op)
    assert first.owner == OWNER and first.seconds >= 0.3
    time.sleep(0.3)  # the worker dies: its lease runs out; what its last heartbeat recorded stays
    assert queue.sweep(db) == [op]
    assert queue.attempts(db, op)[0].seconds == pytest.approx(first.seconds)
    row = queue.claim(db, OTHER, lease_seconds=30)
    assert row is not None and row.attempt == 2
    _, earlier = queue.attempt_clock(db, op, 2)
    assert earlier == pytest.approx(first.seconds)
    ctx = JobContext(
        db=db, op_id=op, kind="k", request={}, owner=OTHER, attempt=2, project="p", location="l",
        started_at=time.time() - 1.0, earlier_seconds=earlier,
    )  # fmt: skip
    assert ctx.compute_seconds() == pytest.approx(earlier + 1.0, abs=0.2)
    time.sleep(0.2)
    assert queue.complete(db, op, OTHER, 2, JobResult(), [])
    _, a2 = queue.attempts(db, op)
    assert a2.owner == OTHER and a2.seconds >= 0.2  # the end of an attempt is recorded with it
    assert not queue.heartbeat(db, op, OTHER, 2, lease_seconds=30)[0]


def test_a_failed_attempt_records_its_end_and_attempts_go_with_their_operation(db: Database) -> None:
    op = enqueue(db)
    assert queue.claim(db, OWNER, lease_seconds=30) is not None
    time.sleep(0.2)
    assert queue.fail(db, op, 4, "too slow", owner=OWNER, attempt=1)
    assert queue.attempts(db, op)[0].seconds >= 0.2
    with db.tx() as s:
        s.delete(s.get(OperationRow, op))
    assert queue.attempts(db, op) == []


# -- the learners -------------------------------------------------------------------------------------


def test_a_text_search_resumes_from_the_trials_an_earlier_attempt_finished(tmp_path: Path) -> None:
    texts, Y = data(300, 0)
    vt, vY = data(60, 1)
    kw = {"model_type": "mobile-versatile-1", "checkpoint_dir": tmp_path}
    first = fit_text("multiclass", texts, Y, vt, vY, deadline=Deadline(60), **kw)  # type: ignore[arg-type]
    saved = sorted((tmp_path / "text-trials").glob("trial-*.pkl"))
    assert len(saved) == len(first.trials) >= 2
    for path in saved[2:]:  # as if the worker had died after two trials
        path.unlink()
    # the next attempt has no time left: the two saved trials are ensembled, none is trained again
    again = fit_text("multiclass", texts, Y, vt, vY, deadline=Deadline(0), **kw)  # type: ignore[arg-type]
    assert again.stop_reason == BUDGET_REACHED and again.trials == first.trials[:2]
    assert len(list((tmp_path / "text-trials").glob("trial-*.pkl"))) == 2
    tt, tY = data(60, 2)
    assert (again.model.predict_proba(tt).argmax(1) == tY.argmax(1)).mean() > 0.9
    # with time left, it searches on from there
    on = fit_text("multiclass", texts, Y, vt, vY, deadline=Deadline(60), **kw)  # type: ignore[arg-type]
    assert on.trials[:2] == first.trials[:2] and len(on.trials) == len(first.trials)
    # another split (another dataset) does not reuse them
    with pytest.raises(BudgetExhausted):
        fit_text("multiclass", texts[:200], Y[:200], vt, vY, deadline=Deadline(0), **kw)  # type: ignore[arg-type]


def test_trial_log_skips_a_torn_file(tmp_path: Path) -> None:
    log = TrialLog(tmp_path, "sig")
    log.add({"n": 1})
    (tmp_path / "trial-0001.pkl").write_bytes(b"\x80\x05torn")
    assert log.load() == [{"n": 1}]
    assert TrialLog(tmp_path, "other").load() == []


def test_best_state_saves_at_most_every_few_seconds_and_on_flush(tmp_path: Path) -> None:
    import torch

    best = BestState(tmp_path / "b.pt", every=60)
    assert best.load() is None
    best.offer({"w": torch.zeros(2)}, 0.5, {"epoch": 1})  # the first offer is saved at once
    best.offer({"w": torch.ones(2)}, 0.4, {"epoch": 2})  # held back
    saved = best.load()
    assert saved is not None and saved.score == 0.5 and saved.info == {"epoch": 1}
    best.flush()
    saved = best.load()
    assert saved is not None and saved.score == 0.4 and torch.equal(saved.state["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["b.pt"]  # no temporary file left


def test_an_image_training_with_no_time_left_makes_the_saved_weights_the_model(tmp_path: Path) -> None:
    from automill.engine.image import fit_image
    from tests.unit.test_image_learner import load, toy

    X, Y = toy(24, 0)
    V, VY = toy(12, 1)
    kw = {"model_type": "mobile-low-latency-1", "checkpoint_dir": tmp_path}
    first = fit_image("multiclass", load, X, Y, V, VY, deadline=Deadline(120), **kw)  # type: ignore[arg-type]
    assert (tmp_path / "image.pt").is_file()
    again = fit_image("multiclass", load, X, Y, V, VY, deadline=Deadline(0), **kw)  # type: ignore[arg-type]
    assert again.stop_reason == "BUDGET_REACHED" and again.info["epochs"] == 0
    T, _ = toy(8, 2)
    images = load(T, first.model.size)
    assert np.allclose(again.model.predict_proba(images), first.model.predict_proba(images), atol=1e-5)
    with pytest.raises(BudgetExhausted):  # nothing saved, no time: nothing to make a model of
        fit_image("multiclass", load, X, Y, V, VY, deadline=Deadline(0), model_type="mobile-low-latency-1")
