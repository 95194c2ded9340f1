"""Typing notices: which of a user's `typing` frames an instance passes on.

A notice is ephemeral (never stored, never caught up), so the only question is how many go
through the broker: at most one "is typing" per user and conversation every `interval`, however
often clients send them (stops in between included), and a "stopped" only when the others still
show the user typing (a notice passed on within `lasts`, not stopped since). A message from the
user ends their typing on every client, so a send lets the next "is typing" through at once.
Each instance decides for its own sockets: a user typing in two tabs on two instances may be
passed on twice as often, which costs a notice, not a wrong state.
"""

from __future__ import annotations

# Clients show a notice this long unless another renews it; they renew every TYPING_INTERVAL.
TYPING_INTERVAL_SECONDS = 3.0
TYPING_LASTS_SECONDS = 6.0


class TypingGate:
    """Per user and conversation, when an "is typing" was last passed on and whether the others
    still show it (pure: the caller gives the time). At most one "is typing" every `interval`,
    however the client alternates it with stops; a stop only while it shows."""

    def __init__(
        self,
        interval: float = TYPING_INTERVAL_SECONDS,
        lasts: float = TYPING_LASTS_SECONDS,
    ) -> None:
        self._interval = interval
        self._lasts = lasts
        # user -> conversation -> (when the last "is typing" went, whether it still shows)
        self._passed: dict[str, dict[str, tuple[float, bool]]] = {}

    def passes(self, user_id: str, conversation_id: str, active: bool, now: float) -> bool:
        """Whether this notice goes to the other members."""
        passed = self._passed.get(user_id)
        entry = passed.get(conversation_id) if passed is not None else None
        if not active:
            if entry is None or not entry[1] or now - entry[0] >= self._lasts:
                return False
            self._passed[user_id][conversation_id] = (entry[0], False)
            return True
        if entry is not None and now - entry[0] < self._interval:
            return False
        if passed is None:
            passed = self._passed[user_id] = {}
        else:
            self._expire(passed, now)
        passed[conversation_id] = (now, True)
        return True

    def sent(self, user_id: str, conversation_id: str) -> None:
        """The user sent a message there: their typing ended everywhere, and the next "is
        typing" may go at once."""
        passed = self._passed.get(user_id)
        if passed is not None:
            passed.pop(conversation_id, None)
            if not passed:
                del self._passed[user_id]

    def forget(self, user_id: str) -> None:
        """The user has no socket here any more."""
        self._passed.pop(user_id, None)

    def __len__(self) -> int:
        return sum(len(passed) for passed in self._passed.values())

    def _expire(self, passed: dict[str, tuple[float, bool]], now: float) -> None:
        """Forget a user's notices older than both limits: nothing they decide is left."""
        horizon = max(self._interval, self._lasts)
        for conversation_id in [c for c, (at, _) in passed.items() if now - at >= horizon]:
            del passed[conversation_id]
