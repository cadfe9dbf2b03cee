"""services.events and services.notify: the ended-operations feed on a real SQLite database, the settings,
the messages, and webhook delivery with retries against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from automill.core.errors import InvalidArgument
from automill.jobs.states import JobState
from automill.services import events
from automill.services.notify import Deliveries, Notifier, Smtp, email_text, post_json, subject, targets
from automill.settings import Settings, parse_targets
from automill.store.db import Database, utcnow
from automill.store.tables import DatasetRow, OperationRow

T0 = datetime(2025, 1, 2, 3, 4, 5, 600000)


# -- settings -------------------------------------------------------------------------------------------
def test_targets_parse_and_refuse() -> None:
    assert parse_targets(["p=a@x.io,b@y.org", "*=ops@z.com", "p=c@x.io"], "email") == {
        "p": ("a@x.io", "b@y.org", "c@x.io"),
        "*": ("ops@z.com",),
    }
    assert parse_targets("p=https://h.example/x?a=b;q=http://127.0.0.1:9/h", "webhook") == {
        "p": ("https://h.example/x?a=b",),
        "q": ("http://127.0.0.1:9/h",),
    }
    assert targets({"p": ("a", "b"), "*": ("b", "c")}, "p") == ["a", "b", "c"]
    assert targets({"p": ("a",)}, "q") == []
    for bad in ("file:///etc/passwd", "ftp://h/x", "javascript:alert(1)", "gopher://h", "http://", "https:// h/x"):
        with pytest.raises(InvalidArgument, match="http:// or https://"):
            parse_targets([f"p={bad}"], "webhook")
    for bad in ("nobody", "a@b", "a b@c.com", "a@c.com\r\nBcc: x@y.com"):
        with pytest.raises(InvalidArgument, match="e-mail address"):
            parse_targets([f"p={bad}"], "email")
    for bad in ("p", "=a@b.com", "p="):
        with pytest.raises(InvalidArgument, match="PROJECT=VALUE"):
            parse_targets([bad], "email")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOMILL_SMTP_URL", "smtps://mailer:s3cret@mail.example.com")
    monkeypatch.setenv("AUTOMILL_SMTP_FROM", "automill@example.com")
    monkeypatch.setenv("AUTOMILL_NOTIFY_EMAIL", "p=a@x.io;q=b@x.io")
    monkeypatch.setenv("AUTOMILL_WEBHOOKS", "p=https://h.example/hook")
    monkeypatch.setenv("AUTOMILL_SMTP_STARTTLS", "yes")
    monkeypatch.setenv("AUTOMILL_MAX_UPLOAD_BYTES", "1234")
    s = Settings.from_env(data_dir=tmp_path)
    assert s.notify_email == {"p": ("a@x.io",), "q": ("b@x.io",)} and s.webhooks == {"p": ("https://h.example/hook",)}
    assert s.smtp_starttls and s.max_upload_bytes == 1234
    assert "s3cret" not in repr(s)
    smtp = Smtp.from_settings(s)
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.tls, smtp.user, smtp.password) == (
        "mail.example.com",
        465,
        True,
        "mailer",
        "s3cret",
    )
    plain = Smtp.from_settings(Settings(smtp_url="smtp://127.0.0.1"))
    assert plain is not None and (plain.port, plain.tls, plain.sender) == (25, False, "automill@127.0.0.1")
    for bad in ("http://mail", "smtp://", "smtp://h:99999"):
        with pytest.raises(InvalidArgument):
            Smtp.from_settings(Settings(smtp_url=bad))
    with pytest.raises(InvalidArgument, match="needs an SMTP server"):
        Notifier(Database(f"sqlite:///{tmp_path / 'x.db'}"), Settings(notify_email={"p": ("a@x.io",)}))


# -- the feed -------------------------------------------------------------------------------------------
@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'a.db'}")
    database.migrate()
    yield database
    database.dispose()


def add_op(db: Database, n: int, kind: str, state: JobState, ended: datetime, project: str = "p", **kw: Any) -> str:
    with db.tx() as s:
        s.add(
            OperationRow(
                id=f"OP{n}",
                project=project,
                location="l",
                kind=kind,
                details_key="x",
                details=kw.pop("details", {}),
                works_on=kw.pop("works_on", "projects/p/locations/l/datasets/TCN1"),
                request=kw.pop("request", {}),
                state=state,
                error_code=0 if state == JobState.SUCCEEDED else 3,
                error_message="" if state == JobState.SUCCEEDED else "bad row 3",
                created_at=ended - timedelta(seconds=5),
                updated_at=ended,
                seq=n,
                **kw,
            )
        )
    return f"projects/{project}/locations/l/operations/OP{n}"


def test_cursor_round_trip_and_refusals() -> None:
    c = events.Cursor(T0, 42)
    assert events.Cursor.decode(c.encode()) == c
    assert events.Cursor.decode("") == events.START
    assert events.Cursor.decode("now").time > T0
    for bad in ("x", "1-", "-1-2", "1.5-2", "9" * 25 + "-1", "99999999999999999999-1"):
        with pytest.raises(InvalidArgument) as err:
            events.Cursor.decode(bad)
        assert err.value.field == "after"
    assert events.page_size("") == 50 and events.page_size("200") == 200
    for bad in ("0", "201", "-1", "x"):
        with pytest.raises(InvalidArgument):
            events.page_size(bad)


def test_ended_operations_in_end_order(db: Database) -> None:
    with db.tx() as s:
        s.add(
            DatasetRow(
                id="TCN1",
                project="p",
                location="l",
                display_name="my_ds",
                problem_type="text_classification",
                problem_metadata={},
                labels={},
                etag="e",
                create_time=T0,
                seq=1,
            )
        )
    a = add_op(db, 3, "import_data", JobState.SUCCEEDED, T0 + timedelta(seconds=2))
    b = add_op(db, 1, "import_data", JobState.FAILED, T0 + timedelta(seconds=4))
    c = add_op(
        db,
        2,
        "create_model",
        JobState.CANCELLED,
        T0 + timedelta(seconds=4),
        request={"dataset_id": "TCN1", "display_name": "m1", "budget": 50},
    )
    add_op(db, 4, "import_data", JobState.RUNNING, T0 + timedelta(seconds=1))  # not ended
    add_op(db, 5, "delete_dataset", JobState.SUCCEEDED, T0 + timedelta(seconds=1))  # not a kind with events
    add_op(db, 6, "import_data", JobState.SUCCEEDED, T0 + timedelta(seconds=3), project="q")  # another project
    late = add_op(
        db,
        7,
        "batch_predict",
        JobState.SUCCEEDED,
        T0 + timedelta(seconds=9.5),
        works_on="projects/p/locations/l/models/X",
        details={"outputInfo": {"gcsOutputDirectory": "gs://b/out"}},
    )
    now = T0 + timedelta(seconds=10)  # op 7 ended 0.5 s ago: not settled yet

    found, cursor = events.ended(db, events.START, project="p", now=now)
    assert [e["operation"] for e in found] == [a, b, c]  # by end time, then seq
    first = found[0]
    assert first["kind"] == "import" and first["state"] == "SUCCEEDED" and first["displayName"] == "my_ds"
    assert first["link"] == "/ui/projects/p/locations/l/datasets/TCN1?tab=import" and "error" not in first
    assert found[1]["error"] == {"code": 3, "message": "bad row 3"}
    assert found[2]["kind"] == "training" and found[2]["displayName"] == "m1" and found[2]["state"] == "CANCELLED"
    assert found[2]["link"] == "/ui/projects/p/locations/l/datasets/TCN1?tab=train"
    assert events.ended(db, cursor, project="p", now=now) == ([], cursor)
    later, _ = events.ended(db, cursor, project="p", now=now + timedelta(seconds=2))
    assert [e["operation"] for e in later] == [late] and later[0]["outputDirectory"] == "gs://b/out"
    assert later[0]["link"] == "/ui/projects/p/locations/l/operations"  # its model is gone
    # Paging: one at a time gives the same order; every project at once; only some kinds.
    seen, cur = [], events.START
    while True:
        page, cur = events.ended(db, cur, project="p", limit=1, now=now)
        if not page:
            break
        seen += [e["operation"] for e in page]
    assert seen == [a, b, c]
    everyone, _ = events.ended(db, events.START, now=now)
    assert len(everyone) == 4
    trainings, _ = events.ended(db, events.START, kinds={"create_model"}, now=now)
    assert [e["operation"] for e in trainings] == [c]


# -- messages and delivery ------------------------------------------------------------------------------
EVENT = {
    "operation": "projects/p/locations/l/operations/OP1",
    "kind": "training",
    "state": "SUCCEEDED",
    "project": "p",
    "location": "l",
    "endTime": "2025-01-02T03:04:05.600Z",
    "createTime": "2025-01-02T03:00:00.000Z",
    "dataset": "projects/p/locations/l/datasets/TCN1",
    "model": "projects/p/locations/l/models/TCN9",
    "displayName": "spam\r\nBcc: evil@x.com",
    "modelType": "mobile-low-latency-1",
    "stopReason": "BUDGET_REACHED",
    "trainCostMilliNodeHours": "48",
    "trainBudgetMilliNodeHours": "50",
    "link": "/ui/projects/p/locations/l/models/TCN9",
}


def test_message_text() -> None:
    title = subject(EVENT)
    assert title == "Automill: Training of model 'spamBcc: evil@x.com' succeeded" and "\n" not in title
    text = email_text(EVENT, "https://a.example/ui/projects/p/locations/l/models/TCN9")
    for line in (
        "Model: projects/p/locations/l/models/TCN9",
        "State: SUCCEEDED",
        "Stop reason: BUDGET_REACHED",
        "Cost: 48 milli node hours (budget 50)",
        "Open it in the console: https://a.example/ui/projects/p/locations/l/models/TCN9",
    ):
        assert line in text
    failed = {**EVENT, "state": "FAILED", "error": {"code": 9, "message": "too few examples"}}
    assert subject(failed).endswith(" failed") and "Error: too few examples" in email_text(failed, "x")


class Hook:
    """A real HTTP receiver on 127.0.0.1 answering the statuses in ``answers`` in turn, then 200."""

    def __init__(self, answers: list[int]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.times.append(time.monotonic())
                code = answers.pop(0) if answers else 200
                if code == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(code)
                if code == 302:
                    self.send_header("Location", "file:///etc/passwd")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()


def until(check: Any, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_post_json_statuses() -> None:
    hook = Hook([500, 302])
    try:
        with pytest.raises(OSError, match="HTTP 500"):
            post_json(hook.url, b"{}")
        with pytest.raises(OSError, match="HTTP 302"):  # a redirect is not followed
            post_json(hook.url, b"{}")
        post_json(hook.url, b'{"a": 1}')
        assert hook.bodies == [{"a": 1}]
        with pytest.raises(ValueError):
            post_json("file:///etc/passwd", b"{}")
    finally:
        hook.close()


def test_deliveries_retry_with_back_off_then_give_up() -> None:
    hook = Hook([500, 503])
    calls: list[float] = []

    def always_fails() -> None:
        calls.append(time.monotonic())
        raise OSError("refused")

    deliveries = Deliveries(threads=2, delays=(0.2, 0.4))
    try:
        deliveries.put("hook", lambda: post_json(hook.url, b'{"n": 1}'))
        deliveries.put("broken", always_fails)
        until(lambda: len(hook.bodies) == 1 and len(calls) == 3)
        gaps = [b - a for a, b in itertools.pairwise(hook.times)]
        assert len(hook.times) == 3 and gaps[0] >= 0.2 and gaps[1] >= 0.4  # exponential back-off
        time.sleep(0.8)
        assert len(calls) == 3  # 1 + len(delays) tries, then dropped
        until(deliveries.idle)
    finally:
        deliveries.stop()
        hook.close()


def test_notifier_polls_posts_and_keeps_its_cursor(db: Database, tmp_path: Path) -> None:
    hook = Hook([])
    settings = Settings(
        data_dir=tmp_path, webhooks={"p": (hook.url,), "*": (hook.url + "/all",)}, public_url="https://a.example/x/"
    )
    deliveries = Deliveries(delays=(0.1,))
    try:
        notifier = Notifier(db, settings, deliveries)
        assert notifier.enabled
        op = add_op(db, 1, "import_data", JobState.SUCCEEDED, utcnow() - timedelta(seconds=5))
        add_op(db, 2, "deploy_model", JobState.SUCCEEDED, utcnow() - timedelta(seconds=5))
        cursor = notifier.poll(events.START)
        until(lambda: len(hook.bodies) == 2)  # the project's URL and the every-project URL; no deploy events
        assert {b["operation"] for b in hook.bodies} == {op}
        assert hook.bodies[0]["link"] == "https://a.example/x/ui/projects/p/locations/l/operations"
        assert hook.bodies[0]["type"] == "operation.done"
        assert (tmp_path / "notify-cursor").read_text() == cursor.encode()
        assert Notifier(db, settings, deliveries)._load_cursor() == cursor
        assert notifier.poll(cursor) == cursor and len(hook.bodies) == 2
    finally:
        deliveries.stop()
        hook.close()
