"""Opaque page tokens: the position after the last item returned."""

from __future__ import annotations

import base64
import json

from automill.core.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


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
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after, tok_scope = int(data["a"]), str(data["s"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("page_token is not a token this server issued", field="page_token") from None
    if tok_scope != scope:
        raise InvalidArgument("page_token belongs to a different list call (parent or filter changed)",
                              field="page_token")
    return after
