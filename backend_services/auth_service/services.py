"""Accounts and sessions: what the auth service's routes call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from backend_services.core.config import AuthSettings
from backend_services.core.errors import InvalidCredentials, TooManyAttempts
from backend_services.core.schemas import LoginRequest, RegisterRequest, TokenResponse, User
from backend_services.core.security import TokenIssuer, dummy_hash, hash_password, verify_password
from backend_services.core.sessions import SessionVerifier
from backend_services.core.store import LoginThrottle, Store


@dataclass(slots=True)
class AuthServices:
    settings: AuthSettings
    store: Store
    issuer: TokenIssuer
    verifier: SessionVerifier
    throttle: LoginThrottle
    _dummy_hash: str | None = field(default=None, init=False)

    async def register(self, request: RegisterRequest) -> TokenResponse:
        password_hash = await asyncio.to_thread(
            hash_password, request.password, self.settings.bcrypt_rounds
        )
        display_name = request.display_name or request.username
        user = await self.store.users.create(request.username, password_hash, display_name)
        return self._token_for(user)

    async def login(self, request: LoginRequest, client: str) -> TokenResponse:
        """Check credentials; unknown users and wrong passwords fail alike, and slowly."""
        now = datetime.now(UTC)
        key = f"{request.username.strip().lower()}|{client}"
        retry_after = await self.throttle.attempt(key, now)
        if retry_after is not None:
            raise TooManyAttempts(retry_after=retry_after)
        found = await self.store.users.get_with_hash(request.username)
        password_hash = found[1] if found else await self._unknown_user_hash()
        valid = await asyncio.to_thread(verify_password, request.password, password_hash)
        if found is None or not valid:
            raise InvalidCredentials()
        await self.throttle.reset(key)
        return self._token_for(found[0])

    def _token_for(self, user: User) -> TokenResponse:
        token, _ = self.issuer.issue(user.id)
        return TokenResponse(
            user=user, access_token=token, expires_in=int(self.issuer.lifetime.total_seconds())
        )

    async def _unknown_user_hash(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(dummy_hash, self.settings.bcrypt_rounds)
        return self._dummy_hash
