"""Finding a row by its resource name, scoped to the name's project and location."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from automill.core.errors import NotFound
from automill.core.ids import split_name

T = TypeVar("T")


def find(s: Session, table: type[T], name: str, collection: str, what: str) -> T:
    """``projects/P/locations/L/<collection>/ID`` -> the row, or NotFound (also for another project's row)."""
    project, location, rid = split_name(name, collection)
    row: Any = s.get(table, rid)
    if row is None or row.project != project or row.location != location:
        raise NotFound(f"{what} {name} not found")
    return row  # type: ignore[no-any-return]


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
    if s.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"{what} {name} not found")
    return find(s, table, name, collection, what)
