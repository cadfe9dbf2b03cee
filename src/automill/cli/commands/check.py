"""``automill check [--repair]``: every difference between the database and the data folder.

It reads the database and the folder directly (no server needed; it is safe while one runs): model
folders without a model, deleted models' folders, temporary folders of ended operations, images no
example refers to, and the other way round models whose files or examples whose images are gone.
The server's periodic sweep removes the same leftovers with the same code
(services/housekeeping.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from automill.cli.output import Col, Format, emit, err_console, table


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def check(
    repair: bool = typer.Option(
        False, "--repair", help="Remove what is found (what repair cannot mend is only reported)."
    ),
    data_dir: Path | None = typer.Option(None, help="Data folder (env AUTOMILL_DATA_DIR, default ./automill-data)."),
    database_url: str | None = typer.Option(
        None, help="SQLAlchemy URL (env AUTOMILL_DATABASE_URL; default SQLite in the data dir)."
    ),
    output: Format = typer.Option(Format.table, "--output", "-o", help="table, json or yaml."),
) -> None:
    """Compare the database with the data folder; exit 1 when anything is found, 0 on a clean folder.

    Example: automill check --data-dir ./automill-data --repair
    """
    from sqlalchemy.exc import SQLAlchemyError

    from automill.services import housekeeping
    from automill.settings import Settings
    from automill.store.db import Database

    settings = Settings.from_env(data_dir=data_dir, database_url=database_url)
    if not settings.database_url and not (settings.data_dir / "automill.db").is_file():
        err_console.print(f"error: no Automill database in {settings.data_dir} (give --data-dir or --database-url)")
        raise typer.Exit(2)
    db = Database(settings.db_url)
    try:
        findings = housekeeping.find(db, settings.data_dir)
        removed = housekeeping.repair(db, settings.data_dir, findings) if repair and findings else []
    except SQLAlchemyError as exc:
        err_console.print(
            f"error: cannot read the database at {settings.db_url}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}"
        )
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    gone = {(f.kind, f.path) for f in removed}
    summary: dict[str, dict[str, Any]] = {}
    for f in findings:
        entry = summary.setdefault(
            f.kind, {"description": housekeeping.KINDS[f.kind], "count": 0, "bytes": 0, "removed": 0}
        )
        entry["count"] += 1
        entry["bytes"] += f.bytes
        entry["removed"] += (f.kind, f.path) in gone
    total_bytes = sum(f.bytes for f in findings)
    data = {
        "dataDir": str(settings.data_dir),
        "clean": not findings,
        "repaired": repair,
        "summary": summary,
        "findings": [{**f.json(), "removed": (f.kind, f.path) in gone} for f in findings],
        "count": len(findings),
        "bytes": total_bytes,
        "removedCount": len(removed),
    }

    def view() -> list[Any]:
        if not findings:
            return [f"clean: the database and {settings.data_dir} agree"]
        rows = [
            (k, v["description"], v["count"], _bytes(v["bytes"]), v["removed"] if repair else "")
            for k, v in summary.items()
        ]
        out: list[Any] = [
            table(
                [
                    Col("kind", ident=True),
                    Col("what"),
                    Col("count", justify="right"),
                    Col("size", justify="right"),
                    Col("removed", justify="right"),
                ],
                rows,
                title=f"{len(findings)} found in {settings.data_dir} ({_bytes(total_bytes)})",
            )
        ]
        out.append(
            table(
                [Col("kind", ident=True), Col("name", ident=True), Col("size", justify="right")],
                [(f.kind, f.name, _bytes(f.bytes)) for f in findings[:200]],
            )
        )
        if len(findings) > 200:
            out.append(f"... and {len(findings) - 200} more (-o json lists them all)")
        out.append(f"removed {len(removed)} of {len(findings)}" if repair else "run with --repair to remove them")
        return out

    emit(output, data, view)
    raise typer.Exit(1 if findings else 0)
