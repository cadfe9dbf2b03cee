"""``automill config set|get|list|unset``: the CLI's settings file."""

from __future__ import annotations

import typer

from automill.cli import config as cfg
from automill.cli.common import Ctx, command
from automill.cli.output import Col, table

config_app = typer.Typer(
    help="CLI settings (project, location, endpoint, api-key): set, get, list, unset.", no_args_is_help=True
)
KEY_HELP = "project | location | endpoint | api-key"


def _shown(key: str, value: str) -> str:
    """API keys are masked in listings (``config get api-key`` prints it whole)."""
    if key == "api-key" and value:
        return value[:4] + "…" if len(value) > 8 else "…"
    return value


@command(config_app, "set", remote=False)
def config_set(
    c: Ctx, key: str = typer.Argument(..., help=KEY_HELP), value: str = typer.Argument(..., help="The value.")
) -> None:
    """Save a setting in the config file.

    Example: automill config set project my-project
    """
    k = cfg.key_name(key)
    v = cfg.validate(k, value)
    p = cfg.write(k, v)
    c.emit({"key": k, "value": v, "file": str(p)}, lambda: f"{k} = {_shown(k, v)} (saved in {p})")


@command(config_app, "unset", remote=False)
def config_unset(c: Ctx, key: str = typer.Argument(..., help=KEY_HELP)) -> None:
    """Remove a setting from the config file (its default applies again).

    Example: automill config unset endpoint
    """
    k = cfg.key_name(key)
    p = cfg.write(k, None)
    c.emit({"key": k, "file": str(p)}, lambda: f"{k} removed from {p}")


@command(config_app, "get", remote=False)
def config_get(c: Ctx, key: str | None = typer.Argument(None, help=KEY_HELP + "; all when left out.")) -> None:
    """Print the effective value of a setting (flags > AUTOMILL_* variables > file > default).

    Example: automill config get project
    """
    r = cfg.resolve()
    if key is None:
        data = dict(r.values)
        c.emit(data, lambda: "\n".join(f"{k} = {_shown(k, v)}" for k, v in data.items()))
        return
    k = cfg.key_name(key)
    c.emit({k: r.values[k]}, lambda: r.values[k])


@command(config_app, "list", remote=False)
def config_list(c: Ctx) -> None:
    """List every setting with its effective value and where it comes from.

    Example: automill config list -o json
    """
    r = cfg.resolve()
    data = {"file": str(cfg.path()), "settings": {k: {"value": r.values[k], "source": r.sources[k]} for k in cfg.KEYS}}
    c.emit(
        data,
        lambda: [
            table(
                [Col("KEY", ident=True), Col("VALUE"), Col("SOURCE")],
                [(k, _shown(k, r.values[k]), r.sources[k]) for k in cfg.KEYS],
            ),
            f"config file: {cfg.path()}",
        ],
    )
