"""Fan-out on one message-service instance.

The hub subscribes to exactly what its sockets need: one broker channel per connected user and one
per conversation those users belong to. Messages arrive on conversation channels already serialised;
the hub checks their seq against what it delivered before (a gap is filled from the store, in
order), then hands the same text to every local socket's bounded queue without awaiting any socket.

Four things repair what pub/sub cannot promise: a socket catches up from the store whenever its
cursor is behind what it is offered; a lost broker connection is re-established with backoff and
every topic is backfilled from the store; a periodic sweep compares each topic with the store,
catching a message whose publish was lost while nothing came after it; and a periodic recheck
of membership stops a socket following a conversation its user left, if that `left` was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import PyMongoError

from backend_services.core.broker import Broker, BrokerDisconnected, Event
from backend_services.core.errors import CloseCode, ServiceUnavailable
from backend_services.core.schemas import Conversation, Cursor, Message, User
from backend_services.core.store import Store
from backend_services.message_service import frames
from backend_services.message_service.connection import Connection
from backend_services.message_service.reads import Echo

logger = logging.getLogger("letschat.hub")

# python-socketio's reconnection schedule: 1 s, doubling, at most 60 s.
RECONNECT_FIRST_DELAY = 1.0
RECONNECT_MAX_DELAY = 60.0
# A topic repair reads this many messages at a time from the store.
REPAIR_BATCH = 500
# A socket that needs more catch-up rounds than this is falling behind faster than it reads.
MAX_CATCH_UP_ROUNDS = 20
# On shutdown, how long sockets get to receive their 1012 close before uvicorn drops them.
DRAIN_SECONDS = 5.0


@dataclass(eq=False, slots=True)
class Topic:
    conversation_id: str
    connections: set[Connection] = field(default_factory=set)
    seq: int | None = None  # The last seq delivered here, in order; None until known.
    reserved: int = 0  # The last seq handed out by `reserve_seq`.
    repairing: bool = False
    held: list[tuple[int, str]] = field(default_factory=list)


@contextlib.contextmanager
def _reconnect_on_failure(connection: Connection) -> Iterator[None]:
    """Close the socket (1013) if the catch-up inside fails: left unfinished, it would keep its
    conversation's live frames held, and the socket silent there, until the socket reconnected."""
    try:
        yield
    except Exception:
        connection.close(CloseCode.TRY_AGAIN_LATER, "could not catch up; reconnect and resume")
        raise


class Hub:
    def __init__(
        self,
        broker: Broker,
        store: Store,
        *,
        channel_prefix: str,
        resume_limit: int,
        sweep_seconds: float,
        recheck_seconds: float = 60.0,
    ) -> None:
        self._broker = broker
        self._store = store
        self._prefix = channel_prefix
        self._resume_limit = resume_limit
        self._sweep_seconds = sweep_seconds
        self._recheck_seconds = recheck_seconds
        self._follows = itertools.count(1)
        self._topics: dict[str, Topic] = {}
        self._users: dict[str, set[Connection]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._no_connections = asyncio.Event()
        self.broker_connected = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._broker.connect()
        self.broker_connected = True
        self._spawn(self._listen())
        self._spawn(self._every(self._sweep_seconds, self.sweep, "sweep"))
        self._spawn(self._every(self._recheck_seconds, self.recheck_membership, "recheck"))

    async def stop(self) -> None:
        """Close every socket with 1012 (clients resume on another instance), then stop tasks."""
        self.close_all(CloseCode.SERVICE_RESTART, "server restarting")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._broker.disconnect()

    async def drain(self) -> None:
        """Close every socket with 1012 and wait (bounded) until their writers have sent it."""
        self.close_all(CloseCode.SERVICE_RESTART, "server restarting; reconnect and resume")
        if self._users:
            self._no_connections.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_SECONDS):
                    await self._no_connections.wait()

    def close_all(self, code: int, reason: str) -> None:
        for connections in self._users.values():
            for connection in connections:
                connection.close(code, reason)

    async def ping(self) -> None:
        if not self.broker_connected:
            raise BrokerDisconnected("listener is reconnecting")
        await self._broker.ping()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub task failed", exc_info=task.exception())

    # --- channels ----------------------------------------------------------------------------

    def _conversation_channel(self, conversation_id: str) -> str:
        return f"{self._prefix}conversation:{conversation_id}"

    def _user_channel(self, user_id: str) -> str:
        return f"{self._prefix}user:{user_id}"

    async def _subscribe(self, channel: str) -> None:
        try:
            await self._broker.subscribe(channel)
        except BrokerDisconnected:
            # The listener is reconnecting and resubscribes everything the hub holds.
            logger.warning("subscribe to %s deferred until the broker is back", channel)

    async def _unsubscribe(self, channel: str) -> None:
        with contextlib.suppress(BrokerDisconnected):
            await self._broker.unsubscribe(channel)

    # --- sockets -----------------------------------------------------------------------------

    async def register(self, connection: Connection) -> None:
        connections = self._users.setdefault(connection.user_id, set())
        connections.add(connection)
        if len(connections) == 1:
            await self._subscribe(self._user_channel(connection.user_id))

    async def unregister(self, connection: Connection) -> None:
        for conversation_id in list(connection.cursors) + list(connection.catching_up):
            await self._detach(connection, conversation_id)
        connections = self._users.get(connection.user_id)
        if connections is None:
            return
        connections.discard(connection)
        if not connections:
            del self._users[connection.user_id]
            if not self._users:
                self._no_connections.set()
            await self._unsubscribe(self._user_channel(connection.user_id))

    async def resume(self, connection: Connection, cursors: Mapping[str, int | Cursor]) -> None:
        """Send everything after `cursors` in every conversation, then `resumed`; then live.
        A cursor into another history than the stored one gets `reset` and starts over.

        A resume the store cannot finish closes the socket (1013): the conversations it had
        started would otherwise hold their live frames for good, and a second `resume` skips
        what the socket already follows. The client reconnects and resumes from its cursors.
        """
        connection.resumed = True
        with _reconnect_on_failure(connection):
            await self._resume(connection, cursors)

    async def _resume(self, connection: Connection, cursors: Mapping[str, int | Cursor]) -> None:
        conversation_ids = await self._store.conversations.ids_for(connection.user_id)
        starting = [cid for cid in conversation_ids if not connection.follows(cid)]
        new = set(starting)
        claimed = {
            cid: (cursor, None) if isinstance(cursor, int) else (cursor.seq, cursor.epoch)
            for cid, cursor in cursors.items()
            if cid in new
        }
        stale = await self._store.conversations.stale_cursors(claimed)
        for conversation_id in starting:
            connection.catching_up[conversation_id] = []
            await self._attach(connection, conversation_id)
        for conversation_id in starting:
            cursor = claimed.get(conversation_id, (0, None))[0]
            if conversation_id in stale:
                connection.push(frames.reset(conversation_id, stale[conversation_id]))
                cursor = 0
            await self._catch_up(connection, conversation_id, cursor)
        connection.push(frames.RESUMED)

    async def _attach(self, connection: Connection, conversation_id: str) -> None:
        connection.followed_as[conversation_id] = next(self._follows)
        topic = self._topics.get(conversation_id)
        if topic is None:
            topic = self._topics[conversation_id] = Topic(conversation_id)
            topic.connections.add(connection)
            await self._subscribe(self._conversation_channel(conversation_id))
        else:
            topic.connections.add(connection)

    async def _detach(self, connection: Connection, conversation_id: str) -> None:
        connection.unfollow(conversation_id)
        topic = self._topics.get(conversation_id)
        if topic is None:
            return
        topic.connections.discard(connection)
        if not topic.connections:
            del self._topics[conversation_id]
            await self._unsubscribe(self._conversation_channel(conversation_id))

    async def _catch_up(self, connection: Connection, conversation_id: str, cursor: int) -> None:
        """Read from the store until the socket's cursor meets the live stream, then go live."""
        for _ in range(MAX_CATCH_UP_ROUNDS):
            if not connection.follows(conversation_id) or connection.closing is not None:
                return
            batch = await self._store.messages.read_after(
                conversation_id, cursor, limit=self._resume_limit, newest=True
            )
            if batch.first_seq is not None:
                connection.push(frames.limited(conversation_id, batch.first_seq))
            for msg in batch.messages:
                connection.push(frames.message(msg))
            cursor = max(cursor, batch.through_seq)
            if batch.has_more:
                continue
            if conversation_id not in connection.catching_up:
                return  # Unfollowed (left) while reading.
            cursor, gap = connection.take_held(conversation_id, cursor)
            if not gap:
                topic = self._topics.get(conversation_id)
                if topic is not None and topic.seq is None:
                    topic.seq = cursor
                return
        connection.close(CloseCode.SLOW_CONSUMER, "could not catch up; reconnect and resume")

    def _start_catch_up(self, connection: Connection, conversation_id: str, cursor: int) -> None:
        """Catch up outside `resume`: after a gap, or in a conversation joined while connected."""
        self._spawn(self._catch_up_alone(connection, conversation_id, cursor))

    async def _catch_up_alone(
        self, connection: Connection, conversation_id: str, cursor: int
    ) -> None:
        try:
            with _reconnect_on_failure(connection):
                await self._catch_up(connection, conversation_id, cursor)
        except (PyMongoError, ServiceUnavailable) as exc:  # Expected while the store is down.
            logger.warning(
                "socket %s could not catch up on %s: %r", connection.id, conversation_id, exc
            )

    # --- publishing --------------------------------------------------------------------------

    async def publish_message(self, msg: Message) -> None:
        """Fan a stored message out to every member's sockets, on every instance."""
        text = frames.message(msg)
        try:
            await self._broker.publish(self._conversation_channel(msg.conversation_id), text)
        except BrokerDisconnected:
            # Stored already: local sockets get it now, other instances when they backfill.
            logger.warning("publish failed; delivering locally only")
            self._on_message(msg.conversation_id, text)

    async def publish_conversation(
        self, user_ids: Iterable[str], view: Conversation, *, added_by: User | None = None
    ) -> None:
        """Tell these users' sockets about a conversation they now belong to (`added_by`
        someone else, or not)."""
        event = {
            "kind": "conversation",
            "frame": frames.conversation(view, added_by),
            "id": view.id,
        }
        text = json.dumps(event, separators=(",", ":"))
        for user_id in user_ids:
            await self._publish_user_text(user_id, text, kind="conversation")

    async def publish_left(self, user_id: str, conversation_id: str) -> None:
        await self._publish_user(
            user_id, {"kind": "left", "frame": frames.left(conversation_id), "id": conversation_id}
        )

    async def publish_read(
        self, user_id: str, conversation_id: str, seq: int, origin: str | None
    ) -> None:
        """Echo a read marker to the user's other sockets."""
        await self.publish_reads([Echo(user_id, conversation_id, seq, origin)])

    async def publish_reads(self, echoes: Sequence[Echo]) -> None:
        """Echo read markers to their users' other sockets.

        Most people have one socket, the one that read, so most echoes would go through the
        broker only to be dropped here. One round trip asks which users' channels have a
        listener on another instance: only their echoes are published; the rest are delivered
        to this instance's sockets directly (if the broker is unreachable, all of them are).
        """
        channels = [self._user_channel(echo.user_id) for echo in echoes]
        try:
            listening = await self._broker.listeners(channels)
        except BrokerDisconnected:
            listening = {}
        for echo, channel in zip(echoes, channels, strict=True):
            event = {
                "kind": "read",
                "frame": frames.read(echo.conversation_id, echo.seq),
                "id": echo.conversation_id,
                "exclude": echo.origin,
            }
            # This instance listens on a user's channel while it holds a socket of theirs.
            here = 1 if echo.user_id in self._users else 0
            if listening.get(channel, 0) > here:
                await self._publish_user(echo.user_id, event)
            else:
                await self._apply_user_event(echo.user_id, event)

    async def _publish_user(self, user_id: str, event: dict[str, Any]) -> None:
        text = json.dumps(event, separators=(",", ":"))
        await self._publish_user_text(user_id, text, kind=event["kind"])

    async def _publish_user_text(self, user_id: str, text: str, *, kind: str) -> None:
        try:
            await self._broker.publish(self._user_channel(user_id), text)
        except BrokerDisconnected:
            logger.warning("publish of a %s event failed; delivering locally only", kind)
            await self._on_user_event(user_id, text)

    def reserve_seq(self, conversation_id: str) -> int | None:
        """A seq for the next message of a conversation this instance delivers live: one past
        the newest it delivered, so a sender here need not ask the store's counter.

        Only a hint: another instance may take it first, and the store then allocates. None
        when the instance does not know where the conversation is, or while the last seq it
        handed out is not delivered yet: one hinted write in flight per conversation and
        instance keeps the counter at most that many writes behind, so a send that lost its
        hint gets a seq from the counter within a few attempts.
        """
        topic = self._topics.get(conversation_id)
        if topic is None or topic.seq is None or topic.repairing or topic.reserved > topic.seq:
            return None
        topic.reserved = topic.seq + 1
        return topic.reserved

    # --- receiving ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        while True:
            try:
                event = await self._broker.receive()
            except BrokerDisconnected as exc:
                self.broker_connected = False
                logger.warning("broker connection lost (%s); reconnecting in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                if await self._reconnect():
                    delay = RECONNECT_FIRST_DELAY
                continue
            try:
                await self._dispatch(event)
            except Exception:
                # One bad event must not stop fan-out for everyone on this instance.
                logger.exception("could not dispatch an event on %s", event.channel)

    async def _reconnect(self) -> bool:
        try:
            await self._broker.connect()
            for user_id in list(self._users):
                await self._broker.subscribe(self._user_channel(user_id))
            for conversation_id in list(self._topics):
                await self._broker.subscribe(self._conversation_channel(conversation_id))
        except BrokerDisconnected as exc:
            logger.warning("broker still unreachable: %s", exc)
            return False
        self.broker_connected = True
        logger.info("broker reconnected; backfilling %d conversations", len(self._topics))
        for topic in list(self._topics.values()):
            self._repair(topic)
        return True

    async def _dispatch(self, event: Event) -> None:
        channel = event.channel.removeprefix(self._prefix)
        kind, _, key = channel.partition(":")
        if kind == "conversation":
            self._on_message(key, event.message)
        elif kind == "user":
            await self._on_user_event(key, event.message)

    def _on_message(self, conversation_id: str, text: str) -> None:
        topic = self._topics.get(conversation_id)
        if topic is None:
            return
        try:
            seq = int(json.loads(text)["message"]["seq"])
        except (ValueError, KeyError, TypeError):
            logger.error("dropping a malformed message event on %s", conversation_id)
            return
        if topic.repairing:
            topic.held.append((seq, text))
        elif topic.seq is None or seq == topic.seq + 1:
            self._deliver(topic, seq, text)
        elif seq > topic.seq:
            topic.held.append((seq, text))
            self._repair(topic)

    def _deliver(self, topic: Topic, seq: int, text: str) -> None:
        prev, topic.seq = topic.seq, seq
        for connection in topic.connections:
            if connection.offer(topic.conversation_id, prev, seq, text):
                cursor = connection.cursors.pop(topic.conversation_id, 0)
                self._start_catch_up(connection, topic.conversation_id, cursor)

    def _repair(self, topic: Topic) -> None:
        if not topic.repairing and topic.seq is not None:
            topic.repairing = True
            self._spawn(self._fill(topic))

    async def _fill(self, topic: Topic) -> None:
        """Deliver from the store what the topic missed, then what was held meanwhile, in order."""
        assert topic.seq is not None  # noqa: S101 - _repair checks
        try:
            while True:
                batch = await self._store.messages.read_after(
                    topic.conversation_id, topic.seq, limit=REPAIR_BATCH
                )
                for msg in batch.messages:
                    self._deliver(topic, msg.seq, frames.message(msg))
                topic.seq = max(topic.seq, batch.through_seq)
                if batch.has_more:
                    continue
                held = sorted(topic.held)
                topic.held.clear()
                for index, (seq, text) in enumerate(held):
                    if seq <= topic.seq:
                        continue
                    if seq != topic.seq + 1:
                        topic.held.extend(held[index:])
                        break
                    self._deliver(topic, seq, text)
                if not topic.held:
                    return
        finally:
            topic.repairing = False

    async def _on_user_event(self, user_id: str, text: str) -> None:
        if self._users.get(user_id):
            await self._apply_user_event(user_id, json.loads(text))

    async def _apply_user_event(self, user_id: str, event: dict[str, Any]) -> None:
        connections = self._users.get(user_id)
        if not connections:
            return
        kind, conversation_id = event["kind"], event["id"]
        for connection in list(connections):
            if connection.id == event.get("exclude"):
                continue
            if kind == "left":
                await self._detach(connection, conversation_id)
            connection.push(event["frame"])
            if (
                kind == "conversation"
                and connection.resumed
                and not connection.follows(conversation_id)
            ):
                connection.catching_up[conversation_id] = []
                await self._attach(connection, conversation_id)
                self._start_catch_up(connection, conversation_id, 0)

    # --- housekeeping ------------------------------------------------------------------------

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]], name: str) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                logger.exception("%s failed; trying again next time", name)

    async def sweep(self) -> None:
        """Close sockets whose token expired or was revoked; backfill topics that fell behind."""
        now = datetime.now(UTC)
        connections = [c for group in self._users.values() for c in group]
        ended = await self._store.sessions.ended_among(
            {c.session.claims.session_id for c in connections}, now
        )
        for connection in connections:
            if connection.session.claims.session_id in ended:
                connection.close(CloseCode.TOKEN_REVOKED, "session ended")
            elif connection.session.claims.expires_at <= now:
                connection.close(CloseCode.TOKEN_EXPIRED, "session expired")
        known = {cid: t.seq for cid, t in self._topics.items() if t.seq is not None}
        latest = await self._store.conversations.last_seqs(known)
        for conversation_id, last_seq in latest.items():
            topic = self._topics.get(conversation_id)
            if topic is not None and topic.seq is not None and last_seq > topic.seq:
                self._repair(topic)

    async def recheck_membership(self) -> None:
        """Stop sockets following conversations their user no longer belongs to.

        Leaving tells the leaver's sockets through the broker; should that event be lost, the
        sockets would go on receiving the conversation until they reconnect. One query asks
        for the members of every conversation followed here. A socket that started following
        again while the query ran (it rejoined) is left alone: what it follows now is newer
        than what the query was asked about.
        """
        followed = [
            (connection, conversation_id, connection.followed_as.get(conversation_id))
            for conversation_id, topic in self._topics.items()
            for connection in topic.connections
        ]
        if not followed:
            return
        members = await self._store.conversations.members_of(self._topics)
        for connection, conversation_id, followed_as in followed:
            if connection.user_id in members.get(conversation_id, ()):
                continue
            if connection.followed_as.get(conversation_id) != followed_as:
                continue
            logger.info(
                "socket %s no longer follows %s: its user left", connection.id, conversation_id
            )
            await self._detach(connection, conversation_id)
            connection.push(frames.left(conversation_id))
