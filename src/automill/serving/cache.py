"""Deployed models kept loaded in the serving process (LRU), so online predict is one call."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from automill.core.errors import FailedPrecondition
from automill.problems.base import get_problem


def require_files(model_id: str, model_dir: Path) -> None:
    if not Path(model_dir).exists():
        raise FailedPrecondition(f"the files of model {model_id} are missing; train it again")


class ModelCache:
    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # one load per model at a time (deploy + first predict)

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
