"""What lies in the data folder besides the database: the file-level facts of housekeeping.

The layout of a data folder's working files, and the functions that list them, remove them and free
media by reference. Which of them are leftovers is decided with the operation and model rows in
services/housekeeping.py (the sweep and ``automill check`` share it).

```
models/<MODEL_ID>/                     a model's files (a row in ``models`` names the folder)
models/.tmp-<OPERATION_ID>-<ATTEMPT>/  a training in progress
models/.deleted-<MODEL_ID>-<N>/        a deleted model's folder, renamed at once, then removed
tmp/<OPERATION_ID>/                    a job's temporary work (export staging, libraries' temp files)
media/<xx>/<sha256>.<ext>              imported images (media.py), freed once no example names them
media/<xx>/.tmp-*                      an image being written
media/.pins/<OPERATION_ID>/<key>       the images a running import stored (media.py)
```
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from automill.store.db import Database
from automill.store.media import MediaStore
from automill.store.tables import ExampleRow

#: pg_advisory_xact_lock key of the media lock ("automill" in ASCII, as a signed 64-bit number).
MEDIA_LOCK_KEY = 0x6175746F6D696C6C
_CHUNK = 500


def media_lock(s: Session) -> None:
    """Serialize freeing media with the imports that commit examples naming them (until ``s`` ends).

    PostgreSQL: a transaction advisory lock. SQLite: the database's write lock, taken by a write that
    changes nothing (SQLite has one writer at a time)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MEDIA_LOCK_KEY})
    else:
        s.execute(text("UPDATE id_sequence SET kind = kind WHERE 0 = 1"))


def referenced_media(s: Session, keys: Iterable[str]) -> set[str]:
    """The ``keys`` that some example still names."""
    keys = list(dict.fromkeys(keys))
    found: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        found |= set(s.execute(select(ExampleRow.content).where(ExampleRow.content.in_(chunk)).distinct()).scalars())
    return found


def free_media(db: Database, media: MediaStore, keys: Iterable[str]) -> tuple[int, int]:
    """Remove the ``keys`` no example names any more -> (files, bytes) freed.

    Run it after the transaction that deleted the examples committed: under the media lock, the
    references are read again, so an import committing the same images into another dataset either
    committed before (its rows are seen: the file stays) or commits after (it restores the file from
    its pins first)."""
    candidates = list(dict.fromkeys(keys))
    files = freed = 0
    for i in range(0, len(candidates), _CHUNK):
        chunk = candidates[i : i + _CHUNK]
        with db.tx() as s:
            media_lock(s)
            keep = referenced_media(s, chunk)
            for key in chunk:
                if key not in keep:
                    size = media.remove(key)
                    files += 1 if size else 0
                    freed += size
    return files, freed


# -- layout ---------------------------------------------------------------------------------------------


def models_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "models"


def tmp_root(data_dir: Path | str) -> Path:
    return Path(data_dir) / "tmp"


def job_tmp(data_dir: Path | str, op_id: str) -> Path:
    """The job's own temporary folder under the data folder (created): whatever a killed attempt leaves
    there is removed by the sweep once the operation has ended, never in the system temp dir."""
    folder = tmp_root(data_dir) / op_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def temp_dir_in(folder: Path) -> Iterator[Path]:
    """Make ``folder`` the process's default temp dir (``tempfile``, ``TMPDIR``) for the block, so
    that libraries' temporary files go there too; the previous one is restored after it."""
    before, env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(folder)
    os.environ["TMPDIR"] = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = before
        if env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = env


def staging(data_dir: Path | str, op_id: str, prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for one step of a job, inside its :func:`job_tmp` folder."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=job_tmp(data_dir, op_id))


def remove_model_files(artifact_dir: Path | str) -> None:
    """A deleted model's folder: renamed to a tombstone at once (a name no model has), then removed.
    A crash between the two leaves ``models/.deleted-*``, which the sweep removes."""
    folder = Path(artifact_dir)
    tomb = folder.parent / f".deleted-{folder.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(folder, tomb)
    except FileNotFoundError:
        return
    shutil.rmtree(tomb, ignore_errors=True)


# -- facts ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file or folder of the data folder that housekeeping looks at."""

    kind: str  # model_folder | tombstone | training_tmp | job_tmp | media_pin | media | media_tmp
    path: Path
    name: str  # model id, operation id or media key
    attempt: int = 0
    bytes: int = 0
    age_seconds: float = 0.0


def size_of(path: Path) -> int:
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
        return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())
    except OSError:
        return 0


def _age(path: Path, now: float) -> float:
    try:
        return max(0.0, now - path.lstat().st_mtime)
    except OSError:
        return 0.0


def scan(data_dir: Path | str, now: float) -> Iterator[Entry]:
    """Every working file and folder of the data folder (see the module's layout), with its size."""
    models = models_dir(data_dir)
    if models.is_dir():
        for path in models.iterdir():
            name = path.name
            if name.startswith(".tmp-"):
                op_id, _, attempt = name[len(".tmp-") :].rpartition("-")
                yield Entry(
                    "training_tmp",
                    path,
                    op_id or name,
                    int(attempt) if attempt.isdigit() else 0,
                    size_of(path),
                    _age(path, now),
                )
            elif name.startswith(".deleted-"):
                yield Entry("tombstone", path, name[len(".deleted-") :], 0, size_of(path), _age(path, now))
            elif path.is_dir() and not name.startswith("."):
                yield Entry("model_folder", path, name, 0, size_of(path), _age(path, now))
    tmp = tmp_root(data_dir)
    if tmp.is_dir():
        for path in tmp.iterdir():
            yield Entry("job_tmp", path, path.name, 0, size_of(path), _age(path, now))
    media = MediaStore(data_dir)
    for op_id, path in media.pins():
        yield Entry("media_pin", path, op_id, 0, 0, _age(path, now))  # hard links: they free nothing of their own
    for key, path in media.files():
        yield Entry("media" if key else "media_tmp", path, key or path.name, 0, size_of(path), _age(path, now))


def remove(entry: Entry) -> None:
    """Remove one file or folder (a folder's tree)."""
    if entry.path.is_dir() and not entry.path.is_symlink():
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        entry.path.unlink(missing_ok=True)
