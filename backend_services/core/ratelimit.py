"""Token buckets: one for a single client (a socket's frame budget), or one per key (send and
refresh limits within one instance)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """Allows bursts of `burst` and a sustained `rate_per_second`."""

    __slots__ = ("_burst", "_rate", "tokens", "updated")

    def __init__(self, *, burst: float, rate_per_second: float, now: float) -> None:
        self._burst = float(burst)
        self._rate = rate_per_second
        self.tokens = self._burst
        self.updated = now

    def try_take(self, now: float) -> float:
        """Take a token: 0.0 if allowed, else the seconds until one is available."""
        self.tokens = min(self._burst, self.tokens + (now - self.updated) * self._rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self._rate


class RateLimiter:
    """A `TokenBucket` per key."""

    # Idle buckets are full again after burst/rate seconds; forget them then to bound memory.
    def __init__(
        self, *, burst: int, rate_per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = burst
        self._rate = rate_per_second
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def try_acquire(self, key: str) -> float:
        """Take a token for `key`: 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 10_000:
                self._forget_full(now)
            bucket = self._buckets[key] = TokenBucket(
                burst=self._burst, rate_per_second=self._rate, now=now
            )
        return bucket.try_take(now)

    def _forget_full(self, now: float) -> None:
        refill = self._burst / self._rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < refill}
