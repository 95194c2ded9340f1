"""The auth service: accounts, access tokens, people search."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from backend_services import VERSION
from backend_services.auth_service import routes
from backend_services.auth_service.services import AuthServices
from backend_services.auth_service.stats import AuthStats
from backend_services.core.config import AuthSettings, Environment
from backend_services.core.ratelimit import RateLimiter
from backend_services.core.security import RefreshTokens, TokenIssuer
from backend_services.core.sessions import SessionVerifier
from backend_services.core.store import LoginThrottle, Store
from backend_services.metrics import Metrics
from backend_services.web import (
    health_router,
    install_drain_guard,
    install_error_handlers,
    install_telemetry,
)

logger = logging.getLogger("letschat.auth")


def create_app(settings: AuthSettings, *, store: Store | None = None) -> FastAPI:
    metrics = Metrics("auth", VERSION)
    store = store or Store.connect(
        settings.mongodb_url,
        settings.mongodb_db,
        timeout_ms=settings.mongodb_timeout_ms,
        event_listeners=metrics.store_listeners(),
    )
    secret = settings.jwt_secret.get_secret_value()
    issuer = TokenIssuer(
        secret=secret,
        audience=settings.jwt_audience,
        lifetime=timedelta(seconds=settings.access_token_seconds),
    )
    window = settings.login_failure_window_seconds
    services = AuthServices(
        settings=settings,
        store=store,
        issuer=issuer,
        refresh_tokens=RefreshTokens(secret),
        verifier=SessionVerifier(issuer, store),
        by_username=LoginThrottle(
            store.database, max_failures=settings.login_max_failures, window_seconds=window
        ),
        by_address=LoginThrottle(
            store.database,
            max_failures=settings.login_max_failures_per_address,
            window_seconds=window,
        ),
        refresh_limiter=RateLimiter(
            burst=settings.refresh_burst, rate_per_second=settings.refresh_rate_per_second
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.database.prepare()  # Upgrades of stored data are the message service's.
        if not settings.trusted_proxies and settings.environment is not Environment.DEVELOPMENT:
            logger.warning(
                "LETSCHAT_TRUSTED_PROXIES is empty: X-Forwarded-For is ignored, so everyone "
                "behind the load balancer or the web app shares one client address for login "
                "throttling (set it to their addresses)"
            )
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(title="Let's Chat auth service", version=VERSION, lifespan=lifespan)
    app.state.services = services
    app.state.stats = AuthStats(metrics.registry)
    install_error_handlers(app)
    install_drain_guard(app)
    install_telemetry(app, metrics)
    app.include_router(health_router({"mongodb": store.database.ping}))
    app.include_router(routes.router)
    return app
