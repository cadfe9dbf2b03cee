"""serving.batching: concurrent predictions run as batches; one bad input fails alone; params never mix."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from automill.core.errors import InvalidArgument
from automill.serving.batching import Batcher


class Model:
    """A model that takes 20 ms a call, whatever the batch, and refuses the input "bad"."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], dict[str, str]]] = []
        self.lock = threading.Lock()

    def __call__(self, inputs: Sequence[Any], params: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            self.calls.append((list(inputs), params))
        time.sleep(0.02)
        if "bad" in inputs:
            raise InvalidArgument("bad input", field="payload")
        return [{"payload": [{"displayName": f"{x}:{params.get('p', '')}"}]} for x in inputs]


def test_concurrent_requests_share_batches_and_get_their_own_answers() -> None:
    model = Model()
    batcher = Batcher("m", model, wait_s=0.002, max_batch=8)
    with ThreadPoolExecutor(32) as pool:
        futures = [pool.submit(lambda i=i: batcher.submit(i, {}).result(5)) for i in range(32)]
        answers = [f.result() for f in futures]
    assert [a["payload"][0]["displayName"] for a in answers] == [f"{i}:" for i in range(32)]
    assert max(len(inputs) for inputs, _ in model.calls) > 1  # they did batch
    assert all(len(inputs) <= 8 for inputs, _ in model.calls)  # never past max_batch
    assert len(model.calls) < 32 and batcher.requests == 32
    batcher.close()


def test_one_caller_waits_about_the_window_more_than_the_model() -> None:
    model = Model()
    batcher = Batcher("m", model, wait_s=0.001, max_batch=8)
    batcher.submit("warm", {}).result(5)
    t0 = time.perf_counter()
    batcher.submit("x", {}).result(5)
    assert time.perf_counter() - t0 < 0.02 + 0.06  # the model's 20 ms, the 1 ms window, hand-offs (a busy CI)
    batcher.close()


def test_a_bad_input_fails_alone_and_params_never_mix() -> None:
    model = Model()
    batcher = Batcher("m", model, wait_s=0.05, max_batch=16)
    futures = [batcher.submit(x, {"p": p}) for x, p in [("a", "1"), ("bad", "1"), ("b", "1"), ("c", "2")]]
    assert futures[0].result(5)["payload"][0]["displayName"] == "a:1"
    with pytest.raises(InvalidArgument, match="bad input"):
        futures[1].result(5)
    assert futures[2].result(5)["payload"][0]["displayName"] == "b:1"
    assert futures[3].result(5)["payload"][0]["displayName"] == "c:2"
    assert all(len({tuple(sorted(p.items()))}) == 1 for _, p in model.calls)
    assert (["a", "bad", "b"], {"p": "1"}) in model.calls and (["c"], {"p": "2"}) in model.calls
    batcher.close()


def test_close_answers_what_was_queued_and_refuses_more() -> None:
    model = Model()
    batcher = Batcher("m", model, wait_s=0.0, max_batch=2)
    queued = [batcher.submit(i, {}) for i in range(5)]
    batcher.close()
    assert [f.result(5)["payload"][0]["displayName"] for f in queued] == [f"{i}:" for i in range(5)]
    with pytest.raises(RuntimeError, match="no longer served"):
        batcher.submit(9, {}).result(1)


def test_a_cancelled_request_is_skipped() -> None:
    model = Model()
    batcher = Batcher("m", model, wait_s=0.0, max_batch=1)
    first = batcher.submit("first", {})
    second = batcher.submit("second", {})
    assert second.cancel()  # the caller went away before its turn
    first.result(5)
    time.sleep(0.05)
    assert ["second"] not in [inputs for inputs, _ in model.calls]
    batcher.close()
