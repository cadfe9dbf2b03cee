"""Per-key request rate: a token bucket for each API key, in this server process.

Each key may make ``per_minute`` requests a minute, in bursts of up to that many; past that it gets
429 RESOURCE_EXHAUSTED with ``Retry-After`` (whole seconds until a request fits again). Anonymous
callers (a loopback server without keys) are not limited: they are the machine's own user. With
several API server processes each keeps its own buckets, so the effective limit is per process.
"""

from __future__ import annotations

import math
import threading
import time

from automill.core.errors import ResourceExhausted

#: Keys remembered at most; the least recently seen are forgotten (they start again with a full bucket).
MAX_KEYS = 10_000


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> None:
        """Spend one request of ``key``'s allowance, or raise ResourceExhausted with ``retry_after``."""
        if self.capacity <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                busy = ResourceExhausted(
                    f"API key {key!r} made more than {int(self.capacity)} requests a minute; "
                    "retry later (the server's max_requests_per_minute)"
                )
                busy.retry_after = max(1, math.ceil((1 - tokens) / self.rate))
                raise busy
            self._buckets[key] = (tokens - 1, now)  # re-inserted last: dicts keep insertion order
            if len(self._buckets) > MAX_KEYS:
                self._buckets.pop(next(iter(self._buckets)))
