"""The per-user token bucket."""

from __future__ import annotations

from backend_services.core.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_rate_applies() -> None:
    clock = Clock()
    limiter = RateLimiter(burst=3, rate_per_second=2.0, clock=clock)
    assert [limiter.try_acquire("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("u") == 0.5
    clock.now += 0.5
    assert limiter.try_acquire("u") == 0.0
    assert limiter.try_acquire("u") > 0


def test_users_have_their_own_buckets() -> None:
    limiter = RateLimiter(burst=1, rate_per_second=1.0, clock=Clock())
    assert limiter.try_acquire("a") == 0.0
    assert limiter.try_acquire("b") == 0.0
    assert limiter.try_acquire("a") > 0
