"""Waiting for an Operation: a live progress bar on a terminal, Ctrl-C offers to cancel."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn

from automill.cli.errors import CliError, code_name
from automill.cli.output import err_console, short

if TYPE_CHECKING:
    from automill.cli.common import Ctx

POLL_SECONDS = 1.0


def _created(op: dict[str, Any]) -> float | None:
    ts = op.get("metadata", {}).get("createTime", "")
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() if ts else None
    except ValueError:
        return None


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def kind(op: dict[str, Any]) -> str:
    """``createModelDetails`` -> ``createModel``."""
    return next((k[: -len("Details")] for k in op.get("metadata", {}) if k.endswith("Details")), "")


def state(op: dict[str, Any]) -> str:
    if not op.get("done"):
        return "RUNNING"
    if "error" in op:
        return "CANCELLED" if op["error"].get("code") == 1 else "FAILED"
    return "SUCCEEDED"


def show_progress() -> bool:
    return sys.stdout.isatty() and err_console.is_terminal


def wait(c: Ctx, op: dict[str, Any], budget_seconds: float | None = None) -> dict[str, Any]:
    """Poll GetOperation about every second until done; -> the finished Operation.
    A failed operation raises CliError with its google.rpc status."""
    name = op["name"]
    started = _created(op) or time.time()
    try:
        if not op.get("done"):
            if show_progress():
                op = _watch(c, op, started, budget_seconds)
            else:
                while not op.get("done"):
                    time.sleep(POLL_SECONDS)
                    op = c.api.call("GET", name)
    except KeyboardInterrupt:
        interrupted(c, name)
    return finished(op)


def _describe(op: dict[str, Any], started: float, budget_seconds: float | None) -> str:
    meta = op.get("metadata", {})
    parts = [f"{kind(op) or 'operation'} {short(op['name'])}"]
    stage = meta.get("stage")
    if stage:
        parts.append(str(stage))
    text = "  ".join(parts)
    clock = f"elapsed {_clock(time.time() - started)}"
    if budget_seconds:
        clock += f" of budget {_clock(budget_seconds)}"
    return f"{text}  [dim]{clock}[/dim]"


def _watch(c: Ctx, op: dict[str, Any], started: float, budget_seconds: float | None) -> dict[str, Any]:
    columns = (SpinnerColumn(), TextColumn("{task.description}", markup=True), BarColumn(), TaskProgressColumn())
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(_describe(op, started, budget_seconds), total=100)
        last = 0.0
        while not op.get("done"):
            now = time.monotonic()
            if now - last >= POLL_SECONDS:
                op = c.api.call("GET", op["name"])
                last = now
            pct = float(op.get("metadata", {}).get("progressPercent", 0) or 0)
            bar.update(
                task,
                completed=100 if op.get("done") and "error" not in op else pct,
                description=_describe(op, started, budget_seconds),
            )
            if not op.get("done"):
                time.sleep(0.2)
    return op


def interrupted(c: Ctx, name: str) -> None:
    """Ctrl-C while waiting: offer to cancel; either way exit 130."""
    op_id = short(name)
    err_console.print()
    from automill.cli.common import ask

    if ask(f"Cancel operation {op_id}?"):
        c.api.call("POST", f"{name}:cancel", {})
        print(f"cancel requested for operation {op_id}", file=sys.stderr)
    else:
        print(
            f"operation {op_id} keeps running; watch it again with: automill operations wait {op_id}", file=sys.stderr
        )
    raise typer.Exit(130)


def finished(op: dict[str, Any]) -> dict[str, Any]:
    if op.get("done") and "error" in op:
        err = op["error"]
        raise CliError(
            code_name(err.get("code", 2)),
            f"operation {short(op['name'])} failed: {err.get('message', '')}".rstrip(": "),
        )
    return op
