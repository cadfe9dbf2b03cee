"""The web console's session: an API key kept in a cookie, and the CSRF token that goes with it.

A person signs in to the console with an API key (``POST /ui/session``); the server checks it and
sets it as the ``automill_session`` cookie: HttpOnly (page scripts never see it), SameSite=Strict
(a browser does not send it on a request started by another site) and Secure when the sign-in
came over TLS (directly or through a proxy that says ``X-Forwarded-Proto: https``). The API then
reads the key from that cookie when a request carries neither ``x-goog-api-key`` nor
``Authorization``, so the console acts with exactly the key's project and role.

Requests that change something and authenticate by the cookie must also send ``X-CSRF-Token``:
HMAC-SHA256 of the cookie's value (a keyed digest nobody can compute without the key, which the
page's script gets from ``GET /ui/session``, never from the cookie). The request guard checks it
before any route runs (api.guard), so the upload endpoint and every API route are covered alike.
Together with SameSite=Strict and the guard's Origin check this is three locks on one door.

Nothing here is stored on the server: a session is valid exactly as long as its key is.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie

#: The cookie that holds the signed-in key.
COOKIE = "automill_session"
#: The header a console request that changes something sends the CSRF token in.
CSRF_HEADER = "x-csrf-token"
#: How long a browser keeps the session cookie (12 hours), at most as long as the key lives.
MAX_AGE_SECONDS = 12 * 3600
_CSRF_CONTEXT = b"automill console csrf v1"


def cookie_value(headers: Mapping[str, str]) -> str | None:
    """The session cookie of a request (lower-cased header names), or None."""
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def csrf_token(session: str) -> str:
    """The CSRF token that belongs to a session cookie's value."""
    return hmac.new(session.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_ok(headers: Mapping[str, str]) -> bool:
    """Whether a mutating request may go on: it sends a key in a header (no cookie is used), or
    carries no session cookie, or carries the cookie and its CSRF token."""
    if "x-goog-api-key" in headers or "authorization" in headers:
        return True
    session = cookie_value(headers)
    if session is None:
        return True
    sent = headers.get(CSRF_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent.encode(), csrf_token(session).encode())


def over_tls(scheme: str, headers: Mapping[str, str]) -> bool:
    """The request came over TLS: to this server, or to a proxy in front of it."""
    forwarded = headers.get("x-forwarded-proto", "").split(",", 1)[0].strip().lower()
    return scheme == "https" or forwarded == "https"


def set_cookie_header(key: str, *, secure: bool, path: str = "/") -> str:
    """The ``Set-Cookie`` value that signs a browser in."""
    parts = [f"{COOKIE}={key}", f"Path={path}", f"Max-Age={MAX_AGE_SECONDS}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie_header(*, secure: bool, path: str = "/") -> str:
    parts = [f"{COOKIE}=", f"Path={path}", "Max-Age=0", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
