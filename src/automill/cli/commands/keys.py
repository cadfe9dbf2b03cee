"""``automill keys ...`` and ``automill audit``: API keys and the audit log, on the server's database.

These commands work on the database itself (``--data-dir`` / ``--database-url``, or the
``AUTOMILL_*`` variables the server reads), not over the API: whoever can run them on the server's
machine (or reach its database) is its administrator. Keys take effect on a running server at once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from automill.cli.errors import EXIT_CODES
from automill.cli.output import Col, Format, emit, table
from automill.core.errors import AutomillError

keys = typer.Typer(help="API keys: create (the secret is shown once), list, revoke.", no_args_is_help=True)

DATA_DIR = typer.Option(
    None, "--data-dir", help="The server's data folder (env AUTOMILL_DATA_DIR, default ./automill-data)."
)
DATABASE_URL = typer.Option(None, "--database-url", help="The server's database (env AUTOMILL_DATABASE_URL).")
OUTPUT = typer.Option(Format.table, "--output", "-o", help="table (for people) or json.")
ROLE_HELP = "admin (everything), editor (every API call), viewer (get and list), predictor (Predict and GetModel)"


@contextmanager
def _database(data_dir: Path | None, database_url: str | None) -> Iterator[Any]:
    """The server's database, schema upgraded; an AutomillError becomes ``error: STATUS: message``."""
    from automill.settings import Settings
    from automill.store.db import Database

    try:
        settings = Settings.from_env(data_dir=data_dir, database_url=database_url)
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.db_url)
        try:
            db.migrate()
            yield db
        finally:
            db.dispose()
    except AutomillError as exc:
        print(f"error: {exc.status}: {exc.message}", file=sys.stderr)
        raise typer.Exit(EXIT_CODES.get(exc.status, 1)) from None


def _when(d: datetime | None) -> str:
    return d.strftime("%Y-%m-%d %H:%M") if d else ""


@keys.command("create")
def keys_create(
    project: str = typer.Option(..., "--project", help="The project the key may use, or '*' for every project."),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    name: str = typer.Option("", "--name", help="A name for lists, revoke and the audit log (default key-<key id>)."),
    expires: str = typer.Option("", "--expires", help="Lifetime (30d, 12h, 90m, 2w) or an ISO time; default: never."),
    data_dir: Path | None = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Create an API key and print it once, alone on the last line (only its hash is stored).

    Send it as 'x-goog-api-key: KEY' (client_options={"api_key": KEY}) or 'Authorization: Bearer KEY'.
    Example: KEY=$(automill keys create --project my-project --role editor --name ci --expires 30d)
    """
    from automill.core.durations import later_or_time
    from automill.services.keys import create_key
    from automill.store.db import utcnow

    with _database(data_dir, database_url) as db:
        expires_at = later_or_time(expires, utcnow(), field="expires") if expires else None
        info, secret = create_key(db, project=project, role=role, name=name, expires_at=expires_at)
    scope = "every project" if info.project == "*" else f"project {info.project}"
    until = f", expires {_when(info.expires_at)} UTC" if info.expires_at else ", never expires"
    print(
        f"created key {info.name} (role {info.role} on {scope}{until}). It is shown once: store it now.",
        file=sys.stderr,
    )
    sys.stderr.flush()
    print(secret)


@keys.command("list")
def keys_list(
    data_dir: Path | None = DATA_DIR, database_url: str | None = DATABASE_URL, output: Format = OUTPUT
) -> None:
    """List the keys: name, project, role, created, expires (or revoked, expired), last used; never a secret."""
    from automill.services.keys import list_keys
    from automill.store.db import utcnow

    with _database(data_dir, database_url) as db:
        items = list_keys(db)
    now = utcnow()

    def expires(k: Any) -> str:
        state = k.state(now)
        return state if state != "active" else (_when(k.expires_at)[:10] or "never")

    emit(
        output,
        {"keys": [k.as_json(now) for k in items]},
        lambda: (
            table(
                [
                    Col("NAME", ident=True),
                    Col("PROJECT"),
                    Col("ROLE", ident=True),
                    Col("CREATED", ident=True),
                    Col("EXPIRES", ident=True),
                    Col("LAST USED", ident=True),
                ],
                [
                    (k.name, k.project, k.role, _when(k.created_at)[:10], expires(k), _when(k.last_used_at) or "never")
                    for k in items
                ],
            )
            if items
            else "no keys"
        ),
    )


@keys.command("revoke")
def keys_revoke(
    name: str = typer.Argument(..., help="The key's name (automill keys list)."),
    data_dir: Path | None = DATA_DIR,
    database_url: str | None = DATABASE_URL,
) -> None:
    """Revoke a key: a running server refuses it within seconds. The name stays taken."""
    from automill.services.keys import revoke_key

    with _database(data_dir, database_url) as db:
        _, fresh = revoke_key(db, name)
    print(f"revoked key {name}" if fresh else f"key {name} was revoked already")


def audit(
    project: str = typer.Option("", "--project", help="Only this project's entries."),
    since: str = typer.Option("", "--since", help="Only entries since a time: 1h, 30m, 7d, or an ISO time."),
    limit: int = typer.Option(100, "--limit", help="At most this many entries, newest first."),
    data_dir: Path | None = DATA_DIR,
    database_url: str | None = DATABASE_URL,
    output: Format = OUTPUT,
) -> None:
    """The audit log: every API request that changed something, and every refused one (401, 403).

    Example: automill audit --since 1h --project my-project -o json
    """
    from automill.core.durations import ago_or_time
    from automill.services.audit import entries
    from automill.store.db import utcnow

    with _database(data_dir, database_url) as db:
        since_at = ago_or_time(since, utcnow(), field="since") if since else None
        items = entries(db, project=project, since=since_at, limit=limit)

    def view() -> Any:
        if not items:
            return "no entries"
        return table(
            [
                Col("TIME (UTC)", ident=True),
                Col("KEY", ident=True),
                Col("METHOD", ident=True),
                Col("RESULT"),
                Col("RESOURCE"),
            ],
            [
                (
                    e.time.strftime("%Y-%m-%d %H:%M:%S"),
                    e.key_name,
                    e.method or e.http_method,
                    f"{e.http_status} {e.status}",
                    e.resource,
                )
                for e in items
            ],
        )

    emit(output, {"entries": [e.as_json() for e in items]}, view)
