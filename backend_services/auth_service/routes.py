"""REST routes of the auth service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from backend_services.auth_service.deps import CurrentClient, CurrentSession, Services, Stats
from backend_services.auth_service.stats import LOGIN_OUTCOMES, REFRESH_OUTCOMES, REGISTER_OUTCOMES
from backend_services.core.errors import NotFound
from backend_services.core.schemas import (
    EndedSessions,
    LoginRequest,
    ObjectIdStr,
    PasswordChangeRequest,
    RefreshRequest,
    RegisterRequest,
    SessionInfo,
    TokenResponse,
    User,
)

router = APIRouter()


@router.post("/auth/register", status_code=201, tags=["auth"])
async def register(
    body: RegisterRequest, services: Services, client: CurrentClient, stats: Stats
) -> TokenResponse:
    """Create an account and sign in (a new session). Usernames are lower-cased; 409 if taken."""
    with stats.counting(stats.registrations, REGISTER_OUTCOMES):
        return await services.register(body, client)


@router.post("/auth/login", tags=["auth"])
async def login(
    body: LoginRequest, services: Services, client: CurrentClient, stats: Stats
) -> TokenResponse:
    """Sign in: a new session, with an access token and the refresh token that renews it.

    Failed attempts are counted per username and, separately, per client address; over either
    limit the answer is 429 `too_many_attempts` with `Retry-After`, before any password is checked.
    """
    with stats.counting(stats.logins, LOGIN_OUTCOMES):
        return await services.login(body, client)


@router.post("/auth/refresh", tags=["auth"])
async def refresh(
    body: RefreshRequest, services: Services, client: CurrentClient, stats: Stats
) -> TokenResponse:
    """Trade a refresh token for a new access token and the next refresh token.

    Each refresh token works once; the one just replaced works again for a short grace and
    gets the same answer (tabs refreshing at the same moment). Any other reuse of a replaced
    token ends its session: 401 `refresh_token_reused`. A malformed, forged or unknown token is
    401 `refresh_token_invalid`, an expired session 401 `refresh_token_expired`, an ended one 401
    `refresh_token_revoked` (its message says why). 429 `rate_limited` per client address.
    """
    with stats.counting(stats.refreshes, REFRESH_OUTCOMES):
        return await services.refresh(body, client)


@router.get("/auth/me", tags=["auth"])
async def me(session: CurrentSession) -> User:
    return session.user


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(session: CurrentSession, services: Services) -> None:
    """End this session: its refresh token and every access token issued from it stop working,
    and its open sockets are closed (4503) within a sweep interval."""
    await services.logout(session)


@router.get("/auth/sessions", tags=["sessions"])
async def list_sessions(session: CurrentSession, services: Services) -> list[SessionInfo]:
    """The devices you are signed in on, most recently used first; `current` is this one."""
    return await services.sessions(session)


@router.delete("/auth/sessions/{session_id}", status_code=204, tags=["sessions"])
async def end_session(
    session_id: Annotated[ObjectIdStr, Path()], session: CurrentSession, services: Services
) -> None:
    """End one of your sessions (this one too: that is a logout). 404 if you have none such."""
    if not await services.end_session(session, session_id):
        raise NotFound("No such session.")


@router.post("/auth/sessions/end-others", tags=["sessions"])
async def end_other_sessions(session: CurrentSession, services: Services) -> EndedSessions:
    """Log out everywhere else: every session but this one ends."""
    return EndedSessions(ended=await services.end_other_sessions(session))


@router.post("/auth/password", tags=["auth"])
async def change_password(
    body: PasswordChangeRequest, session: CurrentSession, services: Services, client: CurrentClient
) -> EndedSessions:
    """Change your password (the current one is required: 403 `wrong_password` otherwise,
    throttled like logins). Every other session ends; this one goes on."""
    return EndedSessions(ended=await services.change_password(session, body, client))


@router.get("/users", tags=["users"])
async def search_users(
    session: CurrentSession,
    services: Services,
    q: Annotated[str, Query(max_length=32)] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> list[User]:
    """People whose username starts with `q` (yourself excluded), to start a conversation with."""
    return await services.store.users.search(q, limit=limit, exclude=session.user.id)
