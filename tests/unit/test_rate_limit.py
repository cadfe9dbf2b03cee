"""The per-key token bucket of api.limits."""

from __future__ import annotations

import pytest

from automill.api.limits import RateLimiter
from automill.core.errors import ResourceExhausted


def test_burst_then_refill() -> None:
    limiter = RateLimiter(per_minute=60)  # one a second, bursts of 60
    for _ in range(60):
        limiter.take("k", now=100.0)
    with pytest.raises(ResourceExhausted) as exc:
        limiter.take("k", now=100.0)
    assert exc.value.retry_after == 1  # type: ignore[attr-defined]
    limiter.take("other", now=100.0)  # each key has its own bucket
    limiter.take("k", now=101.0)  # a second later one request fits again
    with pytest.raises(ResourceExhausted):
        limiter.take("k", now=101.1)


def test_zero_is_unlimited() -> None:
    limiter = RateLimiter(per_minute=0)
    for _ in range(10_000):
        limiter.take("k", now=0.0)
