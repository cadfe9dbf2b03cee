"""``--output table|json|yaml``: json is the API's JSON as it came; tables never cut an id."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def emit(
    fmt: Format | str, data: Any, view: Callable[[], Iterable[RenderableType] | RenderableType] | None = None
) -> None:
    """Print ``data`` as JSON / YAML, or the human ``view`` (default: the JSON) for ``table``."""
    fmt = Format(fmt)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    elif fmt is Format.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False))
    else:
        if view is None:
            sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            return
        out = view()
        for item in out if isinstance(out, (list, tuple)) else [out]:
            if isinstance(item, str):
                console.print(item, markup=False, soft_wrap=True)
            elif item is not None:
                console.print(item)
    sys.stdout.flush()


class Col:
    """A table column; ``ident=True``: an id, printed whole (never wrapped, never cut)."""

    def __init__(self, header: str, ident: bool = False, justify: str = "left") -> None:
        self.header, self.ident, self.justify = header, ident, justify


def table(columns: Sequence[Col], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    rows = [["" if v is None else str(v) for v in r] for r in rows]
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        if c.ident:
            width = max([len(c.header)] + [len(r[i]) for r in rows])
            t.add_column(c.header, no_wrap=True, overflow="fold", min_width=width, justify=c.justify)  # type: ignore[arg-type]
        else:
            t.add_column(c.header, overflow="fold", justify=c.justify)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(*r)
    return t


def kv(rows: Iterable[tuple[str, Any]], title: str | None = None) -> Table:
    """A two-column key/value view; empty values are left out."""
    t = Table(title=title, box=box.SIMPLE, show_header=False, pad_edge=False, title_justify="left", title_style="bold")
    t.add_column("field", no_wrap=True, style="bold")
    t.add_column("value", overflow="fold")
    for k, v in rows:
        if v not in (None, "", [], {}):
            t.add_row(k, str(v))
    return t


def short(name: str) -> str:
    """``projects/p/locations/l/datasets/TCN1`` -> ``TCN1``."""
    return name.rsplit("/", 1)[-1] if name else ""


def when(ts: str) -> str:
    """``2026-11-23T10:05:02.094Z`` -> ``2026-11-23 10:05:02``."""
    return ts[:19].replace("T", " ") if ts else ""


def num(value: Any, digits: int = 3) -> str:
    if value in (None, ""):
        return ""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{f:.{digits}f}"
