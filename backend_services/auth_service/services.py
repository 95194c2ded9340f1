"""Accounts and sessions: what the auth service's routes call."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backend_services.core.config import AuthSettings
from backend_services.core.errors import (
    Conflict,
    InvalidCredentials,
    RateLimited,
    RefreshTokenExpired,
    RefreshTokenInvalid,
    RefreshTokenReused,
    RefreshTokenRevoked,
    TooManyAttempts,
    WrongPassword,
)
from backend_services.core.locks import KeyedLocks
from backend_services.core.ratelimit import RateLimiter
from backend_services.core.schemas import (
    LoginRequest,
    PasswordChangeRequest,
    RefreshRequest,
    RegisterRequest,
    SessionInfo,
    TokenResponse,
    User,
)
from backend_services.core.security import (
    RefreshToken,
    RefreshTokens,
    TokenIssuer,
    dummy_hash,
    hash_password,
    verify_password,
)
from backend_services.core.sessions import Session, SessionVerifier
from backend_services.core.store import EndReason, LoginThrottle, SessionRecord, Store
from backend_services.core.store.database import stored_now
from backend_services.core.store.sessions import ENDED_MESSAGES

logger = logging.getLogger("letschat.auth")

# What is kept of a user agent: enough to tell devices apart in the sessions list.
USER_AGENT_CHARS = 256


@dataclass(frozen=True, slots=True)
class Client:
    """Who is asking: the address `web.client_address` resolved, and the user agent."""

    address: str
    user_agent: str = ""


@dataclass(slots=True)
class AuthServices:
    settings: AuthSettings
    store: Store
    issuer: TokenIssuer
    refresh_tokens: RefreshTokens
    verifier: SessionVerifier
    # Failures per username, and per client address (a flood of made-up names from one place).
    by_username: LoginThrottle
    by_address: LoginThrottle
    refresh_limiter: RateLimiter
    # bcrypt costs ~250 ms of a core: one client address gets one hash at a time per instance, so
    # a flood from one place cannot take every core from everyone else.
    hashing: KeyedLocks = field(default_factory=KeyedLocks)
    _dummy_hash: str | None = field(default=None, init=False)

    @property
    def idle(self) -> timedelta:
        return timedelta(days=self.settings.session_idle_days)

    async def register(self, request: RegisterRequest, client: Client) -> TokenResponse:
        async with self.hashing.hold(client.address):
            password_hash = await asyncio.to_thread(
                hash_password, request.password, self.settings.bcrypt_rounds
            )
        display_name = request.display_name or request.username
        user = await self.store.users.create(request.username, password_hash, display_name)
        return await self._sign_in(user, client)

    async def login(self, request: LoginRequest, client: Client) -> TokenResponse:
        """Check credentials; unknown users and wrong passwords fail alike, and slowly.

        Every attempt is counted before it is checked (so concurrent guesses count too), per
        client address first: an address over its limit costs no bcrypt and no username count.
        """
        now = stored_now()
        address_key = f"address|{client.address}"
        username_key = f"username|{request.username.strip().lower()}"
        retry_after = await self.by_address.attempt(address_key, now)
        if retry_after is None:
            retry_after = await self.by_username.attempt(username_key, now)
            if retry_after is not None:
                # A locked username is no guess from this address: people behind one office
                # address retrying a name someone else locked must not lock the office out.
                await self.by_address.forgive(address_key)
        if retry_after is not None:
            raise TooManyAttempts(retry_after=retry_after)
        found = await self.store.users.get_with_hash(request.username)
        password_hash = found[1] if found else await self._unknown_user_hash()
        async with self.hashing.hold(client.address):
            valid = await asyncio.to_thread(verify_password, request.password, password_hash)
        if found is None or not valid:
            raise InvalidCredentials()
        await asyncio.gather(
            self.by_username.reset(username_key), self.by_address.forgive(address_key)
        )
        return await self._sign_in(found[0], client)

    async def refresh(self, request: RefreshRequest, client: Client) -> TokenResponse:
        """Replace a refresh token with the next one, and issue an access token with it.

        The token just replaced may come again for `refresh_grace_seconds` (two tabs refreshing
        at once, or an answer lost on the way): it gets the same next token. Any other reuse
        of a replaced token ends the session.
        """
        try:
            presented = self.refresh_tokens.parse(request.refresh_token)
        except RefreshTokenInvalid:
            self._limit_refreshes(f"address|{client.address}")
            raise
        # Per session, not per address: a thousand people behind one office address refresh
        # often in all, each of them seldom.
        self._limit_refreshes(f"session|{presented.session_id}")
        following = self.refresh_tokens.next(presented)
        now = stored_now()
        for _ in range(2):  # A second look only after losing a race to rotate.
            record = self._live(await self.store.sessions.get(presented.session_id), now)
            if presented.generation == record.generation:
                if presented.digest != record.token_hash:
                    raise RefreshTokenInvalid()
                rotated = await self.store.sessions.rotate(
                    record, following.digest, now=now, idle=self.idle, client_address=client.address
                )
                if rotated:
                    return await self._tokens(record, following)
                continue
            if presented.generation == record.generation - 1 and self._in_grace(
                record, presented, following, now
            ):
                return await self._tokens(record, following)
            if presented.generation > record.generation:
                raise RefreshTokenInvalid()
            break
        else:  # Lost two races in a row: not a reuse, but not a refresh either.
            raise Conflict("This session is being refreshed elsewhere; try again.")
        await self.store.sessions.end(presented.session_id, EndReason.REUSED)
        logger.warning(
            "refresh token reuse: ended session %s of user %s", record.id, record.user_id
        )
        reused = RefreshTokenReused()
        reused.ended_now = True
        raise reused

    async def logout(self, session: Session) -> None:
        await self.store.sessions.end(session.claims.session_id, EndReason.LOGOUT)

    async def sessions(self, session: Session) -> list[SessionInfo]:
        records = await self.store.sessions.live_of(session.user.id, stored_now())
        return [_info(record, record.id == session.claims.session_id) for record in records]

    async def end_session(self, session: Session, session_id: str) -> bool:
        """End one of the caller's sessions (its own: a logout); False if it has none such."""
        reason = EndReason.LOGOUT if session_id == session.claims.session_id else EndReason.ENDED
        return await self.store.sessions.end(session_id, reason, user_id=session.user.id)

    async def end_other_sessions(self, session: Session) -> int:
        return await self.store.sessions.end_all(
            session.user.id, EndReason.ENDED, keep=session.claims.session_id
        )

    async def change_password(
        self, session: Session, request: PasswordChangeRequest, client: Client
    ) -> int:
        """Check the current password (throttled like a login), set the new one and end every
        other session; how many were ended."""
        username_key = f"username|{session.user.username}"
        retry_after = await self.by_username.attempt(username_key, stored_now())
        if retry_after is not None:
            raise TooManyAttempts(retry_after=retry_after)
        current = await self.store.users.password_hash(session.user.id)
        if current is None:
            raise InvalidCredentials("This account no longer exists.")
        async with self.hashing.hold(client.address):
            valid = await asyncio.to_thread(verify_password, request.current_password, current)
            if not valid:
                raise WrongPassword()
            new_hash = await asyncio.to_thread(
                hash_password, request.new_password, self.settings.bcrypt_rounds
            )
        await self.store.users.set_password_hash(session.user.id, new_hash)
        await self.by_username.reset(username_key)
        return await self.store.sessions.end_all(
            session.user.id, EndReason.PASSWORD, keep=session.claims.session_id
        )

    # --- helpers -----------------------------------------------------------------------------

    async def _sign_in(self, user: User, client: Client) -> TokenResponse:
        session_id = uuid.uuid4().hex
        refresh = self.refresh_tokens.first(session_id)
        await self.store.sessions.create(
            session_id,
            user.id,
            refresh.digest,
            now=stored_now(),
            idle=self.idle,
            lifetime=timedelta(days=self.settings.session_max_days),
            user_agent=client.user_agent[:USER_AGENT_CHARS],
            client_address=client.address,
        )
        return self._response(user, session_id, refresh)

    async def _tokens(self, record: SessionRecord, refresh: RefreshToken) -> TokenResponse:
        user = await self.store.users.get(record.user_id)
        if user is None:
            await self.store.sessions.end(record.id, EndReason.ACCOUNT)
            raise RefreshTokenInvalid(ENDED_MESSAGES[EndReason.ACCOUNT])
        return self._response(user, record.id, refresh)

    def _response(self, user: User, session_id: str, refresh: RefreshToken) -> TokenResponse:
        token, _ = self.issuer.issue(user.id, session_id)
        return TokenResponse(
            user=user,
            access_token=token,
            expires_in=int(self.issuer.lifetime.total_seconds()),
            refresh_token=refresh.text,
            session_id=session_id,
        )

    def _limit_refreshes(self, key: str) -> None:
        wait = self.refresh_limiter.try_acquire(key)
        if wait:
            raise RateLimited("Too many refreshes; try again shortly.", retry_after=math.ceil(wait))

    @staticmethod
    def _live(record: SessionRecord | None, now: datetime) -> SessionRecord:
        """`record` if its session can be refreshed; else the refusal that says why."""
        if record is None:
            raise RefreshTokenInvalid()
        if record.ended_reason is EndReason.REUSED:
            raise RefreshTokenReused()
        if record.ended_reason is EndReason.ACCOUNT:
            raise RefreshTokenInvalid(ENDED_MESSAGES[EndReason.ACCOUNT])
        if record.ended_reason is not None:
            raise RefreshTokenRevoked(ENDED_MESSAGES[record.ended_reason])
        if record.expires_at <= now:
            raise RefreshTokenExpired()
        return record

    def _in_grace(
        self, record: SessionRecord, presented: RefreshToken, following: RefreshToken, now: datetime
    ) -> bool:
        """`presented` is the token the current one replaced, and it was replaced just now."""
        grace = timedelta(seconds=self.settings.refresh_grace_seconds)
        return (
            presented.digest == record.previous_hash
            and following.digest == record.token_hash
            and record.rotated_at is not None
            and now - record.rotated_at <= grace
        )

    async def _unknown_user_hash(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(dummy_hash, self.settings.bcrypt_rounds)
        return self._dummy_hash


def _info(record: SessionRecord, current: bool) -> SessionInfo:
    return SessionInfo(
        id=record.id,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        expires_at=record.expires_at,
        user_agent=record.user_agent,
        client_network=approximate(record.client_address),
        current=current,
    )


def approximate(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of `address`: where, roughly, not who exactly."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
