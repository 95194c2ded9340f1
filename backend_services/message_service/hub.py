"""Fan-out on one message-service instance.

The hub subscribes to exactly what its sockets need: one broker channel per connected user and one
per conversation those users belong to (`Subscriptions` counts who needs each). Every event
travels as an `Envelope`, which carries a message's seq (or a change's number) next to the frame
sockets get. A conversation has two numbered feeds (`feeds.py`): its messages, and the changes
to them (edits, deletions, reactions). A topic (one per feed of a conversation followed here)
and each socket put a feed in order with the same `Sequence`: what arrives early is held, what
is missing is read from the store, and the socket gets the same text as every other, without
the hub awaiting any socket. Everything below is written once, for either feed.

Four things repair what pub/sub cannot promise: a socket catches up from the store whenever its
cursor is behind what it is offered; a lost broker connection is re-established with backoff and
every topic is backfilled from the store; a periodic sweep compares each topic with the store,
catching a message whose publish was lost while nothing came after it; and a periodic recheck
of membership stops a socket following a conversation its user left, if that `left` was lost.
The app's lifespan runs the sweep and the recheck.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from backend_services.core.broker import Broker, BrokerDisconnected
from backend_services.core.errors import CloseCode, ServiceUnavailable
from backend_services.core.schemas import Change, Conversation, Cursor, Message, Presence, User
from backend_services.core.store import Store
from backend_services.message_service import frames
from backend_services.message_service.connection import Connection
from backend_services.message_service.envelope import EPHEMERAL, NUMBERED, BadEnvelope, Envelope
from backend_services.message_service.feeds import CHANGES, FEEDS, MESSAGES, Feed, Kind
from backend_services.message_service.prepared_frames import Prepared
from backend_services.message_service.reads import Echo
from backend_services.message_service.sequence import Sequence
from backend_services.message_service.stats import SocketStats
from backend_services.message_service.typing import TypingGate
from letschat_protocol.server import PresenceSettingFrame, parse_server_frame

logger = logging.getLogger("letschat.hub")

# python-socketio's reconnection schedule: 1 s, doubling, at most 60 s.
RECONNECT_FIRST_DELAY = 1.0
RECONNECT_MAX_DELAY = 60.0
# A topic repair reads this many messages at a time from the store.
REPAIR_BATCH = 500
# How long a topic waits for a message missing from the live stream before it reads the store.
# Two senders' messages cross on the way (the later seq stored and published first) all the
# time; a message pub/sub lost for good is rare: waiting costs little and saves a query.
REORDER_WAIT_SECONDS = 0.25
# A socket that needs more catch-up rounds than this is falling behind faster than it reads.
MAX_CATCH_UP_ROUNDS = 20
# On shutdown, how long sockets get to receive their 1012 close before uvicorn drops them.
DRAIN_SECONDS = 5.0
CATCH_UP_FAILED = "could not catch up; reconnect and resume"
# Sessions are ended with the ending service's clock: each sweep looks this far back past the
# one before, so clocks that disagree by less lose no ending.
CLOCK_SKEW = timedelta(seconds=60)


class Subscriptions:
    """Broker channels held by count: subscribed while anything here needs them, unsubscribed
    when nothing does, and all subscribed again when the broker connection comes back."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._counts: Counter[str] = Counter()

    async def hold(self, channel: str) -> None:
        self._counts[channel] += 1
        if self._counts[channel] > 1:
            return
        try:
            await self._broker.subscribe(channel)
        except BrokerDisconnected:
            logger.warning("subscribe to %s deferred until the broker is back", channel)

    async def release(self, channel: str) -> None:
        self._counts[channel] -= 1
        if self._counts[channel] > 0:
            return
        del self._counts[channel]
        with contextlib.suppress(BrokerDisconnected):
            await self._broker.unsubscribe(channel)

    async def resubscribe(self) -> None:
        """After a reconnect; raises BrokerDisconnected if the broker went again."""
        for channel in list(self._counts):
            await self._broker.subscribe(channel)

    def __len__(self) -> int:
        return len(self._counts)


@dataclass(eq=False, slots=True)
class Topic:
    """One feed of a conversation followed on this instance: its sockets, and its place in the
    feed."""

    conversation_id: str
    feed: Feed = MESSAGES
    connections: set[Connection] = field(default_factory=set)
    # (seq, frame) in order; `last` is None until the first message or a caught-up socket.
    sequence: Sequence[tuple[int, str]] = field(default_factory=Sequence)
    delivered: int | None = None  # The seq last handed to the sockets (their `prev`).
    counted: int = 0  # The store's counter at the last sweep: seqs up to it should be here.
    # While something is missing: the timer after which the topic stops waiting for it.
    waiting: asyncio.TimerHandle | None = None

    def stop_waiting(self) -> None:
        if self.waiting is not None:
            self.waiting.cancel()
            self.waiting = None


def _streams(connection: Connection, feed: Feed) -> dict[str, Sequence[Any]]:
    """Where a socket stands in each conversation's `feed`."""
    return connection.streams if feed is MESSAGES else connection.changes


@contextlib.contextmanager
def _reconnect_on_failure(connection: Connection) -> Iterator[None]:
    """Close the socket (1013) if the catch-up inside fails: left unfinished, it would keep its
    conversation's live frames held, and the socket silent there, until the socket reconnected."""
    try:
        yield
    except Exception:
        connection.close(CloseCode.TRY_AGAIN_LATER, CATCH_UP_FAILED)
        raise


class Hub:
    def __init__(
        self,
        broker: Broker,
        store: Store,
        *,
        channel_prefix: str,
        resume_limit: int,
        reorder_wait: float = REORDER_WAIT_SECONDS,
    ) -> None:
        self._broker = broker
        self._store = store
        self._prefix = channel_prefix
        self._resume_limit = resume_limit
        self._reorder_wait = reorder_wait
        self._channels = Subscriptions(broker)
        self._follows = itertools.count(1)
        # Per feed: the topics of the conversations followed here.
        self._topics: dict[Kind, dict[str, Topic]] = {feed.kind: {} for feed in FEEDS}
        self._users: dict[str, set[Connection]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._typing = TypingGate()
        # Told when a user's "appear offline" setting changes (user id, setting, the
        # conversations their sockets here follow): the instance's presence.
        self.on_presence_setting: Callable[[str, bool, set[str]], None] | None = None
        # Told when a resumed socket starts following a conversation it was added to or joined.
        self.on_follow: Callable[[Connection, str], None] | None = None
        self._no_connections = asyncio.Event()
        self.broker_connected = False
        self.stats = SocketStats()
        # Sockets opened from now on were verified against the sessions as they are now.
        self._sessions_checked_at = datetime.now(UTC)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._broker.connect()
        self.broker_connected = True
        self._spawn(self._listen())

    async def stop(self) -> None:
        """Close every socket with 1012 (clients resume on another instance), then stop tasks."""
        self.close_all(CloseCode.SERVICE_RESTART, "server restarting")
        for topic in self._all_topics():
            topic.stop_waiting()
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
        # The hub's own work: not in the log context of the request that happened to start it.
        task = asyncio.create_task(coro, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub task failed", exc_info=task.exception())

    @property
    def socket_count(self) -> int:
        return sum(len(connections) for connections in self._users.values())

    @property
    def subscription_count(self) -> int:
        return len(self._channels)

    def _all_topics(self) -> list[Topic]:
        return [topic for topics in self._topics.values() for topic in topics.values()]

    def _conversation_channel(self, conversation_id: str) -> str:
        return f"{self._prefix}conversation:{conversation_id}"

    def _user_channel(self, user_id: str) -> str:
        return f"{self._prefix}user:{user_id}"

    # --- sockets -----------------------------------------------------------------------------

    async def register(self, connection: Connection) -> None:
        self._users.setdefault(connection.user_id, set()).add(connection)
        await self._channels.hold(self._user_channel(connection.user_id))

    async def unregister(self, connection: Connection) -> None:
        connection.stop()
        for conversation_id in list(connection.streams):
            await self._detach(connection, conversation_id)
        connections = self._users.get(connection.user_id)
        if connections is None or connection not in connections:
            return
        connections.discard(connection)
        if not connections:
            del self._users[connection.user_id]
            self._typing.forget(connection.user_id)
            if not self._users:
                self._no_connections.set()
        await self._channels.release(self._user_channel(connection.user_id))

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
        given = {cid: cursor for cid, cursor in cursors.items() if cid in new}
        claimed = {
            cid: (cursor, None) if isinstance(cursor, int) else (cursor.seq, cursor.epoch)
            for cid, cursor in given.items()
        }
        stale = await self._store.conversations.stale_cursors(claimed)
        for conversation_id in starting:
            cursor = 0 if conversation_id in stale else claimed.get(conversation_id, (0, None))[0]
            change = given.get(conversation_id)
            change_cursor = None
            if isinstance(change, Cursor) and conversation_id not in stale:
                change_cursor = change.change
            await self._attach(connection, conversation_id, cursor, change_cursor)
        # Asked once every stream follows live, so nothing counted after it is missed: where
        # the changes stand, for the sockets that do not know, and to skip reading the
        # changes of conversations where nothing changed since the socket's cursor.
        changes_counted = await CHANGES.counted(self._store, starting) if starting else {}
        for conversation_id in starting:
            if conversation_id in stale:
                connection.push(frames.reset(conversation_id, stale[conversation_id]))
            sent = await self._catch_up(connection, conversation_id, MESSAGES)
            if sent:
                self.stats.resume_messages.observe(sent)
            await self._catch_up(
                connection, conversation_id, CHANGES, changes_counted.get(conversation_id, 0)
            )
        connection.push(frames.RESUMED)

    async def _attach(
        self, connection: Connection, conversation_id: str, cursor: int, change_cursor: int | None
    ) -> None:
        """Follow a conversation's feeds from the cursors (`change_cursor` None: from where the
        changes stand when `_catch_up` is told): live frames are held until `_catch_up`."""
        connection.follow(conversation_id, cursor, next(self._follows), change_cursor)
        for feed in FEEDS:
            topics = self._topics[feed.kind]
            topic = topics.get(conversation_id)
            if topic is None:
                topic = topics[conversation_id] = Topic(conversation_id, feed)
                await self._channels.hold(self._conversation_channel(conversation_id))
            topic.connections.add(connection)

    async def _detach(self, connection: Connection, conversation_id: str) -> None:
        connection.unfollow(conversation_id)
        for topics in self._topics.values():
            topic = topics.get(conversation_id)
            if topic is None or connection not in topic.connections:
                continue
            topic.connections.discard(connection)
            if not topic.connections:
                del topics[conversation_id]
                topic.stop_waiting()
                await self._channels.release(self._conversation_channel(conversation_id))

    async def _catch_up(
        self, connection: Connection, conversation_id: str, feed: Feed, counted: int | None = None
    ) -> int:
        """Read from the store until the socket's stream meets the live one, then go live;
        return how many entries were sent from the store.

        `counted`: where the feed's counter stood after the stream started holding live frames
        (a stream without a cursor starts there; none at or past it needs a read)."""
        streams = _streams(connection, feed)
        stream = streams.get(conversation_id)
        if stream is not None and stream.last is None and counted is None:
            counted = (await feed.counted(self._store, [conversation_id])).get(conversation_id, 0)
            if streams.get(conversation_id) is not stream:
                return 0
        if stream is not None and counted is not None:
            if stream.last is None or stream.last > counted:
                stream.last = counted
            # Nothing was counted past the cursor, so there is nothing to read, unless a live
            # frame held meanwhile does not follow it (then the store is read from there), or
            # this instance's topic has not been placed yet: the first socket to follow it
            # here reads, so that the topic learns from the store, not from a counter, where
            # the feed stands (and its sweep can tell when a publish was lost).
            topic = self._topics[feed.kind].get(conversation_id)
            placed = topic is not None and topic.sequence.last is not None
            if (
                placed
                and stream.last == counted
                and self._go_live(connection, conversation_id, feed, stream, counted)
            ):
                return 0
        cursor = None if stream is None else stream.last
        sent = 0
        for _ in range(MAX_CATCH_UP_ROUNDS):
            if stream is None or cursor is None or connection.closing is not None:
                return sent
            read = await feed.read(self._store, conversation_id, cursor, self._resume_limit, True)
            if streams.get(conversation_id) is not stream:
                return sent  # Unfollowed (left) while reading.
            if read.first is not None:
                connection.push(feed.limited(conversation_id, read.first))
                if feed is MESSAGES:
                    self.stats.resume_limited += 1
            for number, frame in read.entries:
                if stream.fill(number):
                    connection.push(frame)
                    sent += 1
            if read.has_more:
                cursor = max(cursor, read.through)
                continue
            if self._go_live(connection, conversation_id, feed, stream, read.through):
                return sent
            cursor = stream.last
        connection.close(CloseCode.SLOW_CONSUMER, CATCH_UP_FAILED)
        return sent

    def _go_live(
        self,
        connection: Connection,
        conversation_id: str,
        feed: Feed,
        stream: Sequence[Any],
        through: int,
    ) -> bool:
        """Nothing is missing through `through`: pass on what was held; False if something
        still is (read again from the stream's `last`)."""
        if connection.send_ready(stream.filled(through)) is not None:
            return False
        topic = self._topics[feed.kind].get(conversation_id)
        # A socket that caught up from the store tells a topic that has not heard an entry
        # where it stands (a socket that did not read goes live only beside a placed topic:
        # a counter may be past entries still on their way, which a topic placed there drops).
        if topic is not None and topic.sequence.last is None and not topic.sequence.filling:
            topic.sequence.last = topic.delivered = stream.last
        return True

    async def _catch_up_alone(
        self, connection: Connection, conversation_id: str, feed: Feed, *, joined: bool = False
    ) -> None:
        """A catch-up outside `resume`: after a gap in `feed`; or, `joined`, of a conversation
        joined meanwhile: its messages from the start and its changes from where the counter
        stands once the socket holds their live frames (asked first: a change made while the
        messages are read must not be taken as counted already)."""
        try:
            with _reconnect_on_failure(connection):
                if not joined:
                    await self._catch_up(connection, conversation_id, feed)
                    return
                counted = await CHANGES.counted(self._store, [conversation_id])
                await self._catch_up(connection, conversation_id, MESSAGES)
                await self._catch_up(
                    connection, conversation_id, CHANGES, counted.get(conversation_id, 0)
                )
        except (PyMongoError, ServiceUnavailable) as exc:  # Expected while the store is down.
            logger.warning(
                "socket %s could not catch up on %s: %r", connection.id, conversation_id, exc
            )

    # --- publishing --------------------------------------------------------------------------

    async def publish_message(self, msg: Message) -> None:
        """Fan a stored message out to every member's sockets, on every instance."""
        envelope = Envelope("message", msg.conversation_id, frames.message(msg), msg.seq)
        try:
            await self._broker.publish(
                self._conversation_channel(msg.conversation_id), envelope.encode()
            )
        except BrokerDisconnected:
            # Stored already: local sockets get it now, other instances when they backfill.
            logger.warning("publish failed; delivering locally only")
            self._on_numbered(envelope)

    async def publish_change(self, change: Change) -> None:
        """Fan a stored change out to every member's sockets, on every instance."""
        conversation_id = change.message.conversation_id
        envelope = Envelope("change", conversation_id, frames.change(change), change.change)
        try:
            await self._broker.publish(
                self._conversation_channel(conversation_id), envelope.encode()
            )
        except BrokerDisconnected:
            logger.warning("publish failed; delivering locally only")
            self._on_numbered(envelope)

    async def publish_typing(self, user: User, conversation_id: str, active: bool) -> None:
        """Tell the sockets of a conversation's other members, on every instance, that `user`
        is typing there (or stopped), unless the instance's `TypingGate` holds it back."""
        if not self._typing.passes(user.id, conversation_id, active, time.monotonic()):
            return
        frame = frames.typing(conversation_id, user, active)
        envelope = Envelope("typing", conversation_id, frame, exclude=user.id)
        try:
            await self._broker.publish(
                self._conversation_channel(conversation_id), envelope.encode()
            )
        except BrokerDisconnected:
            self._on_ephemeral(envelope)  # Worth nothing later: no backfill, no warning.

    def typing_ended(self, user_id: str, conversation_id: str) -> None:
        """The user sent a message there, which ends their typing on every client."""
        self._typing.sent(user_id, conversation_id)

    async def publish_presence(
        self, entries: list[Presence], conversation_ids: Iterable[str]
    ) -> None:
        """Tell the members of these conversations, on every instance, whether people are
        there."""
        frame = frames.presence(entries)
        for conversation_id in conversation_ids:
            envelope = Envelope("presence", conversation_id, frame)
            try:
                await self._broker.publish(
                    self._conversation_channel(conversation_id), envelope.encode()
                )
            except BrokerDisconnected:
                self._on_ephemeral(envelope)

    async def publish_presence_setting(self, user_id: str, appear_offline: bool) -> None:
        """The user's "appear offline" setting changed: their sockets, and the instances that
        hold them, hear of it."""
        envelope = Envelope("presence_setting", user_id, frames.presence_setting(appear_offline))
        await self._publish_user(user_id, envelope)

    async def publish_conversation(
        self, user_ids: Iterable[str], view: Conversation, *, added_by: User | None = None
    ) -> None:
        """Tell these users' sockets about a conversation they now belong to (`added_by`
        someone else, or not)."""
        envelope = Envelope("conversation", view.id, frames.conversation(view, added_by))
        for user_id in user_ids:
            await self._publish_user(user_id, envelope)

    async def publish_left(self, user_id: str, conversation_id: str) -> None:
        await self._publish_user(
            user_id, Envelope("left", conversation_id, frames.left(conversation_id))
        )

    async def publish_read(
        self, user_id: str, conversation_id: str, seq: int, origin: str | None
    ) -> None:
        """Echo a read marker to the user's other sockets."""
        await self.publish_reads([Echo(user_id, conversation_id, seq, origin)])

    async def publish_reads(self, echoes: Seq[Echo]) -> None:
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
            envelope = Envelope(
                "read",
                echo.conversation_id,
                frames.read(echo.conversation_id, echo.seq),
                exclude=echo.origin,
            )
            # This instance listens on a user's channel while it holds a socket of theirs.
            here = 1 if echo.user_id in self._users else 0
            if listening.get(channel, 0) > here:
                await self._publish_user(echo.user_id, envelope)
            else:
                await self._on_user_event(echo.user_id, envelope)

    async def _publish_user(self, user_id: str, envelope: Envelope) -> None:
        try:
            await self._broker.publish(self._user_channel(user_id), envelope.encode())
        except BrokerDisconnected:
            logger.warning("publish of a %s event failed; delivering locally only", envelope.kind)
            await self._on_user_event(user_id, envelope)

    # --- receiving ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        while True:
            try:
                event = await self._broker.receive()
            except BrokerDisconnected as exc:
                if self.broker_connected:  # Lost now, not a retry that failed again.
                    self.stats.broker_disconnects += 1
                self.broker_connected = False
                logger.warning("broker connection lost (%s); reconnecting in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                if await self._reconnect():
                    delay = RECONNECT_FIRST_DELAY
                continue
            try:
                envelope = Envelope.decode(event.message)
            except BadEnvelope:
                logger.error("dropping a malformed event on %s", event.channel)
                continue
            try:
                if envelope.kind in NUMBERED:
                    self._on_numbered(envelope)
                elif envelope.kind in EPHEMERAL:
                    self._on_ephemeral(envelope)
                else:
                    user_id = event.channel.removeprefix(f"{self._prefix}user:")
                    await self._on_user_event(user_id, envelope)
            except Exception:
                # One bad event must not stop fan-out for everyone on this instance.
                logger.exception("could not dispatch an event on %s", event.channel)

    async def _reconnect(self) -> bool:
        try:
            await self._broker.connect()
            await self._channels.resubscribe()
        except BrokerDisconnected as exc:
            logger.warning("broker still unreachable: %s", exc)
            return False
        self.broker_connected = True
        self.stats.broker_reconnects += 1
        topics = self._all_topics()
        logger.info("broker reconnected; backfilling %d topics", len(topics))
        for topic in topics:
            self._repair(topic)
        return True

    def _on_numbered(self, envelope: Envelope) -> None:
        """A message or a change, from the broker."""
        topic = self._topics[envelope.kind].get(envelope.conversation_id)  # type: ignore[index]
        if topic is None or envelope.seq is None:
            return
        step = topic.sequence.offer(envelope.seq, (envelope.seq, envelope.frame))
        for seq, text in step.ready:
            self._deliver(topic, seq, text)
        if step.backfill_from is not None and topic.waiting is None:
            self._wait_for(topic, step.backfill_from + 1)

    def _on_ephemeral(self, envelope: Envelope) -> None:
        """A typing notice or a presence change: to the sockets here that follow its
        conversation (a typing notice not to the typer's)."""
        topic = self._topics[MESSAGES.kind].get(envelope.conversation_id)
        if topic is None:
            return
        frame = Prepared(envelope.frame, envelope.kind, self.stats.tally(envelope.kind))
        for connection in topic.connections:
            if connection.user_id != envelope.exclude:
                connection.push(frame)

    def _wait_for(self, topic: Topic, missing: int) -> None:
        """Give `missing` a moment to come live before the topic reads the store for it."""
        topic.waiting = asyncio.get_running_loop().call_later(
            self._reorder_wait, self._wait_over, topic, missing
        )

    def _wait_over(self, topic: Topic, missing: int) -> None:
        """The wait for `missing` is over: backfill unless it came; wait for whatever else is
        missing now."""
        topic.waiting = None
        topics = self._topics[topic.feed.kind]
        if topics.get(topic.conversation_id) is not topic or not topic.sequence.missing:
            return
        last = topic.sequence.last
        if last is not None and last >= missing:
            self._wait_for(topic, last + 1)
            return
        self._repair(topic)

    def _deliver(self, topic: Topic, seq: int, text: str) -> None:
        prev, topic.delivered = topic.delivered, seq
        feed, conversation_id = topic.feed, topic.conversation_id
        # Encoded once, for every socket that writes it at once.
        frame = Prepared(text, feed.kind, self.stats.tally(feed.kind))
        changes = feed is CHANGES  # Decided once, not per socket (`_streams`).
        for connection in topic.connections:
            streams = connection.changes if changes else connection.streams
            if connection.offer(conversation_id, prev, seq, frame, streams) is not None:
                connection.run_catch_up(
                    conversation_id,
                    self._catch_up_alone(connection, conversation_id, feed),
                    feed.kind,
                )

    def _repair(self, topic: Topic) -> None:
        """Backfill a topic from the store (unless it is already, or knows nothing yet)."""
        if topic.sequence.last is not None and not topic.sequence.filling:
            after = topic.sequence.start_fill()
            assert after is not None  # noqa: S101 - checked just above
            self.stats.backfills[topic.feed.kind] += 1
            self._spawn(self._fill(topic, after))

    async def _fill(self, topic: Topic, after: int) -> None:
        """Deliver from the store what the topic missed, then what was held meanwhile, in order.
        If the store fails, the next gap or sweep starts again."""
        sequence = topic.sequence
        try:
            while True:
                read = await topic.feed.read(
                    self._store, topic.conversation_id, after, REPAIR_BATCH, False
                )
                for number, frame in read.entries:
                    if sequence.fill(number):
                        self._deliver(topic, number, frame)
                if read.has_more:
                    after = max(after, read.through)
                    continue
                step = sequence.filled(read.through)
                for seq, text in step.ready:
                    self._deliver(topic, seq, text)
                if step.backfill_from is None:
                    return
                after = step.backfill_from
        except (PyMongoError, ServiceUnavailable) as exc:
            logger.warning("could not backfill %s: %r", topic.conversation_id, exc)
            sequence.stop_fill()
        except BaseException:
            sequence.stop_fill()
            raise

    async def _on_user_event(self, user_id: str, envelope: Envelope) -> None:
        conversation_id = envelope.conversation_id
        if envelope.kind == "presence_setting" and self.on_presence_setting is not None:
            setting = parse_server_frame(envelope.frame)
            if isinstance(setting, PresenceSettingFrame):
                followed = {c for conn in self._users.get(user_id, ()) for c in conn.streams}
                self.on_presence_setting(user_id, setting.appear_offline, followed)
        for connection in list(self._users.get(user_id, ())):
            if connection.id == envelope.exclude:
                continue
            if envelope.kind == "left":
                await self._detach(connection, conversation_id)
            connection.push(envelope.frame)
            if (
                envelope.kind == "conversation"
                and connection.resumed
                and not connection.follows(conversation_id)
            ):
                # Its messages from the start; its changes from now (the messages come as
                # they are now).
                await self._attach(connection, conversation_id, 0, None)
                connection.run_catch_up(
                    conversation_id,
                    self._catch_up_alone(connection, conversation_id, MESSAGES, joined=True),
                )
                if self.on_follow is not None:
                    self.on_follow(connection, conversation_id)

    # --- housekeeping (run by the app's lifespan) ----------------------------------------------

    async def sweep(self) -> None:
        """Close sockets whose session ended or expired, or whose token expired; backfill
        topics that fell behind."""
        now = datetime.now(UTC)
        # Sessions ended since the last sweep: one query however many sockets are open (a
        # sweep that looked every socket's session up swamped the store for a moment, and a
        # send waited behind it). A session expires when no refresh moved it: each socket knows
        # when from its token's verification, and a refresh brings the socket a new token.
        ended = await self._store.sessions.ended_since(self._sessions_checked_at - CLOCK_SKEW)
        self._sessions_checked_at = now
        for connection in [c for group in self._users.values() for c in group]:
            session = connection.session
            if session.claims.session_id in ended:
                connection.close(CloseCode.TOKEN_REVOKED, "session ended")
            elif session.live_until <= now:
                connection.close(CloseCode.TOKEN_REVOKED, "session expired")
            elif session.claims.expires_at <= now:
                connection.close(CloseCode.TOKEN_EXPIRED, "token expired")
        # A number a counter gave out a sweep ago has been written (or declared lost) since,
        # and published: a topic that has not got that far missed it, and backfills. Numbers
        # counted since may still be on their way.
        for feed in FEEDS:
            topics = self._topics[feed.kind]
            if not topics:
                continue
            counters = await feed.counted(self._store, list(topics))
            for conversation_id, counted in counters.items():
                topic = topics.get(conversation_id)
                if topic is None:
                    continue
                last = topic.sequence.last
                if last is not None and last < topic.counted:
                    self._repair(topic)
                topic.counted = counted

    async def recheck_membership(self) -> None:
        """Stop sockets following conversations their user no longer belongs to.

        Leaving tells the leaver's sockets through the broker; should that event be lost, the
        sockets would go on receiving the conversation until they reconnect. One query asks
        for the members of every conversation followed here. A socket that started following
        again while the query ran (it rejoined) is left alone: what it follows now is newer
        than what the query was asked about.
        """
        topics = self._topics[MESSAGES.kind]  # Each followed conversation has one.
        followed = [
            (connection, conversation_id, connection.followed_as.get(conversation_id))
            for conversation_id, topic in topics.items()
            for connection in topic.connections
        ]
        if not followed:
            return
        members = await self._store.conversations.members_of(topics)
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
