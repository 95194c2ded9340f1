"""How the services open Redis: every command answered within `timeout` or failed, so a stalled
Redis costs a bounded wait, never forever."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def redis_client(url: str, *, timeout: float, retries: int) -> Redis:
    """A client of `url`; `retries`: how often a command is tried again on a new connection
    (0 where a silent reconnect would hide a loss, as on a pub/sub connection)."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), retries),
    )
