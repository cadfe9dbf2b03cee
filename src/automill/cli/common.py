"""What every client command shares: --project/--location/--endpoint/--output, names, errors.

``@command(group, "get")`` registers ``fn(c: Ctx, ...)`` as a typer command with the common options
appended; it resolves the settings, runs the command and turns a CliError into
``error: STATUS: message`` on stderr and its exit code, never a traceback.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import click
import typer

from automill.cli import config
from automill.cli.api import Api
from automill.cli.errors import CliError
from automill.cli.output import Format, emit

PROJECT = typer.Option(None, "--project", help="Project ID (env AUTOMILL_PROJECT; `automill config set project`).")
LOCATION = typer.Option(None, "--location", help="Location (env AUTOMILL_LOCATION; `automill config set location`).")
ENDPOINT = typer.Option(None, "--endpoint", help="Server URL (env AUTOMILL_ENDPOINT; `automill config set endpoint`).")
OUTPUT_HELP = "table (for people), json (the API's JSON, for scripts) or yaml."
COMMON = ("output", "project", "location", "endpoint", "parent")
#: The CLI's first syntax, still accepted but not shown: --parent projects/P/locations/L, --no-wait.
PARENT = typer.Option(None, "--parent", hidden=True)
NO_WAIT = typer.Option(False, "--no-wait", hidden=True)


@dataclass
class Ctx:
    output: Format
    settings: config.Resolved
    _api: Api | None = field(default=None, repr=False)

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.settings.endpoint, self.settings.api_key)
        return self._api

    @property
    def parent(self) -> str:
        return self.settings.parent

    def name(self, collection: str, value: str) -> str:
        """An ID (``TCN1000000000000000001``) or a full resource name -> the full name."""
        value = value.strip().strip("/")
        if value.startswith("projects/"):
            return value
        if not value or "/" in value or ":" in value:
            raise CliError(
                "INVALID_ARGUMENT",
                f"{value!r} is neither an ID nor a full resource name "
                f"(projects/PROJECT/locations/LOCATION/{collection}/ID)",
            )
        return f"{self.parent}/{collection}/{value}"

    def child(self, collection: str, parent_value: str, sub: str, value: str | None) -> str:
        """A sub-resource (``.../datasets/D/annotationSpecs/S``) from the parent's ID or name and its own ID,
        or a full name given alone (as ``parent_value``)."""
        if value is None:
            if f"/{sub}/" in parent_value:
                return parent_value.strip().strip("/")
            raise CliError(
                "INVALID_ARGUMENT",
                f"give the {collection[:-1]} and the {sub[:-1]} ID, or the full name "
                f"(projects/P/locations/L/{collection}/ID/{sub}/ID)",
            )
        if value.strip().startswith("projects/"):
            return value.strip().strip("/")
        if "/" in value or not value.strip():
            raise CliError("INVALID_ARGUMENT", f"{value!r} is not an ID")
        return f"{self.name(collection, parent_value)}/{sub}/{value.strip()}"

    def emit(self, data: Any, view: Callable[[], Any] | None = None) -> None:
        emit(self.output, data, view)


def run(fn: Callable[..., None], common: dict[str, Any], kwargs: dict[str, Any]) -> None:
    try:
        project, location = common.get("project"), common.get("location")
        if common.get("parent"):
            parts = common["parent"].strip("/").split("/")
            if len(parts) != 4 or parts[0] != "projects" or parts[2] != "locations":
                raise CliError("INVALID_ARGUMENT", f"--parent {common['parent']!r} must be projects/P/locations/L")
            project, location = project or parts[1], location or parts[3]
        settings = config.resolve(project=project, location=location, endpoint=common.get("endpoint"))
        fn(Ctx(Format(common.get("output") or "table"), settings), **kwargs)
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except CliError as exc:
        sys.stdout.flush()
        print(f"error: {exc.status}: {exc.message}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    except BrokenPipeError:
        raise typer.Exit(1) from None
    except Exception as exc:  # a bug, not a user's mistake: still no traceback unless asked for
        if os.environ.get("AUTOMILL_DEBUG"):
            raise
        print(f"error: INTERNAL: {type(exc).__name__}: {exc} (set AUTOMILL_DEBUG=1 for the traceback)", file=sys.stderr)
        raise typer.Exit(1) from None


def command(
    group: typer.Typer | None,
    name: str | None = None,
    *,
    remote: bool = True,
    output_names: tuple[str, ...] = ("--output", "-o"),
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn(c: Ctx, ...)`` with the common options added (``remote=False``: only --output)."""

    def deco(fn: Callable[..., None]) -> Callable[..., None]:
        hints = get_type_hints(fn, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in list(inspect.signature(fn).parameters.values())[1:]
        ]
        kw = inspect.Parameter.KEYWORD_ONLY
        extra = [
            inspect.Parameter(
                "output", kw, annotation=Format, default=typer.Option(Format.table, *output_names, help=OUTPUT_HELP)
            )
        ]
        if remote:
            extra += [
                inspect.Parameter("project", kw, annotation=str | None, default=PROJECT),
                inspect.Parameter("location", kw, annotation=str | None, default=LOCATION),
                inspect.Parameter("endpoint", kw, annotation=str | None, default=ENDPOINT),
                inspect.Parameter("parent", kw, annotation=str | None, default=PARENT),
            ]
        waits = any(p.name == "async_" for p in own)
        if waits:
            extra.append(inspect.Parameter("no_wait", kw, annotation=bool, default=NO_WAIT))

        def wrapper(**kwargs: Any) -> None:
            common = {k: kwargs.pop(k) for k in COMMON if k in kwargs}
            if kwargs.pop("no_wait", False):
                kwargs["async_"] = True
            run(fn, common, kwargs)

        params = own + extra
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        wrapper.__name__ = fn.__name__
        wrapper.__qualname__ = fn.__qualname__
        wrapper.__doc__ = fn.__doc__
        wrapper.__module__ = fn.__module__
        if group is not None:
            group.command(name or fn.__name__.replace("_", "-"))(wrapper)
        return wrapper

    return deco


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}``; a value without ``=`` is a usage mistake (exit 3)."""
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, val = v.partition("=")
        if not sep or not key.strip():
            raise CliError("INVALID_ARGUMENT", f"{flag} {v!r} must be KEY=VALUE")
        out[key.strip()] = val
    return out


def confirm_delete(what: str, quiet: bool) -> None:
    """Ask before deleting when a person is at the terminal (gcloud's habit); --quiet skips it."""
    if quiet or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return
    if not ask(f"Delete {what}?"):
        print("nothing deleted", file=sys.stderr)
        raise typer.Exit(1)


def ask(question: str) -> bool:
    """A [y/N] question on stderr, answered on stdin (EOF or a second Ctrl-C: no)."""
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except (KeyboardInterrupt, EOFError, OSError, ValueError):
        answer = ""
    if not sys.stdin.isatty():
        sys.stderr.write(answer if answer.endswith("\n") else answer + "\n")
    return answer.strip().lower() in ("y", "yes")


def strip_type(resource: dict[str, Any]) -> dict[str, Any]:
    """An Operation's ``response`` without its ``@type``: the resource as GetX returns it."""
    return {k: v for k, v in resource.items() if k != "@type"}


QUIET = typer.Option(False, "--quiet", "-q", help="Do not ask for confirmation.")
ASYNC = typer.Option(False, "--async", help="Return at once and print the Operation instead of waiting.")
FILTER = typer.Option("", "--filter", help="A list filter, e.g. display_name=x (see docs/api-coverage.md#filters).")
PAGE_SIZE = typer.Option(0, "--page-size", help="Items per request (0 = the server's default).")
LIMIT = typer.Option(0, "--limit", help="At most this many items (0 = all).")
