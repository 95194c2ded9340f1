"""The message service: conversations and messages over REST, live delivery over `/ws`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from pymongo.errors import PyMongoError

from backend_services import VERSION
from backend_services.core.broker import Broker, create_broker
from backend_services.core.config import MessageSettings
from backend_services.core.security import TokenIssuer
from backend_services.core.store import Policy, Store
from backend_services.message_service import routes, websocket
from backend_services.message_service.hub import Hub
from backend_services.message_service.periodic import every
from backend_services.message_service.services import MessageServices
from backend_services.message_service.stats import SocketCollector
from backend_services.metrics import Metrics
from backend_services.web import (
    health_router,
    install_drain_guard,
    install_error_handlers,
    install_telemetry,
)

logger = logging.getLogger("letschat.message")


def change_policy(settings: MessageSettings) -> Policy:
    def window(seconds: float) -> timedelta | None:
        return timedelta(seconds=seconds) if seconds else None

    return Policy(
        edit_window=window(settings.edit_window_seconds),
        delete_window=window(settings.delete_window_seconds),
        creator_deletes=settings.creator_deletes,
    )


async def _index_older(store: Store) -> None:
    try:
        given = await store.search.index_older()
    except PyMongoError as exc:
        logger.warning("older messages not indexed for search (%r); next start tries again", exc)
        return
    except Exception:
        logger.exception("older messages not indexed for search; next start tries again")
        return
    if given:
        logger.info("older messages indexed for search: %d", given)


def create_app(
    settings: MessageSettings, *, store: Store | None = None, broker: Broker | None = None
) -> FastAPI:
    """Build the app; the store and broker are created from settings unless given."""
    metrics = Metrics("message", VERSION)
    store = store or Store.connect(
        settings.mongodb_url,
        settings.mongodb_db,
        hole_grace=timedelta(seconds=settings.seq_hole_grace_seconds),
        timeout_ms=settings.mongodb_timeout_ms,
        event_listeners=metrics.store_listeners(),
    )
    store.changes.policy = change_policy(settings)
    hub = Hub(
        broker or create_broker(settings.redis_url, timeout=settings.redis_timeout_ms / 1000),
        store,
        channel_prefix=settings.channel_prefix,
        resume_limit=settings.resume_limit,
    )
    issuer = TokenIssuer(
        secret=settings.jwt_secret.get_secret_value(),
        audience=settings.jwt_audience,
        lifetime=timedelta(seconds=settings.access_token_seconds),
    )
    services = MessageServices.build(settings, store, hub, issuer)
    metrics.add(
        SocketCollector(hub.stats, lambda: hub.socket_count, lambda: hub.subscription_count)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.prepare()
        await hub.start()
        services.reads.start()
        await services.presence.start()
        # Messages from before search: found by their words once this has gone through them.
        backfill = asyncio.create_task(_index_older(store), name="search backfill")
        try:
            # Sockets whose session ended, topics that missed a publish, sockets still following
            # a conversation their user left: each put right within its period.
            async with (
                every(settings.session_sweep_seconds, hub.sweep, "session sweep"),
                every(
                    settings.membership_recheck_seconds,
                    hub.recheck_membership,
                    "membership recheck",
                ),
                every(settings.presence_beat_seconds, services.presence.beat, "presence beat"),
            ):
                yield
        finally:
            backfill.cancel()
            await asyncio.wait({backfill})
            await services.presence.stop()
            await services.reads.close()
            await hub.stop()
            await store.close()

    app = FastAPI(title="Let's Chat message service", version=VERSION, lifespan=lifespan)
    app.state.services = services
    install_error_handlers(app)
    install_drain_guard(app)
    install_telemetry(app, metrics)
    app.include_router(health_router({"mongodb": store.database.ping, "broker": hub.ping}))
    app.include_router(routes.router)
    app.include_router(websocket.router)
    return app
