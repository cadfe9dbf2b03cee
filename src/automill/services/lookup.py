"""Finding a row by its resource name, scoped to the name's project and location."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from automill.core.errors import NotFound
from automill.core.ids import split_name
from automill.store.db import updated_rows

T = TypeVar("T")

#: Google's NOT_FOUND wording where it is known (scripts and Google's own sample tests look for it).
GOOGLE_WORDING = {"dataset": "Dataset does not exist.", "model": "The model does not exist."}
#: ImportData and ExportData on a dataset that is not there.
DATASET_DATA_MISSING = "The Dataset doesn't exist or is inaccessible for use with AutoMl."


def missing(what: str, name: str, sentence: str = "") -> NotFound:
    """NOT_FOUND for the ``what`` (dataset, model, ...) named ``name``: Google's sentence, then the name."""
    return NotFound(f"{sentence or GOOGLE_WORDING.get(what, f'The {what} does not exist.')} ({name[:300]})")


def find(s: Session, table: type[T], name: str, collection: str, what: str) -> T:
    """``projects/P/locations/L/<collection>/ID`` -> the row, or NotFound (also for another project's row)."""
    project, location, rid = split_name(name, collection)
    row = s.get(table, rid)
    scoped: Any = row  # every table found by name has project and location columns
    if row is None or scoped.project != project or scoped.location != location:
        raise missing(what, name)
    return row


def lock(s: Session, table: type[T], name: str, collection: str, what: str) -> T:
    """Like ``find``, but first write-locks the row, so that checks made after it in this transaction
    cannot race another request on the same resource (two imports, two deletes, deploy vs delete).

    It must be the transaction's first statement: pysqlite begins a transaction only at the first
    write, so reads before it see no snapshot; this no-op UPDATE takes SQLite's database write lock
    (waiting up to busy_timeout) and PostgreSQL's row lock, after which READ COMMITTED reads see what
    the other transaction committed. A row deleted meanwhile, or of another project, is NotFound.
    """
    project, location, rid = split_name(name, collection)
    cols: Any = table
    stmt = (
        update(table)
        .where(cols.id == rid, cols.project == project, cols.location == location)
        .values(etag=cols.etag)
        .execution_options(synchronize_session=False)
    )
    if updated_rows(s, stmt) != 1:
        raise missing(what, name)
    return find(s, table, name, collection, what)
