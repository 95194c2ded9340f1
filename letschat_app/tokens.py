"""Keeping a browser's session fresh, without Reflex: when an access token is due for renewal,
and one refresh per session at a time in this process.

Every tab of a browser shares one session (its token pair lives in localStorage), but each tab
has its own state in the Reflex backend, so two tabs may notice at the same moment that the
access token is due. `TokenKeeper` makes them share one refresh, and hands a tab that still holds
a refresh token another tab already replaced the newer pair instead of letting it present the
stale one (which the auth service would take for a stolen token after its short grace).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend_services.core.schemas import TokenResponse

# Renew when less than this share of an access token's life is left (2 minutes of 10), so a
# request made just before expiry never carries an expired token.
RENEW_AT_SHARE = 0.2
# Sessions remembered; the least recently renewed are forgotten first.
KEEP_SESSIONS = 10_000


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


Refresh = Callable[[str], Awaitable[TokenResponse]]


class TokenKeeper:
    """Renews token pairs, one refresh per session at a time, remembering the newest pair."""

    def __init__(self, *, keep: int = KEEP_SESSIONS) -> None:
        self._keep = keep
        self._newest: OrderedDict[str, tuple[int, TokenResponse]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def renew(self, refresh_token: str, refresh: Refresh) -> TokenResponse:
        """The pair after `refresh_token`: a newer one another tab already got, or a new one
        from `refresh` (whose errors pass through)."""
        place = place_of(refresh_token)
        if place is None:
            return await refresh(refresh_token)
        lock = self._locks.setdefault(place.session_id, asyncio.Lock())
        try:
            async with lock:
                newer = self._newest.get(place.session_id)
                if newer is not None and newer[0] > place.generation:
                    return newer[1]
                response = await refresh(refresh_token)
                self._remember(response)
                return response
        finally:
            if not lock.locked() and self._locks.get(place.session_id) is lock:
                del self._locks[place.session_id]

    def forget(self, refresh_token: str) -> None:
        """The session ended: nobody should be handed its pair again."""
        place = place_of(refresh_token)
        if place is not None:
            self._newest.pop(place.session_id, None)

    def _remember(self, response: TokenResponse) -> None:
        place = place_of(response.refresh_token)
        if place is None:
            return
        self._newest[place.session_id] = (place.generation, response)
        self._newest.move_to_end(place.session_id)
        while len(self._newest) > self._keep:
            self._newest.popitem(last=False)

    def __len__(self) -> int:
        return len(self._newest)
