"""Dynamic batching of online predictions, one queue per deployed model (as TF Serving and Triton batch).

A request is queued with its input and params and gets a future. The model's serving thread takes the
first request waiting, then whatever else arrives within ``wait_s`` (requests that queued while the
model was busy are there already, so under load batches fill without waiting), up to ``max_batch``.
It runs the requests that share the same params as one call of the model, and resolves each future
with its own answer or its own error: an input that fails in a batch is retried alone, so one bad
input never fails its neighbours. One caller alone waits at most ``wait_s`` longer than the model.

Several threads (``threads``) may serve one model where the CPU allows: each takes its own batches
from the same queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("automill.serving")

#: Runs one batch: inputs that share ``params`` -> one answer per input, in order.
RunBatch = Callable[[Sequence[Any], dict[str, str]], list[dict[str, Any]]]


@dataclass
class _Request:
    data: Any
    params: dict[str, str]
    future: Future[dict[str, Any]] = field(default_factory=Future)

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.params.items()))


_STOP = object()


class Batcher:
    def __init__(self, name: str, run: RunBatch, *, wait_s: float = 0.0, max_batch: int = 32, threads: int = 1) -> None:
        self.name = name
        self.run = run
        self.wait_s = max(0.0, wait_s)
        self.max_batch = max(1, max_batch)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        #: Batches run and requests answered (for tests and benchmarks).
        self.batches = 0
        self.requests = 0
        self._threads = [
            threading.Thread(target=self._serve, name=f"predict-{name}-{i}", daemon=True)
            for i in range(max(1, threads))
        ]
        for t in self._threads:
            t.start()

    def submit(self, data: Any, params: dict[str, str]) -> Future[dict[str, Any]]:
        """Queue one input; the future holds its answer (a PredictResponse's v1 JSON) or its error."""
        req = _Request(data, dict(params))
        if self._closed:
            req.future.set_exception(RuntimeError(f"model {self.name} is no longer served"))
        else:
            self._queue.put(req)
        return req.future

    def close(self) -> None:
        """Stop the serving threads once the queue is drained (requests queued before still get answers)."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)

    # -- the serving threads --------------------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    left = deadline - time.monotonic()
                    nxt = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._answer(batch)
            if stop:
                return

    def _answer(self, batch: list[_Request]) -> None:
        groups: dict[tuple[tuple[str, str], ...], list[_Request]] = {}
        for req in batch:
            if req.future.set_running_or_notify_cancel():
                groups.setdefault(req.key, []).append(req)
        for group in groups.values():
            self.batches += 1
            self.requests += len(group)
            try:
                answers = self.run([r.data for r in group], group[0].params)
                if len(answers) != len(group):
                    raise RuntimeError(f"the model answered {len(answers)} of {len(group)} inputs")
            except Exception as exc:
                if len(group) == 1:
                    group[0].future.set_exception(exc)
                    continue
                for req in group:  # find the input that failed: each alone
                    self._answer_one(req)
                continue
            for req, answer in zip(group, answers, strict=True):
                req.future.set_result(answer)

    def _answer_one(self, req: _Request) -> None:
        try:
            req.future.set_result(self.run([req.data], req.params)[0])
        except Exception as exc:
            req.future.set_exception(exc)
