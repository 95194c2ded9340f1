"""REST routes of the auth service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from backend_services.auth_service.deps import CurrentSession, Services
from backend_services.core.schemas import LoginRequest, RegisterRequest, TokenResponse, User

router = APIRouter()


@router.post("/auth/register", status_code=201, tags=["auth"])
async def register(body: RegisterRequest, services: Services) -> TokenResponse:
    """Create an account and sign in. Usernames are lower-cased; 409 if taken."""
    return await services.register(body)


@router.post("/auth/login", tags=["auth"])
async def login(body: LoginRequest, services: Services, request: Request) -> TokenResponse:
    """Sign in. Repeated failures for one username from one client answer 429 for a while."""
    client = request.client.host if request.client else "unknown"
    return await services.login(body, client)


@router.get("/auth/me", tags=["auth"])
async def me(session: CurrentSession) -> User:
    return session.user


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(session: CurrentSession, services: Services) -> None:
    """Revoke this token everywhere; open sockets using it are closed within a sweep interval."""
    await services.store.revoked.revoke(session.claims)


@router.get("/users", tags=["users"])
async def search_users(
    session: CurrentSession,
    services: Services,
    q: Annotated[str, Query(max_length=32)] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> list[User]:
    """People whose username starts with `q` (yourself excluded), to start a conversation with."""
    return await services.store.users.search(q, limit=limit, exclude=session.user.id)
