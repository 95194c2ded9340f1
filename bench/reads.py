"""Receivers' `read` frames, paced as the web app paces them (letschat_app's chat model).

A client viewing a conversation tells the service how far it has read: the newest seq it has
received, at most every `READ_INTERVAL_SECONDS` (2 s), and only if that moved since its last
`read`. The first message after a quiet spell is read at once; the ones after it are read
together when the interval is up.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass

from bench.wsclient import LeanSocket
from letschat_app.model.chat import READ_INTERVAL_SECONDS

# How often reads held back by the limit are looked at: a read is at most this late.
TICK_SECONDS = 0.05
# In a `message` frame the message's seq is the first "seq" (it comes before the body).
SEQ_FIELD = '"seq":'


@dataclass(slots=True)
class ReadPacer:
    """One client's reads in one conversation."""

    interval: float = READ_INTERVAL_SECONDS
    received: int = 0  # The newest seq delivered.
    sent: int = 0  # The seq of the last `read` sent.
    sent_at: float = -math.inf

    @property
    def behind(self) -> bool:
        return self.received > self.sent

    def receive(self, seq: int, now: float) -> int | None:
        """Note a delivered message; return the seq to send a `read` for now, if any."""
        self.received = max(self.received, seq)
        return self.due(now)

    def due(self, now: float) -> int | None:
        """The seq to send a `read` for now: None if nothing new arrived or one went out less
        than `interval` ago."""
        if not self.behind or now - self.sent_at < self.interval:
            return None
        self.sent, self.sent_at = self.received, now
        return self.sent


def message_seq(frame: str) -> int | None:
    """The seq of a `message` frame, without parsing the whole frame."""
    start = frame.find(SEQ_FIELD)
    if start < 0:
        return None
    start += len(SEQ_FIELD)
    end = frame.find(",", start)
    digits = frame[start:end] if end >= 0 else ""
    return int(digits) if digits.isdigit() else None


class Readers:
    """Every client's reads in one conversation, and the ticker that sends held-back ones."""

    def __init__(self, sockets: list[LeanSocket], conversation_id: str) -> None:
        self._sockets = sockets
        self._pacers = [ReadPacer() for _ in sockets]
        self._waiting: set[int] = set()  # Clients with a read held back by the limit.
        self._prefix = f'{{"type":"read","conversation_id":{json.dumps(conversation_id)},"seq":'
        self.sent = 0

    def on_message(self, index: int, frame: str) -> None:
        """Client `index` was delivered this `message` frame."""
        seq = message_seq(frame)
        if seq is not None:
            self._send(index, self._pacers[index].receive(seq, time.monotonic()))

    async def run(self) -> None:
        """Send held-back reads as they fall due, until cancelled."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            for index in list(self._waiting):
                self._send(index, self._pacers[index].due(now))

    def _send(self, index: int, seq: int | None) -> None:
        socket = self._sockets[index]
        if seq is not None and socket.is_open:
            socket.send(f"{self._prefix}{seq}}}")
            self.sent += 1
        if self._pacers[index].behind:
            self._waiting.add(index)
        else:
            self._waiting.discard(index)
