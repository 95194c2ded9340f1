"""What the message service's routes and socket share: its services, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from backend_services.core.config import MessageSettings
from backend_services.core.presence import create_registry
from backend_services.core.ratelimit import RateLimiter
from backend_services.core.security import TokenIssuer
from backend_services.core.sessions import SessionVerifier
from backend_services.core.store import Store
from backend_services.message_service.conversations import ConversationService
from backend_services.message_service.hub import Hub
from backend_services.message_service.messages import MessageService
from backend_services.message_service.presence import PresenceService
from backend_services.message_service.reads import ReadBatcher
from backend_services.message_service.search import SearchService


@dataclass(frozen=True, slots=True)
class MessageServices:
    settings: MessageSettings
    hub: Hub
    verifier: SessionVerifier
    conversations: ConversationService
    messages: MessageService
    presence: PresenceService
    search: SearchService

    @classmethod
    def build(
        cls, settings: MessageSettings, store: Store, hub: Hub, issuer: TokenIssuer
    ) -> MessageServices:
        reads = ReadBatcher(
            store.reads,
            hub.publish_reads,
            interval=settings.read_flush_seconds,
            repeat=settings.read_repeat_seconds,
        )
        registry = create_registry(
            settings.redis_url,
            prefix=settings.channel_prefix,
            timeout=settings.redis_timeout_ms / 1000,
        )
        presence = PresenceService(registry, hub, store, ttl=settings.presence_ttl_seconds)
        hub.on_presence_setting = presence.setting_changed
        hub.on_follow = presence.followed
        send_limiter = RateLimiter(
            burst=settings.send_burst, rate_per_second=settings.send_rate_per_second
        )
        return cls(
            settings=settings,
            hub=hub,
            verifier=SessionVerifier(issuer, store),
            conversations=ConversationService(
                store,
                hub,
                adds_per_hour=settings.adds_per_hour,
                max_groups_per_user=settings.max_groups_per_user,
            ),
            messages=MessageService(store, hub, send_limiter, reads),
            presence=presence,
            search=SearchService(store),
        )

    @property
    def reads(self) -> ReadBatcher:
        """The instance's batches of read markers (started and flushed by the app lifespan)."""
        return self.messages.reads
