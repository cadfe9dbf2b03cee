"""Deployed models kept loaded in the serving process (LRU), so online predict is one call, and their
request queues (dynamic batching)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from automill.core.errors import FailedPrecondition
from automill.problems.registry import get_problem
from automill.serving.batching import Batcher
from automill.serving.predict import run_batch


def require_files(model_id: str, model_dir: Path) -> None:
    if not Path(model_dir).exists():
        raise FailedPrecondition(f"the files of model {model_id} are missing; train it again")


class ModelCache:
    """Loaded models (``capacity`` at most, least recently used first out) and, for each model served
    online, its request queue (serving.batching): concurrent predictions run as batches."""

    def __init__(self, capacity: int = 8, *, batch_wait_s: float = 0.0, max_batch: int = 32) -> None:
        self.capacity = capacity
        self.batch_wait_s = batch_wait_s
        self.max_batch = max_batch
        #: Serving threads per model: each runs its own batches; the models' own math uses several cores.
        self.threads = max(1, min(4, (os.cpu_count() or 1) // 4))
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # one load per model at a time (deploy + first predict)
        self._batchers: dict[str, Batcher] = {}

    def batcher(self, model_id: str, problem_type: str, model_dir: Path) -> Batcher:
        """The request queue of a model (made on first use; the model loads in its serving thread)."""
        with self._lock:
            found = self._batchers.get(model_id)
            if found is not None:
                return found
            problem = get_problem(problem_type)

            def run(inputs: Sequence[Any], params: dict[str, str]) -> list[dict[str, Any]]:
                return run_batch(problem, self.load(model_id, problem_type, model_dir), inputs, params)

            made = self._batchers[model_id] = Batcher(
                model_id, run, wait_s=self.batch_wait_s, max_batch=self.max_batch, threads=self.threads
            )
            return made

    def _get(self, model_id: str) -> Any:
        with self._lock:
            if model_id in self._items:
                self._items.move_to_end(model_id)
                return self._items[model_id]
            return None

    def load(self, model_id: str, problem_type: str, model_dir: Path) -> Any:
        hit = self._get(model_id)
        if hit is not None:
            return hit
        with self._lock:
            gate = self._loading.setdefault(model_id, threading.Lock())
        with gate:
            hit = self._get(model_id)  # loaded by whoever held the gate
            if hit is not None:
                return hit
            try:
                require_files(model_id, model_dir)
                loaded = get_problem(problem_type).load(Path(model_dir))
                with self._lock:
                    self._items[model_id] = loaded
                    while len(self._items) > self.capacity:
                        self._items.popitem(last=False)
            finally:
                with self._lock:
                    self._loading.pop(model_id, None)
        return loaded

    def evict(self, model_id: str) -> None:
        with self._lock:
            self._items.pop(model_id, None)
            batcher = self._batchers.pop(model_id, None)
        if batcher is not None:
            batcher.close()
