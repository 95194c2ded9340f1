"""Typing notices: which of a user's `typing` frames an instance passes on.

A notice is ephemeral (never stored, never caught up), so the only question is how many go
through the broker: at most one "is typing" per user and conversation every `interval`, however
often clients send them, and a "stopped" only when the others still show the user typing (a
notice passed on within `lasts`). A message from the user ends their typing on every client, so
a send lets the next "is typing" through at once. Each instance decides for its own sockets: a
user typing in two tabs on two instances may be passed on twice as often, which costs a notice,
not a wrong state.
"""

from __future__ import annotations

# Clients show a notice this long unless another renews it; they renew every TYPING_INTERVAL.
TYPING_INTERVAL_SECONDS = 3.0
TYPING_LASTS_SECONDS = 6.0


class TypingGate:
    """Per user and conversation, when an "is typing" was last passed on (pure: the caller
    gives the time)."""

    def __init__(
        self,
        interval: float = TYPING_INTERVAL_SECONDS,
        lasts: float = TYPING_LASTS_SECONDS,
    ) -> None:
        self._interval = interval
        self._lasts = lasts
        self._started: dict[str, dict[str, float]] = {}

    def passes(self, user_id: str, conversation_id: str, active: bool, now: float) -> bool:
        """Whether this notice goes to the other members."""
        started = self._started.get(user_id)
        at = started.get(conversation_id) if started is not None else None
        if not active:
            if at is None:
                return False
            self._drop(user_id, conversation_id)
            return now - at < self._lasts
        if at is not None and now - at < self._interval:
            return False
        if started is None:
            started = self._started[user_id] = {}
        else:
            self._expire(started, now)
        started[conversation_id] = now
        return True

    def sent(self, user_id: str, conversation_id: str) -> None:
        """The user sent a message there: their typing ended everywhere."""
        self._drop(user_id, conversation_id)

    def forget(self, user_id: str) -> None:
        """The user has no socket here any more."""
        self._started.pop(user_id, None)

    def __len__(self) -> int:
        return sum(len(started) for started in self._started.values())

    def _drop(self, user_id: str, conversation_id: str) -> None:
        started = self._started.get(user_id)
        if started is not None:
            started.pop(conversation_id, None)
            if not started:
                del self._started[user_id]

    def _expire(self, started: dict[str, float], now: float) -> None:
        """Forget a user's notices that every client has stopped showing."""
        for conversation_id in [c for c, at in started.items() if now - at >= self._lasts]:
            del started[conversation_id]
