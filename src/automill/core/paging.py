"""Opaque page tokens: the position after the last item returned."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from typing import TypeVar

from automill.core.errors import InvalidArgument

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: Tokens this server issues are under 100 characters plus the list's scope (parent and filter).
MAX_TOKEN_CHARS = 8192


def page_size(requested: int | None) -> int:
    if requested is None or requested <= 0:
        return DEFAULT_PAGE_SIZE
    return min(int(requested), MAX_PAGE_SIZE)


def encode_token(after: int, scope: str) -> str:
    raw = json.dumps({"a": after, "s": scope}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, scope: str) -> int:
    """-> the sequence number to start after (0 for the first page)."""
    if not token:
        return 0
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument("page_token is not a token this server issued", field="page_token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after, tok_scope = data["a"], str(data["s"])
        if type(after) is not int or not 0 <= after < 2**62:
            raise ValueError(after)
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        raise InvalidArgument("page_token is not a token this server issued", field="page_token") from None
    if tok_scope != scope:
        raise InvalidArgument(
            "page_token belongs to a different list call (parent or filter changed)", field="page_token"
        )
    return after


def paginate(
    rows: Iterable[T],
    *,
    keep: Callable[[T], bool],
    render: Callable[[T], R],
    seq: Callable[[T], int],
    size: int,
    scope: str,
) -> tuple[list[R], str]:
    """One page of ``rows`` (already ordered by ``seq`` and starting after the token's position):
    the kept items, and the token of the next page ('' on the last page)."""
    out: list[R] = []
    last: int | None = None
    for row in rows:
        if not keep(row):
            continue
        if len(out) == size:
            return out, encode_token(last if last is not None else seq(row) - 1, scope)
        out.append(render(row))
        last = seq(row)
    return out, ""
