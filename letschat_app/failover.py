"""A tab keeps its state when the Reflex backend replica it was on dies.

Replicas share the tabs' state in Redis (REFLEX_REDIS_URL). Reflex 0.10 records in Redis which
replica holds each tab's socket (`RedisTokenManager`), for an hour, so that a second tab
opened with a copy of the first one's token (a duplicated tab) gets a token of its own. A
replica that stops cleanly deletes its records; one that is killed (SIGKILL, a lost host, the
OOM killer) cannot, and every tab it held then reconnects to another replica, is taken for a
duplicate and starts with a new, empty state: the open conversation, what it had read and
sent, gone (seen in scripts/container-test's replica loss).

Here each replica writes a heartbeat (Redis's own time, so replicas' clocks need not agree) to
an "alive" key every second while its token
manager runs (the beat is the manager's: started with its first socket, stopped by its
`close`, which also deletes the key). A token whose record names a replica whose heartbeat is
older than `STALE_SECONDS`, or missing, is a reconnection, not a duplicate: the record is
dropped (only if it is still that record) and Reflex links the token and its state to the new
socket. A tab reconnects within a second or two of its replica's death, before its last beat is
stale, so a recent beat is waited on until it would be; that wait happens only for tokens
recorded elsewhere (a replica's death, or a duplicated tab). A duplicate of a tab whose
replica still beats gets its own token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
from typing import Any

from reflex.utils.token_manager import RedisTokenManager, SocketRecord

logger = logging.getLogger(__name__)

ALIVE_PREFIX = "letschat_reflex_instance_alive_"
# A replica beats this often; its key outlives it by the second figure.
ALIVE_EVERY_SECONDS = 1.0
ALIVE_TTL_SECONDS = 30
# A heartbeat this old means its replica is gone: a few beats, so that a replica busy for a
# moment is not taken for dead.
STALE_SECONDS = 3.5
# Delete a token's record only if it is still the one that was judged (another replica may
# have linked the token meanwhile).
_DELETE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_original_link = RedisTokenManager.link_token_to_sid
_original_close = RedisTokenManager.close


def alive_key(instance_id: str) -> str:
    return f"{ALIVE_PREFIX}{instance_id}"


async def _redis_now(manager: RedisTokenManager) -> float:
    """Redis's clock: one clock for every replica's beats and every judgement of them."""
    seconds, microseconds = await manager.redis.time()  # type: ignore[misc]
    return float(seconds) + float(microseconds) / 1e6


async def _beat(manager: RedisTokenManager) -> None:
    while True:
        try:
            beat = str(await _redis_now(manager)).encode()
            await manager.redis.set(alive_key(manager.instance_id), beat, ex=ALIVE_TTL_SECONDS)
        except Exception as exc:  # Redis away: Reflex itself cannot serve meanwhile.
            logger.warning("could not renew this replica's heartbeat: %r", exc)
        await asyncio.sleep(ALIVE_EVERY_SECONDS)


def _ensure_beating(manager: RedisTokenManager) -> None:
    task: asyncio.Task[None] | None = getattr(manager, "_letschat_beat", None)
    if task is None or task.done():
        manager._letschat_beat = asyncio.create_task(_beat(manager))  # type: ignore[attr-defined]


async def _beat_age(manager: RedisTokenManager, instance_id: str) -> float | None:
    raw = await manager.redis.get(alive_key(instance_id))
    if raw is None:
        return None
    try:
        beat = float(raw)
    except ValueError:
        return None
    return await _redis_now(manager) - beat


async def _gone(manager: RedisTokenManager, instance_id: str) -> bool:
    """Whether the replica `instance_id` has stopped beating (waiting, at most until its last
    beat would be stale, for one more)."""
    age = await _beat_age(manager, instance_id)
    if age is None or age >= STALE_SECONDS:
        return True
    await asyncio.sleep(STALE_SECONDS - age)
    age = await _beat_age(manager, instance_id)
    return age is None or age >= STALE_SECONDS


async def _forget_if_orphaned(manager: RedisTokenManager, token: str) -> None:
    """Drop `token`'s socket record if the replica it names is gone."""
    key = manager._get_redis_key(token)
    raw = await manager.redis.get(key)
    if raw is None:
        return
    try:
        record = pickle.loads(raw)  # noqa: S301 - Reflex's own record (as it writes it), ours
    except Exception:  # A record of another Reflex version: leave it to Reflex.
        return
    if not isinstance(record, SocketRecord) or record.instance_id == manager.instance_id:
        return
    if not await _gone(manager, record.instance_id):
        return  # Its replica runs: this really is a second tab with the same token.
    deleted: Any = await manager.redis.eval(_DELETE_IF_SAME, 1, key, raw)  # type: ignore[misc]
    if deleted:
        logger.info("a tab of a replica that is gone reconnected here, with its state")


async def link_token_to_sid(self: RedisTokenManager, token: str, sid: str) -> str | None:
    """`RedisTokenManager.link_token_to_sid`, after dropping a record of a dead replica."""
    _ensure_beating(self)
    with contextlib.suppress(Exception):  # Redis trouble: Reflex's own handling decides.
        await _forget_if_orphaned(self, token)
    return await _original_link(self, token, sid)


async def close(self: RedisTokenManager) -> None:
    """`RedisTokenManager.close`, after stopping the heartbeat (and saying so at once)."""
    task: asyncio.Task[None] | None = getattr(self, "_letschat_beat", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await self.redis.delete(alive_key(self.instance_id))
    await _original_close(self)


def install() -> None:
    """Make Reflex's Redis token manager tell a reconnection from a duplicated tab."""
    manager: Any = RedisTokenManager
    manager.link_token_to_sid = link_token_to_sid
    manager.close = close
