"""The `typing` and `presence` workloads of `bench.fanout`: what people's comings and goings
cost besides their messages (the message service only).

- **typing**: every sender says it is typing once every `TYPING_EVERY_SECONDS` all through the
  run, as the web app does while someone types (the service passes on one per sender and 3 s,
  to every other member).
- **presence**: receivers go away and come back, `PRESENCE_CHANGES_PER_SECOND` changes a second
  across the group (each of 1,000 members changing about every 8 minutes, as an office does),
  each told to every member.

Both run for as long as the messages are sent; notices that arrive are counted per kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

from bench.wsclient import LeanSocket

TYPING_FRAME = '{"type":"typing"'
PRESENCE_FRAME = '{"type":"presence"'
TYPING_EVERY_SECONDS = 3.0
PRESENCE_CHANGES_PER_SECOND = 2.0


@dataclass
class Ephemeral:
    conversation_id: str
    typing: bool
    presence: bool
    typing_sent: int = 0
    presence_sent: int = 0
    received: dict[str, int] = field(default_factory=lambda: {"typing": 0, "presence": 0})
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def on_frame(self, raw: str) -> bool:
        """Count a notice; whether `raw` was one."""
        if raw.startswith(TYPING_FRAME):
            self.received["typing"] += 1
            return True
        if raw.startswith(PRESENCE_FRAME):
            self.received["presence"] += 1
            return True
        return False

    def start(self, senders: list[LeanSocket], receivers: list[LeanSocket]) -> None:
        if self.typing:
            for index, sender in enumerate(senders):
                # Spread over the interval, as people start typing at different times.
                offset = TYPING_EVERY_SECONDS * index / max(1, len(senders))
                self._tasks.append(asyncio.create_task(self._type(sender, offset)))
        if self.presence and receivers:
            self._tasks.append(asyncio.create_task(self._come_and_go(receivers)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _type(self, sender: LeanSocket, offset: float) -> None:
        frame = json.dumps({"type": "typing", "conversation_id": self.conversation_id})
        await asyncio.sleep(offset)
        while True:
            if sender.is_open:
                sender.send(frame)
                self.typing_sent += 1
            await asyncio.sleep(TYPING_EVERY_SECONDS)

    async def _come_and_go(self, receivers: list[LeanSocket]) -> None:
        """Receiver i goes away, later receiver i comes back: each change is one frame."""
        away = [False] * len(receivers)
        index = 0
        while True:
            await asyncio.sleep(1 / PRESENCE_CHANGES_PER_SECOND)
            socket = receivers[index % len(receivers)]
            slot = index % len(receivers)
            away[slot] = not away[slot]
            if socket.is_open:
                socket.send(json.dumps({"type": "presence", "away": away[slot]}))
                self.presence_sent += 1
            index += 1
