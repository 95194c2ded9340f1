"""FastAPI dependencies of the auth service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from backend_services import logs
from backend_services.auth_service.services import USER_AGENT_CHARS, AuthServices, Client
from backend_services.auth_service.stats import AuthStats
from backend_services.core.sessions import Session
from backend_services.web import bearer_token, client_address


def get_services(request: Request) -> AuthServices:
    services: AuthServices = request.app.state.services
    return services


Services = Annotated[AuthServices, Depends(get_services)]


async def get_stats(request: Request) -> AuthStats:  # async: no thread for a lookup.
    stats: AuthStats = request.app.state.stats
    return stats


Stats = Annotated[AuthStats, Depends(get_stats)]


async def get_session(
    services: Services, authorization: Annotated[str | None, Header()] = None
) -> Session:
    session = await services.verifier.verify(bearer_token(authorization))
    logs.bind(user_id=session.user.id)
    return session


CurrentSession = Annotated[Session, Depends(get_session)]


def get_client(request: Request, services: Services) -> Client:
    return Client(
        address=client_address(request, services.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent", "")[:USER_AGENT_CHARS],
    )


CurrentClient = Annotated[Client, Depends(get_client)]
