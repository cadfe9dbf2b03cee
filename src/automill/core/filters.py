"""The small filter grammar of the AutoML list calls.

    filter  := term (("AND" | " ") term)*
    term    := ["NOT" | "-"] field ":*"            existence
             | field ("=" | "!=") value            equality
             | "regex(" field "," "\"re\"" ")"    RE2 search
    value   := "quoted" | bare

Examples: ``image_classification_dataset_metadata:*``, ``NOT annotation_spec_id:*``,
``dataset_id=5``, ``display_name!="a b"``, ``regex(display_name, "^A")``, ``done=true``.
A filter wrapped in quotes (``"done=true"``, as Google's docs show it) is accepted.

``regex(...)`` patterns use RE2 syntax, as Google's API documents it (no lookaround, no
backreferences), and run on the linear-time RE2 engine (the ``google-re2`` package: the one
third-party import core/ allows, because Python's backtracking ``re`` lets a pattern such as
``^(a+)+$`` stall the server). A filter is at most :data:`MAX_FILTER_CHARS` characters, a
pattern at most :data:`MAX_REGEX_CHARS`, its compiled program at most :data:`REGEX_MAX_MEM`
bytes and a counted repetition at most ``{1000}``; anything else is INVALID_ARGUMENT on ``filter``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import re2

from automill.core.errors import InvalidArgument

MAX_FILTER_CHARS = 4_000
MAX_REGEX_CHARS = 1_000
MAX_REPEAT = 1_000  # RE2's own limit; checked here too because RE2 reads an overflowing count as literal text
REGEX_MAX_MEM = 1 << 20

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = REGEX_MAX_MEM
_RE2_OPTIONS.log_errors = False
_COUNT = re.compile(r"\{(\d+)(?:,(\d*))?\}")

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
    pattern: Any = dc_field(default=None, compare=False, repr=False)  # the compiled RE2 program of a regex term


def compile_regex(pattern: str) -> Any:
    """A filter's ``regex(field, "...")`` pattern -> a compiled RE2 program, or InvalidArgument on ``filter``."""
    if len(pattern) > MAX_REGEX_CHARS:
        raise InvalidArgument(
            f"the regular expression in the filter is {len(pattern)} characters, over the limit of {MAX_REGEX_CHARS}",
            field="filter",
        )
    _check_counts(pattern)
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise InvalidArgument(f"bad regular expression in filter (RE2 syntax): {detail}", field="filter") from None


def _check_counts(pattern: str) -> None:
    """Refuse ``x{n}`` / ``x{n,m}`` with n or m over MAX_REPEAT (outside classes and escapes)."""
    i, in_class, n = 0, False, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern.startswith("\\Q", i):  # \Q...\E is literal text
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
            else:
                i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):  # [[:alpha:]]
                end = pattern.find(":]", i + 2)
                i = n if end < 0 else end + 2
                continue
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):  # a leading ']' is a literal
                i += 1
            continue
        elif c == "{" and (m := _COUNT.match(pattern, i)):
            for count in m.groups():
                if count and (len(count) > 6 or int(count) > MAX_REPEAT):
                    raise InvalidArgument(
                        f"the regular expression in the filter repeats {m.group(0)} times: at most "
                        f"{MAX_REPEAT} repetitions",
                        field="filter",
                    )
            i = m.end()
            continue
        i += 1


def parse_filter(text: str | None, allowed: set[str]) -> list[Term]:
    text = (text or "").strip()
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidArgument(f"filter is {len(text)} characters, over the limit of {MAX_FILTER_CHARS}", field="filter")
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
            term = Term("regex", m.group("rfield"), m.group("re"), pattern=compile_regex(m.group("re")))
        else:
            value = m.group("qval") if m.group("qval") is not None else m.group("val")
            term = Term("eq" if m.group("op") == "=" else "ne", m.group("field"), value)
        if term.field not in allowed:
            raise InvalidArgument(
                f"filter field {term.field!r} is not supported here; use one of {sorted(allowed)}", field="filter"
            )
        terms.append(term)
    return terms


def matches(terms: list[Term], record: Mapping[str, object], exists: Callable[[str], bool] | None = None) -> bool:
    """``record`` maps field -> value ('' or None = absent)."""
    for t in terms:
        value = record.get(t.field)
        present = exists(t.field) if exists else value not in (None, "")
        if t.kind == "exists":
            ok = present != t.negate
        elif t.kind == "regex":
            pattern = t.pattern if t.pattern is not None else compile_regex(t.value)
            ok = pattern.search(str(value or "")) is not None
        else:
            equal = _norm(value) == _norm(t.value)
            ok = equal if t.kind == "eq" else not equal
        if not ok:
            return False
    return True


def _norm(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return (
        str(value if value is not None else "").lower()
        if str(value).lower() in ("true", "false")
        else str(value if value is not None else "")
    )
