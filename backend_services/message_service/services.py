"""What the message service's routes and socket share: the store, the hub and the operations
both edges perform the same way."""

from __future__ import annotations

from dataclasses import dataclass

from backend_services.core.config import MessageSettings
from backend_services.core.errors import RateLimited
from backend_services.core.ratelimit import RateLimiter
from backend_services.core.schemas import Message
from backend_services.core.sessions import Session, SessionVerifier
from backend_services.core.store import Store
from backend_services.message_service.hub import Hub


@dataclass(frozen=True, slots=True)
class MessageServices:
    settings: MessageSettings
    store: Store
    hub: Hub
    verifier: SessionVerifier
    send_limiter: RateLimiter

    async def send(
        self, session: Session, conversation_id: str, body: str, client_msg_id: str
    ) -> tuple[Message, bool]:
        """Store a message (idempotent on `client_msg_id`), then fan it out if it is new."""
        wait = self.send_limiter.try_acquire(session.user.id)
        if wait > 0:
            raise RateLimited(retry_after=max(1, round(wait + 0.5)))
        msg, created = await self.store.messages.append(
            conversation_id, session.user, body, client_msg_id
        )
        if created:
            await self.hub.publish_message(msg)
        return msg, created

    async def mark_read(
        self, session: Session, conversation_id: str, seq: int, *, origin: str | None
    ) -> int:
        """Move the read marker and tell the user's other sockets."""
        stored = await self.store.conversations.mark_read(conversation_id, session.user.id, seq)
        await self.hub.publish_read(session.user.id, conversation_id, stored, origin)
        return stored
