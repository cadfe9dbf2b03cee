"""What a training keeps for the next attempt when its worker dies: its best weights so far, or the
trials it finished. Files in a folder the caller owns (the operation's temporary folder, which
outlives a killed attempt), each written whole or not at all (a temporary name, then a rename).

    best = BestState(folder / "image.pt")
    saved = best.load()                  # None on a first attempt
    ...learner.fit(..., on_best=best.offer)
    best.flush()

    trials = TrialLog(folder / "text-trials", signature="multiclass|default|412|3")
    done = trials.load()                 # what earlier attempts finished, in order
    trials.add(record)                   # after each trial
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("automill.engine")

#: The best weights are saved at most this often (and once more when training ends): a kill loses
#: at most this much of the improvement since.
SAVE_SECONDS = 3.0


def _write(path: Path, write: Any) -> None:
    """``write(tmp_path)``, then rename onto ``path``: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class Saved:
    """A saved best state: the weights, their validation score (lower is better) and what the learner
    needs to know about them (model type, labels, epochs)."""

    state: dict[str, Any]
    score: float
    info: dict[str, Any] = field(default_factory=dict)


class BestState:
    """A torch model's best weights so far, saved at most every ``every`` seconds."""

    def __init__(self, path: Path, every: float = SAVE_SECONDS) -> None:
        self.path, self.every = path, every
        self._pending: Saved | None = None
        self._saved_at = float("-inf")

    def load(self) -> Saved | None:
        """What an earlier attempt saved, or None (also when the file cannot be read)."""
        if not self.path.is_file():
            return None
        try:
            import torch

            data = torch.load(self.path, weights_only=True)
            return Saved(data["state"], float(data["score"]), dict(data.get("info") or {}))
        except Exception:
            log.warning("ignoring an unreadable training checkpoint %s", self.path.name, exc_info=True)
            return None

    def offer(self, state: dict[str, Any], score: float, info: dict[str, Any] | None = None) -> None:
        """A new best: saved now if the last save is ``every`` seconds old, else at the next offer or flush.
        ``state`` must not change afterwards (pass a copy)."""
        self._pending = Saved(state, score, dict(info or {}))
        if time.monotonic() - self._saved_at >= self.every:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        import torch

        data = {"state": pending.state, "score": pending.score, "info": pending.info}
        _write(self.path, lambda tmp: torch.save(data, tmp))
        self._saved_at = time.monotonic()


class TrialLog:
    """Finished trials, one pickle file each, in the order they finished. Records of another
    ``signature`` (another split, label set or model type) are not returned."""

    def __init__(self, folder: Path, signature: str) -> None:
        self.folder, self.signature = folder, signature

    def load(self) -> list[Any]:
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("trial-*.pkl")):
            try:
                with open(path, "rb") as fh:
                    signature, record = pickle.load(fh)  # noqa: S301 - this training's own files, in the data folder
            except Exception:
                log.warning("ignoring an unreadable trial checkpoint %s", path.name, exc_info=True)
                continue
            if signature == self.signature:
                out.append(record)
        return out

    def add(self, record: Any) -> None:
        n = len(list(self.folder.glob("trial-*.pkl"))) if self.folder.is_dir() else 0

        def dump(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                pickle.dump((self.signature, record), fh, protocol=pickle.HIGHEST_PROTOCOL)

        _write(self.folder / f"trial-{n:04d}.pkl", dump)
