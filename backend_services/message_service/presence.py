"""Presence on one instance: what its sockets report, shared through the registry, told to the
people who share a conversation with the person.

A socket counts as there (not away) from its `resume` until it says `presence {away: true}` or
closes. The instance's status of a user is the best of their sockets here; their status is the
best any live instance records (`core/presence`). A change goes out as a `presence` frame on
the channels of the person's direct conversations and small groups (up to 50 members), so only
those members hear of it, through the topics the hub keeps anyway; in a big group every change
would go to everyone, and its member list asks instead. After `resume` a socket gets one frame
with everyone it shares a direct conversation or a small group with.

Sockets never wait on any of it: a change marks its user, and one task (started by the app's
lifespan) tells the registry and the members, a batch at a time (one registry write per user
changed, one status read for the batch, one publish per small conversation of theirs), and
Redis being down costs a warning. The
task also renews this instance's record every `beat` seconds and reaps the records of
instances that died without a word: their users are told offline within `ttl` plus a beat.

MongoDB keeps one thing: when someone was last seen, written as they go offline, to the minute.
Someone who appears offline (a setting) is left out of this instance's record, so they are
offline to everyone however many tabs they have open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pymongo.errors import PyMongoError

from backend_services.core.broker import BrokerDisconnected
from backend_services.core.errors import ServiceUnavailable
from backend_services.core.presence import PresenceRegistry, PresenceUnavailable, Status, best
from backend_services.core.schemas import Presence, PresenceSetting
from backend_services.core.store import Store
from backend_services.message_service import frames
from backend_services.message_service.connection import Connection
from backend_services.message_service.hub import Hub

logger = logging.getLogger("letschat.presence")

# An instance killed with SIGKILL: its users count as offline this long after its last beat
# (two missed beats), and are told so at the next beat anywhere: within ~65 s of the kill.
PRESENCE_TTL_SECONDS = 45.0
BEAT_SECONDS = 20.0
# After `resume`, a socket is told about the members of groups up to this size (and everyone it
# shares a direct conversation with); a bigger group's are a REST call away.
SNAPSHOT_GROUP_LIMIT = 50
# Conversation sizes remembered (to tell small ones from big ones) before starting afresh.
SIZES_KEPT = 100_000
# On shutdown, how long the users of the sockets just closed may take to be told about.
STOP_TELL_SECONDS = 2.0
_FAILURES = (PresenceUnavailable, PyMongoError, BrokerDisconnected, ServiceUnavailable)


class LocalPresence:
    """What this instance's sockets report, per user (pure)."""

    def __init__(self) -> None:
        self._away: dict[str, dict[str, bool]] = {}  # user -> socket -> away
        self.hidden: set[str] = set()  # Users who appear offline.
        self.known: set[str] = set()  # Users whose setting has been read.

    def status(self, user_id: str) -> Status | None:
        """What this instance records for the user (None: nothing, they are offline here)."""
        sockets = self._away.get(user_id)
        if not sockets or user_id in self.hidden or user_id not in self.known:
            return None
        return best(["away" if away else "online" for away in sockets.values()])

    def report(self, user_id: str, socket_id: str, away: bool) -> bool:
        """A socket is there (away or not); whether the user's status here changed."""
        before = self.status(user_id)
        self._away.setdefault(user_id, {})[socket_id] = away
        return self.status(user_id) != before

    def remove(self, user_id: str, socket_id: str) -> bool:
        before = self.status(user_id)
        sockets = self._away.get(user_id)
        if sockets is not None:
            sockets.pop(socket_id, None)
            if not sockets:
                del self._away[user_id]
                self.hidden.discard(user_id)
                self.known.discard(user_id)
        return self.status(user_id) != before

    def has(self, user_id: str) -> bool:
        return user_id in self._away

    def record(self) -> dict[str, Status]:
        statuses = {user_id: self.status(user_id) for user_id in self._away}
        return {user_id: status for user_id, status in statuses.items() if status is not None}


class PresenceService:
    def __init__(
        self,
        registry: PresenceRegistry,
        hub: Hub,
        store: Store,
        *,
        ttl: float = PRESENCE_TTL_SECONDS,
        instance: str | None = None,
    ) -> None:
        self.registry = registry
        self._hub = hub
        self._store = store
        self._ttl = ttl
        self.instance = instance or uuid.uuid4().hex
        self.local = LocalPresence()
        # Users to tell about, with the conversations to tell (those their sockets here followed).
        self._dirty: dict[str, set[str]] = {}
        # Sockets to tell whether people are there: in the conversations named (None: all).
        self._snapshots: list[tuple[Connection, list[str] | None]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # The registry's record of this instance: one writer.
        self._task: asyncio.Task[None] | None = None
        # Users who appeared offline as their last socket here closed (told without a time).
        self._left_hidden: set[str] = set()
        # Conversation id -> how many members it had when last looked up.
        self._sizes: dict[str, int] = {}

    # --- lifecycle (the app's lifespan) ---------------------------------------------------------

    async def start(self) -> None:
        await self.registry.connect()
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="presence")

    async def stop(self) -> None:
        """Tell what the sockets closed on shutdown changed (briefly), then leave the registry."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
        dirty, self._dirty = self._dirty, {}
        with contextlib.suppress(*_FAILURES, TimeoutError):
            async with asyncio.timeout(STOP_TELL_SECONDS):
                await self._tell(dirty)
        with contextlib.suppress(*_FAILURES):
            await self.registry.leave(self.instance)
        await self.registry.disconnect()

    async def beat(self) -> None:
        """Renew this instance's record; tell the contacts of users on dead instances."""
        try:
            await self._beat()
        except _FAILURES as exc:
            logger.warning("presence beat failed (%r); trying again in the next", exc)

    async def _beat(self) -> None:
        async with self._lock:
            record = self.local.record()
            revived = await self.registry.beat(self.instance, record, self._ttl)
        if revived and record:
            # Reaped while it could not beat (Redis away, a long pause): its users were told
            # they went offline; they are told again that they are here.
            logger.info("this instance's presence was reaped; telling %d users again", len(record))
            await self._mark_everywhere(record)
        reaped = await self.registry.reap()
        if reaped:
            logger.info("%d users were on an instance that stopped answering", len(reaped))
            await self._mark_everywhere(reaped)

    async def _mark_everywhere(self, user_ids: Iterable[str]) -> None:
        """Tell about these users in all their conversations (no socket here says which)."""
        users = list(user_ids)
        places = await self._store.conversations.ids_of_members(users)
        for user_id in users:
            self._mark(user_id, places.get(user_id, ()))

    # --- what sockets report (never waits) --------------------------------------------------------

    def joined(self, connection: Connection) -> None:
        """The socket resumed: it is there, and gets the statuses of the people it knows."""
        user_id = connection.user_id
        changed = self.local.report(user_id, connection.id, away=False)
        if changed or user_id not in self.local.known:  # Unknown: its setting is read first.
            self._mark(user_id, connection.streams)
        self._snapshots.append((connection, None))
        self._wake.set()

    def followed(self, connection: Connection, conversation_id: str) -> None:
        """A resumed socket started following a conversation (its user was added, or joined):
        it learns whether that conversation's members are there."""
        self._snapshots.append((connection, [conversation_id]))
        self._wake.set()

    def reported(self, connection: Connection, away: bool) -> None:
        if not connection.resumed:
            return  # Counted from its resume on.
        if self.local.report(connection.user_id, connection.id, away):
            self._mark(connection.user_id, connection.streams)

    def left(self, connection: Connection, conversation_ids: Iterable[str]) -> None:
        """The socket closed (`conversation_ids`: what it followed)."""
        if connection.user_id in self.local.hidden:
            self._left_hidden.add(connection.user_id)  # Still unseen as they go.
        if self.local.remove(connection.user_id, connection.id):
            self._mark(connection.user_id, conversation_ids)

    def setting_changed(
        self, user_id: str, appear_offline: bool, conversation_ids: Iterable[str]
    ) -> None:
        if not self.local.has(user_id):
            return
        if appear_offline:
            self.local.hidden.add(user_id)
        else:
            self.local.hidden.discard(user_id)
        self._mark(user_id, conversation_ids)

    def _mark(self, user_id: str, conversation_ids: Iterable[str]) -> None:
        self._dirty.setdefault(user_id, set()).update(conversation_ids)
        self._wake.set()

    # --- telling ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, {}
            snapshots, self._snapshots = self._snapshots, []
            try:
                if dirty:
                    await self._tell(dirty)
                for connection, conversation_ids in snapshots:
                    if connection.closing is None:
                        await self._snapshot(connection, conversation_ids)
            except _FAILURES as exc:
                logger.warning("presence not told (%r); it catches up at the next change", exc)
            except Exception:
                logger.exception("presence not told")

    async def _tell(self, dirty: dict[str, set[str]]) -> None:
        users = list(dirty)
        unknown = [u for u in users if self.local.has(u) and u not in self.local.known]
        if unknown:
            appearing = await self._store.users.appearing_offline(unknown)
            self.local.hidden.update(appearing)
            self.local.known.update(u for u in unknown if self.local.has(u))
        async with self._lock:
            for user_id in users:
                await self.registry.update(self.instance, user_id, self.local.status(user_id))
        statuses = await self.registry.statuses(users)
        offline = [u for u in users if u not in statuses]
        # Someone who appears offline was not seen: their contacts keep the time they last
        # were, or a new tab of theirs would move it for everyone to see.
        unseen = self.local.hidden | self._left_hidden
        self._left_hidden.clear()
        hidden = [u for u in offline if u in unseen]
        gone = [u for u in offline if u not in unseen]
        seen_at = _to_the_minute(datetime.now(UTC))
        if gone:
            await self._store.users.mark_seen(gone, seen_at)
        seen = dict.fromkeys(gone, seen_at)
        if hidden:
            seen |= await self._store.users.last_seen(hidden)
        small = await self._small({c for ids in dirty.values() for c in ids})
        for user_id, conversation_ids in dirty.items():
            status = statuses.get(user_id)
            entry = (
                Presence(user_id=user_id, status=status)
                if status is not None
                else Presence(user_id=user_id, status="offline", last_seen_at=seen.get(user_id))
            )
            await self._hub.publish_presence([entry], small.intersection(conversation_ids))

    async def _small(self, conversation_ids: set[str]) -> set[str]:
        """Those of these conversations whose members are told of each other's comings and
        goings: direct ones and groups of up to SNAPSHOT_GROUP_LIMIT members. In a bigger
        group every change would go to every member (a thousand members reconnecting after a
        restart: a million notices); its member list asks when it is opened instead."""
        unknown = [c for c in conversation_ids if c not in self._sizes]
        if unknown:
            members = await self._store.conversations.members_of(unknown)
            self._note_sizes(members)
        return {c for c in conversation_ids if self._sizes.get(c, 0) <= SNAPSHOT_GROUP_LIMIT}

    def _note_sizes(self, members: dict[str, set[str]]) -> None:
        if len(self._sizes) > SIZES_KEPT:
            self._sizes.clear()  # Asked again as needed; groups grow, conversations go.
        self._sizes.update((cid, len(ids)) for cid, ids in members.items())

    async def _snapshot(self, connection: Connection, conversation_ids: list[str] | None) -> None:
        followed = list(connection.streams) if conversation_ids is None else conversation_ids
        # A group known to be big is not asked for: its members are not in a snapshot, and
        # reading a thousand members for every socket of a restart is what makes one costly.
        asked = [c for c in followed if self._sizes.get(c, 0) <= SNAPSHOT_GROUP_LIMIT]
        members = await self._store.conversations.members_of(asked) if asked else {}
        self._note_sizes(members)
        people = {
            user_id
            for ids in members.values()
            if len(ids) <= SNAPSHOT_GROUP_LIMIT
            for user_id in ids
        }
        people.discard(connection.user_id)
        if people:
            connection.push(frames.presence(await self.presence_of(sorted(people))))

    async def presence_of(self, user_ids: Sequence[str]) -> list[Presence]:
        """Each of these users' presence now."""
        statuses = await self.registry.statuses(user_ids)
        offline = [u for u in user_ids if u not in statuses]
        seen = await self._store.users.last_seen(offline) if offline else {}
        return [
            Presence(user_id=u, status=statuses[u])
            if u in statuses
            else Presence(user_id=u, status="offline", last_seen_at=seen.get(u))
            for u in user_ids
        ]

    async def setting(self, user_id: str) -> PresenceSetting:
        return PresenceSetting(appear_offline=await self._store.users.appears_offline(user_id))

    async def set_setting(self, user_id: str, appear_offline: bool) -> PresenceSetting:
        """Store the setting, and tell every instance that holds the user's sockets."""
        await self._store.users.set_appears_offline(user_id, appear_offline)
        await self._hub.publish_presence_setting(user_id, appear_offline)
        return PresenceSetting(appear_offline=appear_offline)


def _to_the_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)
