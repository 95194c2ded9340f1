"""Typing, both ways: who this tab shows typing, and when it tells the others the user types.

- **Shown.** A notice shows its typist for `SHOWN_SECONDS` unless another renews it; a stop, a
  message from them, or their leaving the conversation ends it sooner. Names are listed as a
  chat product does: "Ada is typing…", "Ada and Grace are typing…", "Several people are
  typing…".
- **Told.** While the user types, the tab says so at most once every `TELL_EVERY_SECONDS` (the
  service passes on no more, and the others renew what they show that often); a stop goes only
  while the others may still show them typing, and sending needs none (the message ends it).
"""

from __future__ import annotations

from dataclasses import dataclass

# The service's pace (backend_services/message_service/typing.py), which clients follow.
TELL_EVERY_SECONDS = 3.0
SHOWN_SECONDS = 6.0


@dataclass
class _Typist:
    name: str
    until: float


class Typists:
    """Who is typing in each conversation, as this tab shows it."""

    def __init__(self) -> None:
        self._by_chat: dict[str, dict[str, _Typist]] = {}

    def notice(
        self, conversation_id: str, user_id: str, name: str, active: bool, now: float
    ) -> None:
        if active:
            typists = self._by_chat.setdefault(conversation_id, {})
            typists.pop(user_id, None)  # Listed in the order they (re)started.
            typists[user_id] = _Typist(name, now + SHOWN_SECONDS)
        else:
            self.stopped(conversation_id, user_id)

    def stopped(self, conversation_id: str, user_id: str) -> None:
        """They sent a message there, said they stopped, or left."""
        typists = self._by_chat.get(conversation_id)
        if typists is not None and typists.pop(user_id, None) is not None and not typists:
            del self._by_chat[conversation_id]

    def forget(self, conversation_id: str) -> None:
        self._by_chat.pop(conversation_id, None)

    def expire(self, now: float) -> None:
        for conversation_id, typists in list(self._by_chat.items()):
            for user_id in [u for u, t in typists.items() if t.until <= now]:
                del typists[user_id]
            if not typists:
                del self._by_chat[conversation_id]

    def line(self, conversation_id: str) -> str:
        """What the conversation shows under its messages ("" when nobody types)."""
        names = [typist.name for typist in self._by_chat.get(conversation_id, {}).values()]
        if not names:
            return ""
        if len(names) == 1:
            return f"{names[0]} is typing…"
        if len(names) == 2:
            return f"{names[0]} and {names[1]} are typing…"
        return "Several people are typing…"

    def __bool__(self) -> bool:
        return bool(self._by_chat)


class Typing:
    """When this tab tells a conversation that its user types (pure: the caller gives the time
    and sends what it is told to)."""

    def __init__(self) -> None:
        self._told: tuple[str, float] | None = None  # Where and when "is typing" last went.

    def typed(self, conversation_id: str, now: float) -> bool:
        """The user typed in `conversation_id`: whether to say so now."""
        if self._told is not None:
            where, at = self._told
            if where == conversation_id and now - at < TELL_EVERY_SECONDS:
                return False
        self._told = (conversation_id, now)
        return True

    def stopped(self, now: float) -> str | None:
        """The user stopped without sending: the conversation to say so in, if the others may
        still show them typing."""
        told, self._told = self._told, None
        if told is None or now - told[1] >= SHOWN_SECONDS:
            return None
        return told[0]

    def sent(self) -> None:
        """The user sent a message, which ends their typing for everyone."""
        self._told = None
