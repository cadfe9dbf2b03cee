"""Where benchmark results go: bench/results/<kind>-<timestamp>.{json,md} and one named section of
docs/benchmarks.md (other sections are kept as they are)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
TITLE = "# Benchmarks\n\nWritten by the scripts in `bench/` (do not edit by hand).\n"


def save(kind: str, started: datetime, payload: dict[str, Any], header: str, table: str) -> Path:
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = f"{started:%Y%m%dT%H%M%S}"
    (out / f"{kind}-{stamp}.json").write_text(json.dumps(payload, indent=1))
    md = out / f"{kind}-{stamp}.md"
    md.write_text(header + "\n\n" + table + "\n")
    return md


def update_docs(section: str, body: str) -> None:
    """Replace (or append) the ``## <section>`` part of docs/benchmarks.md."""
    text = DOCS.read_text() if DOCS.exists() else TITLE
    parts = re.split(r"(?m)^(?=## )", text)
    head, sections = parts[0], {p.splitlines()[0][3:].strip(): p for p in parts[1:]}
    sections[section] = f"## {section}\n\n{body.strip()}\n\n"
    body_text = "".join(p.rstrip("\n") + "\n\n" for p in sections.values())  # a blank line before each heading
    DOCS.write_text(head.rstrip("\n") + "\n\n" + body_text.rstrip("\n") + "\n")


def markdown_table(rows: list[dict[str, Any]], cols: list[str], first: str = "system") -> str:
    return "\n".join(
        ["| " + first + " | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
        + [f"| {r[first]} | " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    )


def publish(
    kind: str, section: str, started: datetime, payload: dict[str, Any], header: str, table: str, docs: bool = True
) -> None:
    """Print the table, save the result files and (unless ``docs`` is False) the docs section."""
    print(table)
    save(kind, started, payload, header, table)
    if docs:
        update_docs(section, f"Written by `python -m bench.{kind}`.\n\n" + header + "\n\n" + table)
