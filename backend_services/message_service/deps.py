"""FastAPI dependencies of the message service, for its routes and its socket alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from starlette.requests import HTTPConnection

from backend_services import logs
from backend_services.core.sessions import Session
from backend_services.message_service.conversations import ConversationService
from backend_services.message_service.messages import MessageService
from backend_services.message_service.presence import PresenceService
from backend_services.message_service.search import SearchService
from backend_services.message_service.services import MessageServices
from backend_services.web import bearer_token


def get_services(connection: HTTPConnection) -> MessageServices:
    """The app's services, for a request or a socket (both are HTTP connections)."""
    services: MessageServices = connection.app.state.services
    return services


Services = Annotated[MessageServices, Depends(get_services)]


def get_conversations(services: Services) -> ConversationService:
    return services.conversations


def get_messages(services: Services) -> MessageService:
    return services.messages


def get_presence(services: Services) -> PresenceService:
    return services.presence


Conversations = Annotated[ConversationService, Depends(get_conversations)]
Messages = Annotated[MessageService, Depends(get_messages)]
PresenceDep = Annotated[PresenceService, Depends(get_presence)]


def get_search(services: Services) -> SearchService:
    return services.search


Search = Annotated[SearchService, Depends(get_search)]


async def get_session(
    services: Services, authorization: Annotated[str | None, Header()] = None
) -> Session:
    session = await services.verifier.verify(bearer_token(authorization))
    logs.bind(user_id=session.user.id)
    return session


CurrentSession = Annotated[Session, Depends(get_session)]
