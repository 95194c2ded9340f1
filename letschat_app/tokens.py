"""Keeping a browser's session fresh, without Reflex: when an access token is due for renewal,
and one refresh per token in this process.

Every tab of a browser shares one session (its token pair lives in localStorage), but each tab
has its own state in the Reflex backend, so several tabs may notice at the same moment that the
access token is due and present the same refresh token. `TokenKeeper` lets them share one
refresh: the pair that replaced a token is handed to whoever presents *that exact token* again
for a short while, as the auth service's own grace would (and without its round trip). It is
never handed for any other token: knowing a session's id proves nothing, and a token older than
the one just replaced must reach the auth service, which takes it for a stolen copy.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from letschat_protocol import TokenResponse

# Renew when less than this share of an access token's life is left (2 minutes of 10), so a
# request made just before expiry never carries an expired token.
RENEW_AT_SHARE = 0.2
# Answers remembered (the oldest are forgotten first), and for how long: less than the auth
# service's grace for the token just replaced (LETSCHAT_REFRESH_GRACE_SECONDS, 60 s).
KEEP_ANSWERS = 10_000
KEEP_SECONDS = 30.0


def _claims(token: str) -> dict[str, object]:
    """The payload of a JWT, unverified: only to know when to renew it (the services check it)."""
    try:
        payload = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def renew_at(token: str) -> float:
    """The wall-clock time at which `token` should be renewed (0: now; it is unreadable)."""
    claims = _claims(token)
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or not isinstance(issued, int | float):
        return 0.0
    return float(expires) - (float(expires) - float(issued)) * RENEW_AT_SHARE


def due(token: str, now: float | None = None) -> bool:
    return (time.time() if now is None else now) >= renew_at(token)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a refresh token stands: its session and generation (see core/security.py)."""

    session_id: str
    generation: int


def place_of(refresh_token: str) -> Place | None:
    parts = refresh_token.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    return Place(parts[0], int(parts[1]))


def behind(held: str, newest: str) -> bool:
    """Whether refresh token `held` is an older generation of `newest`'s session."""
    held_place, newest_place = place_of(held), place_of(newest)
    return (
        held_place is not None
        and newest_place is not None
        and held_place.session_id == newest_place.session_id
        and held_place.generation < newest_place.generation
    )


Refresh = Callable[[str], Awaitable[TokenResponse]]


def digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


class TokenKeeper:
    """Renews token pairs, one refresh per token at a time, remembering each answer briefly."""

    def __init__(self, *, keep: int = KEEP_ANSWERS, keep_seconds: float = KEEP_SECONDS) -> None:
        self._keep = keep
        self._keep_seconds = keep_seconds
        # Digest of a refresh token -> when it was replaced, and the pair that replaced it.
        self._answers: OrderedDict[str, tuple[float, TokenResponse]] = OrderedDict()
        # One lock per token being renewed. Its holder and waiters keep it alive; once none is
        # left, nothing refers to it and the entry goes by itself.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def renew(self, refresh_token: str, refresh: Refresh) -> TokenResponse:
        """The pair after `refresh_token`: the one another tab just got for it, or a new one
        from `refresh` (whose errors pass through)."""
        key = digest(refresh_token)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            answered = self._answers.get(key)
            if answered is not None and time.monotonic() - answered[0] <= self._keep_seconds:
                return answered[1]
            response = await refresh(refresh_token)
            self._remember(key, response)
            return response

    def _remember(self, key: str, response: TokenResponse) -> None:
        self._answers[key] = (time.monotonic(), response)
        self._answers.move_to_end(key)
        while len(self._answers) > self._keep:
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)
