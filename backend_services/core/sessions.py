"""Turning an access token into a signed-in user, the same way on every service and socket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from backend_services.core.errors import TokenRevoked, Unauthorized
from backend_services.core.schemas import User
from backend_services.core.security import TokenClaims, TokenIssuer
from backend_services.core.store import Store
from backend_services.core.store.sessions import ENDED_MESSAGES


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    claims: TokenClaims
    # When the sign-in session expires unless it is used (refreshed) before: as it stood when
    # the token was verified. Only a refresh moves it, and that issues a new token.
    live_until: datetime


class SessionVerifier:
    def __init__(self, issuer: TokenIssuer, store: Store) -> None:
        self._issuer = issuer
        self._store = store

    async def verify(self, token: str) -> Session:
        """Raise `Unauthorized` (or a subclass) unless the token is valid, live and not revoked."""
        claims = self._issuer.decode(token)
        signed_in = await self._store.sessions.get(claims.session_id)
        if signed_in is None or signed_in.user_id != claims.user_id:
            raise Unauthorized("This session is not known.")
        if signed_in.ended_reason is not None:
            raise TokenRevoked(ENDED_MESSAGES[signed_in.ended_reason])
        if not signed_in.live(datetime.now(UTC)):
            raise TokenRevoked("This session has expired.")
        user = await self._store.users.get(claims.user_id)
        if user is None:
            raise Unauthorized("This account no longer exists.")
        return Session(user=user, claims=claims, live_until=signed_in.expires_at)
