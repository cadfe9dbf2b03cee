"""Finding a row by its resource name, scoped to the name's project and location."""

from __future__ import annotations

from typing import Any, TypeVar

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
