"""Durations a person types (``30d``, ``12h``, ``90m``, ``45s``, ``2w``) and points in time (``1h`` ago or ISO 8601)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from automill.core.errors import InvalidArgument

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d{1,7})([smhdw])$")


def parse_duration(text: str, *, field: str = "duration") -> timedelta:
    """``30d`` -> 30 days; the units are s, m, h, d and w."""
    m = _DURATION.match(text.strip().lower())
    if not m or int(m.group(1)) <= 0:
        raise InvalidArgument(
            f"{field} {text[:40]!r} must be a positive number and a unit: 45s, 90m, 12h, 30d or 2w", field=field
        )
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_time(text: str, *, field: str = "time") -> datetime:
    """An ISO 8601 date or time (naive = UTC) -> naive UTC."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise InvalidArgument(
            f"{field} {text[:40]!r} is neither a duration (1h, 30d) nor an ISO time "
            "(2026-12-01 or 2026-12-01T10:00:00Z)",
            field=field,
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def ago_or_time(text: str, now: datetime, *, field: str = "since") -> datetime:
    """``1h`` -> an hour before ``now``; an ISO time -> that time (naive UTC)."""
    if _DURATION.match(text.strip().lower()):
        return now - parse_duration(text, field=field)
    return parse_time(text, field=field)


def later_or_time(text: str, now: datetime, *, field: str = "expires") -> datetime:
    """``30d`` -> 30 days after ``now``; an ISO time -> that time (naive UTC)."""
    if _DURATION.match(text.strip().lower()):
        return now + parse_duration(text, field=field)
    return parse_time(text, field=field)
