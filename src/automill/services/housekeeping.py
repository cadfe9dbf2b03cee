"""Housekeeping: what the data folder holds that no row refers to, and what rows name that is gone.

One function finds the differences (:func:`find`) and one removes what can be removed
(:func:`repair`); ``automill check [--repair]`` and the server's periodic sweep (:class:`Sweeper`)
both use them. The files are listed first, then the rows are read, so a file written by an
operation that commits meanwhile is seen with its row or with its operation still running.

Nothing an operation that is queued or running may still use is touched: its training folder, its
temporary folder and its media pins go only once it has ended (or when no operation has its id). A
model folder without a model row is removed at once unless a training is running (its commit
renames the folder just before the row is committed); then only once it is older than
``PARTIAL_WRITE_SECONDS``, as for a half-written image. Media are freed under the media lock with
their references read again (store/housekeeping.py).
"""

from __future__ import annotations

import functools
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from automill.jobs.states import JobState
from automill.store import housekeeping as files
from automill.store.db import Database
from automill.store.media import MediaStore, is_key
from automill.store.tables import DatasetRow, ExampleRow, ModelRow, OperationRow

log = logging.getLogger("automill.housekeeping")

#: A write with no operation to ask about (an image being stored, a model folder being committed)
#: is left alone until it is this old.
PARTIAL_WRITE_SECONDS = 600.0
#: How often ``automill serve`` sweeps (after the sweep on start).
SWEEP_SECONDS = 600.0

#: Every kind of finding, with what it means; the last two are differences repair cannot mend.
KINDS: dict[str, str] = {
    "model_folder": "model folder without a model",
    "tombstone": "deleted model's folder not yet removed",
    "training_tmp": "training folder of an ended or unknown operation",
    "job_tmp": "temporary folder of an ended or unknown operation",
    "media_pin": "media pins of an ended or unknown import",
    "media": "image no example refers to",
    "media_tmp": "partial image write",
    "model_files_missing": "model whose files are missing (delete the model)",
    "media_missing": "example whose image is missing (delete the dataset or import it again)",
}
UNREPAIRABLE = {"model_files_missing", "media_missing"}
ACTIVE = (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class Finding:
    kind: str
    name: str  # model id, operation id, media key, file name
    path: str
    bytes: int

    @property
    def repairable(self) -> bool:
        return self.kind not in UNREPAIRABLE

    def json(self) -> dict[str, Any]:
        return {**asdict(self), "description": KINDS[self.kind], "repairable": self.repairable}


def find(db: Database, data_dir: Path | str, *, now: float | None = None) -> list[Finding]:
    """Every difference between the database and the data folder."""
    now = time.time() if now is None else now
    entries = list(files.scan(data_dir, now))  # files first, rows second (see the module's docstring)
    with db.tx() as s:
        models = dict(s.execute(select(ModelRow.id, ModelRow.artifact_dir)).all())
        active = set(s.execute(select(OperationRow.id).where(OperationRow.state.in_(ACTIVE))).scalars())
        training = s.execute(
            select(OperationRow.id)
            .where(OperationRow.kind == "create_model", OperationRow.state == JobState.RUNNING)
            .limit(1)
        ).first()
        image_keys = set(
            s.execute(
                select(ExampleRow.content)
                .join(DatasetRow, DatasetRow.id == ExampleRow.dataset_id)
                .where(DatasetRow.problem_type.like("image_%"))
                .distinct()
            ).scalars()
        )
    artifact_dirs = {str(Path(p)) for p in models.values()}
    media_keys = {e.name for e in entries if e.kind == "media"}
    pinned_active: set[str] = set()
    for e in entries:
        if e.kind == "media_pin" and e.name in active and e.path.is_dir():
            pinned_active |= {p.name for p in e.path.iterdir()}
    out: list[Finding] = []
    for e in entries:
        leftover = False
        if e.kind == "model_folder":
            leftover = (
                e.name not in models
                and str(e.path) not in artifact_dirs
                and (training is None or e.age_seconds > PARTIAL_WRITE_SECONDS)
            )
        elif e.kind == "tombstone":
            leftover = True
        elif e.kind in ("training_tmp", "job_tmp", "media_pin"):
            leftover = e.name not in active
        elif e.kind == "media":
            leftover = e.name not in image_keys and e.name not in pinned_active
        elif e.kind == "media_tmp":
            leftover = e.age_seconds > PARTIAL_WRITE_SECONDS
        if leftover:
            out.append(Finding(e.kind, e.name, str(e.path), e.bytes))
    media = MediaStore(data_dir)
    for model_id, artifact in sorted(models.items()):
        if not Path(artifact).is_dir():
            out.append(Finding("model_files_missing", model_id, artifact, 0))
    for key in sorted(image_keys - media_keys):
        if is_key(key) and not media.exists(key):
            out.append(Finding("media_missing", key, str(media.path(key)), 0))
    return out


def repair(db: Database, data_dir: Path | str, findings: list[Finding]) -> list[Finding]:
    """Remove what ``findings`` found -> what was removed (media still referenced now stay)."""
    removed: list[Finding] = []
    media = MediaStore(data_dir)
    keys = [f for f in findings if f.kind == "media"]
    for f in findings:
        if not f.repairable or f.kind == "media":
            continue
        files.remove(files.Entry(f.kind, Path(f.path), f.name))
        removed.append(f)
    if keys:
        files.free_media(db, media, [f.name for f in keys])
        removed += [f for f in keys if not media.exists(f.name)]
    return removed


def sweep(db: Database, data_dir: Path | str) -> list[Finding]:
    """Find and remove the leftovers -> what was removed (logged)."""
    removed = repair(db, data_dir, find(db, data_dir))
    if removed:
        total = sum(f.bytes for f in removed)
        log.info(
            "housekeeping removed %d leftovers (%d bytes): %s",
            len(removed),
            total,
            ", ".join(f"{f.kind} {f.name}" for f in removed[:10]) + (" ..." if len(removed) > 10 else ""),
        )
    return removed


class Sweeper:
    """The server's sweep: once on start, then every ``interval`` seconds, in a daemon thread."""

    def __init__(self, db: Database, data_dir: Path | str, interval: float = SWEEP_SECONDS) -> None:
        self.db, self.data_dir, self.interval = db, data_dir, interval
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="automill-sweep", daemon=True)

    def start(self) -> Sweeper:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                sweep(self.db, self.data_dir)
            except Exception:
                log.warning("housekeeping sweep failed", exc_info=True)
            if self._stop.wait(self.interval):
                return


def uses_job_tmp(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A job handler whose temporary files go under ``<data_dir>/tmp/<operation id>`` (removed when it
    returns or raises; the sweep removes what a killed attempt left)."""

    @functools.wraps(handler)
    def wrapper(ctx: Any) -> Any:
        folder = files.job_tmp(ctx.services.settings.data_dir, ctx.op_id)
        try:
            with files.temp_dir_in(folder):
                return handler(ctx)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return wrapper
