"""The small filter grammar of the AutoML list calls.

    filter  := term (("AND" | " ") term)*
    term    := ["NOT" | "-"] field ":*"            existence
             | field ("=" | "!=") value            equality
             | "regex(" field "," "\"re\"" ")"    RE2-ish (Python re) search
    value   := "quoted" | bare

Examples: ``image_classification_dataset_metadata:*``, ``NOT annotation_spec_id:*``,
``dataset_id=5``, ``display_name!="a b"``, ``regex(display_name, "^A")``, ``done=true``.
A filter wrapped in quotes (``"done=true"``, as Google's docs show it) is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from automill.core.errors import InvalidArgument

_TERM = re.compile(
    r"""\s*(?:
        (?P<neg>NOT\s+|-)?(?P<efield>[A-Za-z_][\w.]*)\s*:\s*\*
      | regex\(\s*(?P<rfield>[A-Za-z_][\w.]*)\s*,\s*"(?P<re>(?:[^"\\]|\\.)*)"\s*\)
      | (?P<field>[A-Za-z_][\w.]*)\s*(?P<op>!=|=)\s*(?:"(?P<qval>(?:[^"\\]|\\.)*)"|(?P<val>[^\s"]+))
    )\s*(?:AND\b)?""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Term:
    kind: str  # "exists" | "eq" | "ne" | "regex"
    field: str
    value: str = ""
    negate: bool = False


def parse_filter(text: str | None, allowed: set[str]) -> list[Term]:
    text = (text or "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    terms: list[Term] = []
    pos = 0
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidArgument(f"cannot parse filter {text!r} at position {pos}", field="filter")
        pos = m.end()
        if m.group("efield"):
            term = Term("exists", m.group("efield"), negate=bool(m.group("neg")))
        elif m.group("rfield"):
            try:
                re.compile(m.group("re"))
            except re.error as exc:
                raise InvalidArgument(f"bad regular expression in filter: {exc}", field="filter") from None
            term = Term("regex", m.group("rfield"), m.group("re"))
        else:
            value = m.group("qval") if m.group("qval") is not None else m.group("val")
            term = Term("eq" if m.group("op") == "=" else "ne", m.group("field"), value)
        if term.field not in allowed:
            raise InvalidArgument(
                f"filter field {term.field!r} is not supported here; use one of {sorted(allowed)}", field="filter")
        terms.append(term)
    return terms


def matches(terms: list[Term], record: Mapping[str, object],
            exists: Callable[[str], bool] | None = None) -> bool:
    """``record`` maps field -> value ('' or None = absent)."""
    for t in terms:
        value = record.get(t.field)
        present = exists(t.field) if exists else value not in (None, "")
        if t.kind == "exists":
            ok = present != t.negate
        elif t.kind == "regex":
            ok = re.search(t.value, str(value or "")) is not None
        else:
            equal = _norm(value) == _norm(t.value)
            ok = equal if t.kind == "eq" else not equal
        if not ok:
            return False
    return True


def _norm(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value if value is not None else "").lower() if str(value).lower() in ("true", "false") else str(
        value if value is not None else "")
