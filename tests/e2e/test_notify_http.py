"""Notifications through a real ``automill serve`` (issue 23): when an import ends, an e-mail reaches a real
SMTP server (aiosmtpd on 127.0.0.1), a webhook receiver (http.server on 127.0.0.1) gets its JSON POST
(retried after it first answers 500), and the console's events feed lists the end."""

from __future__ import annotations

import email
import json
import threading
import time
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller

from tests.conftest import free_port, serving
from tests.e2e.rest import Rest

PROJECT = "notify"
PARENT = f"projects/{PROJECT}/locations/us-central1"
CSV = "".join(
    f"{'TEST' if i % 5 == 0 else 'TRAIN'},text number {i} about {lbl},{lbl}\n" for i in range(10) for lbl in "ab"
)


class Mailbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


class Receiver:
    """A webhook receiver that fails the first ``fail_first`` POSTs with 500, then keeps the bodies."""

    def __init__(self, fail_first: int = 1) -> None:
        self.posts: list[dict[str, Any]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.refused < fail_first:
                    receiver.refused += 1
                    self.send_response(500)
                else:
                    receiver.posts.append(
                        {**json.loads(body), "path": self.path, "contentType": self.headers["Content-Type"]}
                    )
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/hooks/automill?token=t1"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def until(check: Any, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


def test_import_end_is_mailed_posted_and_listed(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> None:
    box, smtp_port = mailbox
    hook = Receiver(fail_first=1)
    args = [
        "--smtp-url",
        f"smtp://127.0.0.1:{smtp_port}",
        "--smtp-from",
        "automill@example.com",
        "--notify-email",
        f"{PROJECT}=ops@example.com,ml@example.com",
        "--notify-email",
        "other=nobody@example.com",
        "--webhook",
        f"{PROJECT}={hook.url}",
        "--public-url",
        "https://automill.example.com/base/",
    ]
    try:
        with serving(tmp_path / "data", args=args) as server:
            api = Rest(server.endpoint)
            ds = api.wait(
                api.call(
                    "POST",
                    f"{PARENT}/datasets",
                    {
                        "displayName": "mailed_ds",
                        "textClassificationDatasetMetadata": {"classificationType": "MULTICLASS"},
                    },
                )
            )["response"]["name"]
            ds_id = ds.rsplit("/", 1)[-1]
            folder = server.bucket_path("notify-in")
            folder.mkdir(parents=True)
            (folder / "rows.csv").write_text(CSV)
            ok = api.wait(
                api.call(
                    "POST",
                    f"{ds}:importData",
                    {"inputConfig": {"gcsSource": {"inputUris": ["gs://notify-in/rows.csv"]}}},
                )
            )
            assert "error" not in ok, ok
            bad = api.wait(
                api.call(
                    "POST",
                    f"{ds}:importData",
                    {"inputConfig": {"gcsSource": {"inputUris": ["gs://notify-in/gone.csv"]}}},
                )
            )
            assert "error" in bad, bad

            # E-mail: one per ended import, to the project's two addresses (not the other project's).
            until(lambda: len(box.messages) >= 2)
            assert len(box.messages) == 2  # delivery threads run side by side: in either order
            texts = {m.get_payload(decode=True).decode(): (to, m) for to, m in box.messages}
            text1 = next(t for t in texts if ok["name"] in t)
            text2 = next(t for t in texts if bad["name"] in t)
            (to1, m1), (to2, m2) = texts[text1], texts[text2]
            assert to1 == to2 == ["ops@example.com", "ml@example.com"]
            assert m1["From"] == "automill@example.com" and m1["To"] == "ops@example.com, ml@example.com"
            assert m1["Subject"] == "Automill: Import of dataset 'mailed_ds' succeeded"
            assert m2["Subject"] == "Automill: Import of dataset 'mailed_ds' failed"
            assert "State: SUCCEEDED" in text1 and f"Dataset: {ds}" in text1
            assert f"https://automill.example.com/base/ui/{PARENT}/datasets/{ds_id}?tab=import" in text1
            assert "State: FAILED" in text2 and "gone.csv" in text2

            # Webhook: the first POST was answered 500 and retried; both ends arrive, as JSON.
            until(lambda: len(hook.posts) >= 2)
            assert hook.refused == 1
            by_op = {p["operation"]: p for p in hook.posts}
            assert set(by_op) == {ok["name"], bad["name"]}
            good = by_op[ok["name"]]
            assert good["path"] == "/hooks/automill?token=t1" and good["contentType"] == "application/json"
            assert good["type"] == "operation.done" and good["kind"] == "import" and good["state"] == "SUCCEEDED"
            assert good["displayName"] == "mailed_ds" and good["dataset"] == ds and good["project"] == PROJECT
            assert good["link"].startswith("https://automill.example.com/base/ui/")
            assert by_op[bad["name"]]["error"]["message"] and by_op[bad["name"]]["state"] == "FAILED"

            # The console's feed: both ends, oldest first, paged; a cursor of the end shows nothing new.
            feed = f"{server.endpoint}/ui-api/v1/projects/{PROJECT}/events"
            page = requests.get(feed, timeout=10).json()
            assert [e["operation"] for e in page["events"]] == [ok["name"], bad["name"]]
            assert page["events"][0]["link"] == f"/ui/{PARENT}/datasets/{ds_id}?tab=import"
            first = requests.get(feed, params={"pageSize": "1"}, timeout=10).json()
            assert [e["operation"] for e in first["events"]] == [ok["name"]]
            rest = requests.get(feed, params={"after": first["nextCursor"]}, timeout=10).json()
            assert [e["operation"] for e in rest["events"]] == [bad["name"]]
            done = requests.get(feed, params={"after": rest["nextCursor"]}, timeout=10).json()
            assert done["events"] == [] and done["nextCursor"] == rest["nextCursor"]
            assert requests.get(feed, params={"after": "now"}, timeout=10).json()["events"] == []
            assert requests.get(f"{server.endpoint}/ui-api/v1/projects/other/events", timeout=10).json()["events"] == []
            for params, field in (
                ({"after": "../x"}, "after"),
                ({"pageSize": "0"}, "pageSize"),
                ({"waitSeconds": "99"}, "waitSeconds"),
            ):
                err = requests.get(feed, params=params, timeout=10)
                assert err.status_code == 400, err.text
                assert err.json()["error"]["details"][0]["fieldViolations"][0]["field"] == field

            # A long poll returns as soon as an operation ends.
            started = time.monotonic()
            poll: dict[str, Any] = {}

            def wait() -> None:
                poll.update(
                    requests.get(feed, params={"after": done["nextCursor"], "waitSeconds": "20"}, timeout=30).json()
                )

            waiter = threading.Thread(target=wait)
            waiter.start()
            again = api.wait(
                api.call(
                    "POST",
                    f"{ds}:importData",
                    {"inputConfig": {"gcsSource": {"inputUris": ["gs://notify-in/rows.csv"]}}},
                )
            )
            waiter.join(30)
            assert [e["operation"] for e in poll["events"]] == [again["name"]]
            assert time.monotonic() - started < 20
            assert "Traceback" not in server.log(), server.log()[-3000:]
    finally:
        hook.http.shutdown()


def test_an_abandoned_long_poll_frees_its_slot(tmp_path: Path) -> None:
    """A console page that is closed or left while its events long poll waits: the server stops that poll
    at once, instead of holding one of its max_concurrent_waits slots (and polling the database) until
    waitSeconds ends."""
    import socket

    with serving(tmp_path / "data", workers=0, env={"AUTOMILL_MAX_CONCURRENT_WAITS": "2"}) as server:
        feed = f"{server.endpoint}/ui-api/v1/projects/{PROJECT}/events"
        cursor = requests.get(feed, params={"after": "now"}, timeout=10).json()["nextCursor"]
        held = []
        for _ in range(2):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            path = f"/ui-api/v1/projects/{PROJECT}/events?after={cursor}&waitSeconds=30"
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
            held.append(conn)
        time.sleep(1.0)
        busy = requests.get(feed, params={"after": cursor, "waitSeconds": "1"}, timeout=10)
        assert busy.status_code == 429 and busy.json()["error"]["status"] == "RESOURCE_EXHAUSTED", busy.text
        for conn in held:
            conn.close()
        time.sleep(1.5)  # a poll notices its caller left at its next round (every 0.5 s)
        free = requests.get(feed, params={"after": cursor, "waitSeconds": "1"}, timeout=10)
        assert free.status_code == 200 and free.json()["events"] == [], free.text
