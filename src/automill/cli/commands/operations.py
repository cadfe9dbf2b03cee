"""``automill operations ...``: the google.longrunning operations of a location."""

from __future__ import annotations

import sys
from typing import Any

import typer

from automill.cli.common import FILTER, LIMIT, PAGE_SIZE, QUIET, Ctx, command, confirm_delete
from automill.cli.errors import code_name
from automill.cli.output import Col, kv, short, table, when
from automill.cli.progress import kind, state, wait

operations = typer.Typer(help="Long-running operations: get, list, wait, cancel, delete.", no_args_is_help=True)


def result(op: dict[str, Any]) -> str:
    """What a finished operation produced: a resource ID or an output folder."""
    meta = op.get("metadata", {})
    for details in meta.values():
        if isinstance(details, dict) and details.get("outputInfo"):
            info = details["outputInfo"]
            return str(info.get("gcsOutputDirectory") or next(iter(info.values()), ""))
    name = op.get("response", {}).get("name", "")
    return short(name) if name else ""


def operation_view(op: dict[str, Any]) -> Any:
    meta = op.get("metadata", {})
    err = op.get("error", {})
    failures = meta.get("partialFailures", [])
    return kv(
        [
            ("id", short(op.get("name", ""))),
            ("kind", kind(op)),
            ("state", state(op)),
            ("progress", f"{meta.get('progressPercent', 0)}%" if not op.get("done") else ""),
            ("stage", meta.get("stage", "")),
            ("created", when(meta.get("createTime", ""))),
            ("updated", when(meta.get("updateTime", ""))),
            ("result", result(op)),
            ("error", f"{code_name(err.get('code'))}: {err.get('message', '')}" if err else ""),
            ("partial failures", len(failures) if failures else ""),
        ]
    )


def operations_table(items: list[dict[str, Any]]) -> Any:
    return table(
        [Col("ID", ident=True), Col("KIND"), Col("STATE"), Col("%", justify="right"), Col("CREATED"), Col("ERROR")],
        [
            (
                short(o["name"]),
                kind(o),
                state(o),
                o.get("metadata", {}).get("progressPercent", 0) if not o.get("done") else "",
                when(o.get("metadata", {}).get("createTime", "")),
                o.get("error", {}).get("message", ""),
            )
            for o in items
        ],
    )


@command(operations, "get")
def operations_get(c: Ctx, operation: str = typer.Argument(..., help="Operation ID or full name.")) -> None:
    """Show one operation (its state, progress, result or error).

    Example: automill operations get TCN1000000000000000007
    """
    op = c.api.call("GET", c.name("operations", operation))
    c.emit(op, lambda: operation_view(op))


@command(operations, "list")
def operations_list(c: Ctx, filter: str = FILTER, page_size: int = PAGE_SIZE, limit: int = LIMIT) -> None:
    """List the operations of the location, oldest first.

    Example: automill operations list --filter done=false
    """
    data = c.api.list_all(
        f"{c.parent}/operations", "operations", {"filter": filter, "pageSize": page_size or None}, limit
    )
    c.emit(data, lambda: operations_table(data.get("operations", [])))


@command(operations, "wait")
def operations_wait(c: Ctx, operation: str = typer.Argument(..., help="Operation ID or full name.")) -> None:
    """Watch an operation until it is done, with a progress bar; exits non-zero if it failed.

    Example: automill operations wait TCN1000000000000000007
    """
    op = wait(c, c.api.call("GET", c.name("operations", operation)))
    c.emit(op, lambda: operation_view(op))


@command(operations, "cancel")
def operations_cancel(c: Ctx, operation: str = typer.Argument(..., help="Operation ID or full name.")) -> None:
    """Ask the server to cancel a queued or running operation.

    Example: automill operations cancel TCN1000000000000000007
    """
    name = c.name("operations", operation)
    data = c.api.call("POST", f"{name}:cancel", {})
    c.emit(data, lambda: f"cancel requested for operation {short(name)}")


@command(operations, "delete")
def operations_delete(
    c: Ctx, operation: str = typer.Argument(..., help="Operation ID or full name."), quiet: bool = QUIET
) -> None:
    """Forget a finished operation.

    Example: automill operations delete TCN1000000000000000007
    """
    name = c.name("operations", operation)
    confirm_delete(f"operation {short(name)}", quiet)
    data = c.api.call("DELETE", name)
    c.emit(data, lambda: f"deleted operation {short(name)}")
    sys.stdout.flush()
