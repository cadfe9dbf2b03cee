"""uvicorn's h11 protocol with read deadlines, so stalled clients cannot hold connections open.

uvicorn closes idle keep-alive connections but sets no deadline while it reads a request: a client
that sends headers a byte at a time, or stops mid-body (slowloris), holds its connection for ever,
and enough of them exhaust the server's sockets. Here:

- the request head (request line and headers) must arrive within ``head_timeout`` seconds of its
  first byte (or of the connection, for a client that sends nothing);
- while a body is read, each pause between chunks may last at most ``body_idle_timeout`` seconds,
  and the whole body must arrive within ``body_timeout`` seconds.

A connection past a deadline is closed; the application sees a disconnect. Timeouts are class
attributes that ``configure`` sets from Settings before uvicorn builds the protocol.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    head_timeout = 10.0
    body_idle_timeout = 30.0
    body_timeout = 300.0

    @classmethod
    def configure(
        cls, *, head_timeout: float, body_idle_timeout: float, body_timeout: float
    ) -> type[GuardedH11Protocol]:
        return type(
            "ConfiguredH11Protocol",
            (cls,),
            {"head_timeout": head_timeout, "body_idle_timeout": body_idle_timeout, "body_timeout": body_timeout},
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._phase = ""  # "head" | "body" | "" (nothing being read)
        self._phase_deadline = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch(got_data=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._phase = ""  # the keep-alive timer now guards the idle connection
        self._cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse (bad syntax, a head over 16 KB), as the
        google.rpc.Status JSON every other error is."""
        body = json.dumps(
            {
                "error": {
                    "code": 400,
                    "status": "INVALID_ARGUMENT",
                    "message": f"{msg} (malformed request, or request line and headers over 16 KB)",
                }
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"connection", b"close"),
            (b"content-length", str(len(body)).encode()),
        ]
        try:
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:
            pass  # h11 cannot answer in this state: just close
        self.transport.close()

    # -- deadlines ---------------------------------------------------------------------------------
    def _watch(self, got_data: bool = False) -> None:
        """(Re)arm the read deadline for what the connection is waiting for now."""
        now = time.monotonic()
        state = self.conn.their_state
        if state is h11.IDLE and (got_data or (self._phase == "" and self.cycle is None)):
            if self._phase != "head":
                self._phase, self._phase_deadline = "head", now + self.head_timeout
            self._arm(self._phase_deadline - now)
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._phase, self._phase_deadline = "body", now + self.body_timeout
            self._arm(min(self.body_idle_timeout, self._phase_deadline - now))
        elif state is not h11.IDLE:
            self._phase = ""
            self._cancel()

    def _arm(self, delay: float) -> None:
        self._cancel()
        self._read_timer = self.loop.call_later(max(0.0, delay), self._expired)

    def _cancel(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _expired(self) -> None:
        self._read_timer = None
        if self._phase and not self.transport.is_closing():
            self.logger.warning(
                "closing a connection from %s: request %s not received in time",
                f"{self.client[0]}:{self.client[1]}" if self.client else "?",
                self._phase,
            )
            self.transport.close()
