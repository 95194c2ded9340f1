"""Turning an access token into a signed-in user, the same way on every service and socket."""

from __future__ import annotations

from dataclasses import dataclass

from backend_services.core.errors import TokenRevoked, Unauthorized
from backend_services.core.schemas import User
from backend_services.core.security import TokenClaims, TokenIssuer
from backend_services.core.store import Store


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    claims: TokenClaims


class SessionVerifier:
    def __init__(self, issuer: TokenIssuer, store: Store) -> None:
        self._issuer = issuer
        self._store = store

    async def verify(self, token: str) -> Session:
        """Raise `Unauthorized` (or a subclass) unless the token is valid, live and not revoked."""
        claims = self._issuer.decode(token)
        if await self._store.revoked.is_revoked(claims.token_id):
            raise TokenRevoked()
        user = await self._store.users.get(claims.user_id)
        if user is None:
            raise Unauthorized("This account no longer exists.")
        return Session(user=user, claims=claims)
