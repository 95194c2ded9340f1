"""One authenticated WebSocket: its bounded send queue and its per-conversation cursors."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from backend_services.core.errors import CloseCode
from backend_services.core.sessions import Session


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


@dataclass(slots=True)
class Held:
    """A live frame that arrived while its conversation was catching up from the store."""

    prev: int | None
    seq: int
    text: str


@dataclass(eq=False, slots=True)
class Connection:
    session: Session
    queue_size: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Conversation id -> the highest seq this socket has been sent (holes and tombstones included).
    cursors: dict[str, int] = field(default_factory=dict)
    # Conversations being caught up from the store; live frames wait here meanwhile.
    catching_up: dict[str, list[Held]] = field(default_factory=dict)
    # Conversation id -> the highest seq this socket has read (its user's marker, as it knows it).
    read: dict[str, int] = field(default_factory=dict)
    # Conversation id -> when (a number from the hub's count) the socket last started following
    # it: a membership recheck leaves alone what was followed anew after it asked.
    followed_as: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    closing: Close | None = None
    outbox: asyncio.Queue[str | Close] = field(init=False)

    def __post_init__(self) -> None:
        # One extra slot so a Close always fits behind a full queue.
        self.outbox = asyncio.Queue(maxsize=self.queue_size + 1)

    @property
    def user_id(self) -> str:
        return self.session.user.id

    def push(self, text: str) -> None:
        """Queue a frame without waiting; a socket too far behind is closed, to resume later."""
        if self.closing is not None:
            return
        if self.outbox.qsize() >= self.queue_size:
            self.close(
                CloseCode.SLOW_CONSUMER, "too far behind; reconnect and resume", discard=True
            )
            return
        self.outbox.put_nowait(text)

    def close(self, code: int, reason: str, *, discard: bool = False) -> None:
        """Ask the writer to close the socket after what is queued (or at once, with `discard`:
        the client resumes from its cursor, so nothing queued is lost to it)."""
        if self.closing is None:
            self.closing = Close(code, reason)
            while discard and not self.outbox.empty():
                self.outbox.get_nowait()
            self.outbox.put_nowait(self.closing)

    def follows(self, conversation_id: str) -> bool:
        return conversation_id in self.cursors or conversation_id in self.catching_up

    def read_bound(self, conversation_id: str, seq: int) -> int | None:
        """How far a read of `seq` may move the marker: no further than this socket was sent.

        None unless the socket follows the conversation live (it may be catching up, or never
        have followed it): then only the store knows whether the user may read it at all.
        """
        cursor = self.cursors.get(conversation_id)
        if cursor is None or conversation_id in self.catching_up:
            return None
        return min(seq, cursor)

    def note_read(self, conversation_id: str, seq: int) -> bool:
        """Record a read of `seq`; False if this socket had read that far already."""
        if seq <= self.read.get(conversation_id, 0):
            return False
        self.read[conversation_id] = seq
        return True

    def offer(self, conversation_id: str, prev: int | None, seq: int, text: str) -> bool:
        """Take a live message frame; return True if the socket missed something before it.

        `prev` is the seq the hub delivered before this one (None if it does not know), so a
        socket whose cursor has reached `prev` has missed nothing, even across tombstones.
        """
        held = self.catching_up.get(conversation_id)
        if held is not None:
            held.append(Held(prev, seq, text))
            return False
        cursor = self.cursors.get(conversation_id)
        if cursor is None or seq <= cursor:
            return False
        if seq == cursor + 1 or (prev is not None and cursor >= prev):
            self.push(text)
            self.cursors[conversation_id] = seq
            return False
        self.catching_up[conversation_id] = [Held(prev, seq, text)]
        return True

    def take_held(self, conversation_id: str, cursor: int) -> tuple[int, bool]:
        """Send held frames that continue from `cursor`; return the new cursor and whether a gap
        remains. On no gap the conversation goes live (no await between the check and the switch).
        """
        held = sorted(self.catching_up.get(conversation_id, ()), key=lambda h: h.seq)
        for index, frame in enumerate(held):
            if frame.seq <= cursor:
                continue
            if frame.seq == cursor + 1 or (frame.prev is not None and cursor >= frame.prev):
                self.push(frame.text)
                cursor = frame.seq
                continue
            self.catching_up[conversation_id] = held[index:]
            return cursor, True
        self.catching_up.pop(conversation_id, None)
        self.cursors[conversation_id] = cursor
        return cursor, False

    def unfollow(self, conversation_id: str) -> None:
        self.followed_as.pop(conversation_id, None)
        self.cursors.pop(conversation_id, None)
        self.read.pop(conversation_id, None)
        self.catching_up.pop(conversation_id, None)
