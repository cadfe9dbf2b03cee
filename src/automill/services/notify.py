"""Notifications: an e-mail and a webhook POST when a training, import, export or batch prediction ends.

``automill serve`` runs one :class:`Notifier`: a thread that reads the ended operations
(services.events, from the operations table, so that an end on any machine and by any path is seen)
once a second and hands each one to a :class:`Deliveries` queue. Delivery threads send it: an e-mail
(``--smtp-url``, ``--smtp-from``, ``--notify-email PROJECT=addr,...``) with the model or dataset name,
state, stop reason, cost and a link to its console page, and one JSON POST per webhook URL
(``--webhook PROJECT=URL``). A failed delivery is retried with exponential back-off
(:data:`RETRY_DELAYS`), each try with a timeout; nothing here ever blocks or fails a job.

Where the notifier stopped reading is kept in ``<data dir>/notify-cursor``: a restarted server sends
what ended while it was down (deliveries still queued when it stopped are lost; a receiver can tell
a repeated event by its ``operation``).
"""

from __future__ import annotations

import functools
import heapq
import http.client
import itertools
import json
import logging
import os
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from automill.core.errors import InvalidArgument
from automill.services import events
from automill.settings import Settings
from automill.store.db import Database

log = logging.getLogger("automill.notify")

#: Seconds before the 2nd, 3rd, ... try of a delivery; after the last, it is dropped (and logged).
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: Each try's time limit (connect + send + answer).
TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 1.0
CURSOR_FILE = "notify-cursor"
USER_AGENT = "automill-notify/1"

KIND_WORDS = {
    "training": "Training",
    "import": "Import",
    "dataExport": "Data export",
    "modelExport": "Model export",
    "batchPrediction": "Batch prediction",
}
STATE_WORDS = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "was cancelled"}


# -- what is sent ---------------------------------------------------------------------------------------
def absolute_link(settings: Settings, link: str) -> str:
    """The event's console path under the server's public address (``--public-url``)."""
    base = settings.public_url.rstrip("/") or f"http://{settings.host}:{settings.port}"
    return f"{base}{link}"


def subject(event: dict[str, Any]) -> str:
    what = KIND_WORDS.get(event["kind"], event["kind"])
    noun = "model" if event["kind"] in ("training", "modelExport", "batchPrediction") else "dataset"
    name = event.get("displayName") or (event.get("model") or event.get("dataset") or "").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable())[:100]  # a header never holds a line break
    return f"Automill: {what} of {noun} {name!r} {STATE_WORDS.get(event['state'], event['state'].lower())}"


def email_text(event: dict[str, Any], link: str) -> str:
    lines = [subject(event).removeprefix("Automill: ") + ".", ""]
    fields = [
        ("Model", event.get("model", "")),
        ("Dataset", event.get("dataset", "")),
        ("State", event["state"]),
        ("Model type", event.get("modelType", "")),
        ("Stop reason", event.get("stopReason", "")),
        ("Cost", _cost(event)),
        ("Output", event.get("outputDirectory", "")),
        ("Error", (event.get("error") or {}).get("message", "")),
        ("Ended", event["endTime"]),
        ("Operation", event["operation"]),
    ]
    lines += [f"{k}: {v}" for k, v in fields if v]
    lines += ["", f"Open it in the console: {link}", ""]
    return "\n".join(lines)


def _cost(event: dict[str, Any]) -> str:
    cost = event.get("trainCostMilliNodeHours")
    if not cost:
        return ""
    budget = event.get("trainBudgetMilliNodeHours")
    return f"{cost} milli node hours" + (f" (budget {budget})" if budget else "")


def webhook_body(event: dict[str, Any], link: str) -> bytes:
    return json.dumps({"type": "operation.done", **event, "link": link}, sort_keys=True).encode()


def targets(table: dict[str, tuple[str, ...]], project: str) -> list[str]:
    """The addresses or URLs for ``project``: its own and those of ``*``, each once."""
    return list(dict.fromkeys([*table.get(project, ()), *table.get("*", ())]))


# -- how it is sent -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    tls: bool  # TLS from the start (smtps://)
    starttls: bool
    user: str
    password: str
    sender: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Smtp | None:
        if not settings.smtp_url:
            return None
        parts = urlsplit(settings.smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise InvalidArgument("--smtp-url must look like smtp://host:port or smtps://host:port", field="smtp-url")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError:
            raise InvalidArgument("--smtp-url has an invalid port", field="smtp-url") from None
        sender = settings.smtp_from or f"automill@{parts.hostname}"
        if any(c in sender for c in "\r\n\x00") or "@" not in sender:
            raise InvalidArgument(f"--smtp-from {sender[:100]!r} is not an e-mail address", field="smtp-from")
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "smtps",
            starttls=settings.smtp_starttls,
            user=settings.smtp_user or unquote(parts.username or ""),
            password=settings.smtp_password or unquote(parts.password or ""),
            sender=sender,
        )

    def send(self, recipients: list[str], title: str, text: str) -> None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(recipients)
        msg["Subject"] = title
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="automill")
        msg.set_content(text)
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT_SECONDS, context=context)
            if self.tls
            else smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS)
        )
        with smtp:
            if self.starttls and not self.tls:
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(msg, from_addr=self.sender, to_addrs=recipients)


def post_json(url: str, body: bytes) -> None:
    """POST ``body`` to ``url`` (http or https, no redirects followed); raise unless the answer is 2xx."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a webhook URL must be http:// or https://")
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname, parts.port, timeout=TIMEOUT_SECONDS)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, "Connection": "close"},
        )
        answer = conn.getresponse()
        answer.read(65536)
        if not 200 <= answer.status < 300:
            raise OSError(f"HTTP {answer.status}")
    finally:
        conn.close()


# -- the retrying delivery queue ------------------------------------------------------------------------
@dataclass(order=True)
class _Try:
    due: float
    n: int
    what: str = field(compare=False)
    send: Callable[[], None] = field(compare=False)
    attempt: int = field(default=0, compare=False)


class Deliveries:
    """Threads that run each delivery, retrying a failed one after RETRY_DELAYS; never raises to the caller."""

    def __init__(self, threads: int = 2, delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.delays = delays
        self._heap: list[_Try] = []
        self._cv = threading.Condition()
        self._count = itertools.count()
        self._stop = False
        self._busy = 0
        self._threads = [threading.Thread(target=self._run, name=f"notify-{i}", daemon=True) for i in range(threads)]
        for t in self._threads:
            t.start()

    def put(self, what: str, send: Callable[[], None]) -> None:
        with self._cv:
            heapq.heappush(self._heap, _Try(time.monotonic(), next(self._count), what, send))
            self._cv.notify()

    def idle(self) -> bool:
        with self._cv:
            return not self._heap and not self._busy

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._heap or self._heap[0].due > time.monotonic()):
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0].due - time.monotonic()))
                if self._stop:
                    return
                item = heapq.heappop(self._heap)
                self._busy += 1
            try:
                item.send()
                log.info("notified %s", item.what)
            except Exception as exc:
                self._retry(item, exc)
            finally:
                with self._cv:
                    self._busy -= 1

    def _retry(self, item: _Try, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        if item.attempt >= len(self.delays):
            log.error("giving up on %s after %d tries (%s)", item.what, item.attempt + 1, reason)
            return
        delay = self.delays[item.attempt]
        log.warning("could not deliver %s (%s); trying again in %.0f s", item.what, reason, delay)
        with self._cv:
            heapq.heappush(
                self._heap,
                _Try(time.monotonic() + delay, next(self._count), item.what, item.send, item.attempt + 1),
            )
            self._cv.notify()


# -- the notifier ---------------------------------------------------------------------------------------
class Notifier:
    """Turns ended operations into e-mails and webhook POSTs (see the module)."""

    def __init__(self, db: Database, settings: Settings, deliveries: Deliveries | None = None) -> None:
        self.db = db
        self.settings = settings
        self.smtp = Smtp.from_settings(settings)
        if settings.notify_email and self.smtp is None:
            raise InvalidArgument("--notify-email needs an SMTP server: set --smtp-url", field="notify-email")
        self._deliveries = deliveries
        self._cursor_path = Path(settings.data_dir) / CURSOR_FILE
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.webhooks or (self.smtp and self.settings.notify_email))

    def start(self) -> Notifier:
        if not self.enabled:
            return self
        self._thread = threading.Thread(target=self._loop, name="notifier", daemon=True)
        self._thread.start()
        log.info(
            "notifications: e-mail for %s, webhooks for %s",
            sorted(self.settings.notify_email) if self.smtp else [],
            sorted(self.settings.webhooks),
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._deliveries is not None:
            self._deliveries.stop()

    def _loop(self) -> None:
        cursor = self._load_cursor()
        while not self._stop.is_set():
            try:
                cursor = self.poll(cursor)
            except Exception:
                log.exception("reading ended operations for notifications failed; trying again")
            self._stop.wait(POLL_SECONDS)

    def poll(self, cursor: events.Cursor) -> events.Cursor:
        """Queue the notifications of the operations that ended after ``cursor`` -> the new cursor."""
        while True:
            found, cursor = events.ended(self.db, cursor, limit=events.MAX_PAGE, kinds=events.NOTIFY_KINDS)
            for event in found:
                self.notify(event)
            if found:
                self._save_cursor(cursor)
            if len(found) < events.MAX_PAGE:
                return cursor

    def notify(self, event: dict[str, Any]) -> None:
        if self._deliveries is None:
            self._deliveries = Deliveries()
        deliveries = self._deliveries
        link = absolute_link(self.settings, event["link"])
        op = event["operation"]
        recipients = targets(self.settings.notify_email, event["project"]) if self.smtp else []
        if recipients and self.smtp is not None:
            smtp, title, text = self.smtp, subject(event), email_text(event, link)
            deliveries.put(f"e-mail for {op}", lambda: smtp.send(recipients, title, text))
        body = webhook_body(event, link)
        for url in targets(self.settings.webhooks, event["project"]):
            deliveries.put(f"webhook {urlsplit(url).hostname} for {op}", functools.partial(post_json, url, body))

    def _load_cursor(self) -> events.Cursor:
        try:
            return events.Cursor.decode(self._cursor_path.read_text().strip() or "now")
        except (OSError, InvalidArgument):  # none yet (a new data folder), or unreadable: from now on
            return events.Cursor.decode("now")

    def _save_cursor(self, cursor: events.Cursor) -> None:
        tmp = self._cursor_path.with_name(f".{CURSOR_FILE}.{os.getpid()}")
        try:
            tmp.write_text(cursor.encode())
            tmp.replace(self._cursor_path)
        except OSError:
            log.warning("could not keep the notification cursor in the data folder", exc_info=True)
