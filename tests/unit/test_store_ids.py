"""Database: migrations, WAL, and the ID sequence that never hands out a number twice."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import delete, func, inspect, select, text

from automill.store.db import Database, next_number
from automill.store.tables import IdSequence


def _take(db: Database, kind: str, count: int) -> list[int]:
    out = []
    for _ in range(count):
        with db.tx() as s:
            out.append(next_number(s, kind))
    return out


def _revision(db: Database) -> str:
    with db.engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def _check_never_reused(url: str) -> None:
    db = Database(url)
    try:
        db.migrate()
        first = _take(db, "dataset", 3) + _take(db, "model", 2)
        with db.tx() as s:  # several in one transaction
            first += [next_number(s, "operation") for _ in range(3)]
        assert all(b > a for a, b in itertools.pairwise(first)), first
        assert len(set(first)) == len(first)

        with db.tx() as s:
            s.execute(delete(IdSequence))
        with db.tx() as s:
            assert s.execute(select(func.count()).select_from(IdSequence)).scalar_one() == 0
    finally:
        db.dispose()

    # a new Database on the same storage, as after a restart
    db2 = Database(url)
    try:
        db2.migrate()
        later = _take(db2, "dataset", 3)
        assert all(n > max(first) for n in later), (first, later)
        assert all(b > a for a, b in itertools.pairwise(later)), later
    finally:
        db2.dispose()


# -- SQLite ----------------------------------------------------------------------------------------


def test_sqlite_numbers_increase_and_are_never_reused(tmp_path: Path) -> None:
    _check_never_reused(f"sqlite:///{tmp_path}/a.db")


def test_sqlite_id_sequence_uses_autoincrement(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a.db")
    try:
        db.migrate()
        with db.engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'id_sequence'")).scalar_one()
        assert "AUTOINCREMENT" in sql.upper()
    finally:
        db.dispose()


def test_sqlite_numbers_survive_deleting_the_highest_row(tmp_path: Path) -> None:
    """Without AUTOINCREMENT SQLite reuses max(rowid)+1 once the highest row is gone."""
    url = f"sqlite:///{tmp_path}/a.db"
    db = Database(url)
    db.migrate()
    taken = _take(db, "x", 5)
    with db.tx() as s:
        s.execute(delete(IdSequence).where(IdSequence.n == taken[-1]))
    db.dispose()
    db = Database(url)
    try:
        assert _take(db, "x", 1)[0] > taken[-1]
    finally:
        db.dispose()


def test_sqlite_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a.db")
    try:
        db.migrate()
        rev = _revision(db)
        tables = set(inspect(db.engine).get_table_names())
        assert {"id_sequence", "datasets", "models", "operations", "alembic_version"} <= tables
        n = _take(db, "dataset", 1)[0]

        db.migrate()
        assert _revision(db) == rev
        assert set(inspect(db.engine).get_table_names()) == tables
        with db.tx() as s:
            assert s.execute(select(IdSequence.n)).scalars().all() == [n]
        assert _take(db, "dataset", 1)[0] > n
    finally:
        db.dispose()

    db2 = Database(f"sqlite:///{tmp_path}/a.db")
    try:
        db2.migrate()  # a second process starting on the same file
        assert _revision(db2) == rev
    finally:
        db2.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a.db")
    try:
        db.migrate()
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one().lower() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
        with db.tx() as s:
            assert s.execute(text("PRAGMA journal_mode")).scalar_one().lower() == "wal"
        assert not db.is_postgres
    finally:
        db.dispose()


def test_sqlite_creates_missing_parent_folders(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/deep/er/a.db")
    try:
        db.migrate()
        assert (tmp_path / "deep" / "er" / "a.db").is_file()
    finally:
        db.dispose()


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_numbers_increase_and_are_never_reused(postgres_url: str) -> None:
    _check_never_reused(postgres_url)
    db = Database(postgres_url)
    try:
        assert db.is_postgres
        rev = _revision(db)
        db.migrate()  # again: a no-op
        assert _revision(db) == rev
    finally:
        db.dispose()
