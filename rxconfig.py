"""Reflex configuration. Service URLs and origins come from the environment (see .env.example)."""

from __future__ import annotations

import os

import reflex as rx

from letschat_app import csp, failover, serving

serving.install()
failover.install()

_frontend_port = int(os.environ.get("LETSCHAT_FRONTEND_PORT", "3000"))
_backend_port = int(os.environ.get("LETSCHAT_REFLEX_BACKEND_PORT", "8000"))

_state_manager_mode = os.environ.get("REFLEX_STATE_MANAGER_MODE") or (
    "redis" if os.environ.get("REFLEX_REDIS_URL") else "memory"
)

config = rx.Config(
    app_name="letschat_app",
    # No frontend_port here: Reflex treats it like the --frontend-port flag, which a backend-only
    # production run refuses. The launcher and the images pass the ports they use.
    backend_port=_backend_port,
    api_url=os.environ.get("LETSCHAT_REFLEX_API_URL", f"http://127.0.0.1:{_backend_port}"),
    deploy_url=os.environ.get("LETSCHAT_PUBLIC_URL", f"http://127.0.0.1:{_frontend_port}"),
    telemetry_enabled=False,
    # One backend process keeps every tab's state in memory: the disk manager pickles each
    # changed state to a file (a third of the backend's CPU per delivered message), and a tab
    # whose state is lost in a restart starts afresh from the services, losing nothing. Several
    # backend processes share states in Redis (REFLEX_REDIS_URL, as compose and ECS set it).
    state_manager_mode=rx.constants.StateManagerMode(_state_manager_mode),
    # Proxies in front of this backend that append to X-Forwarded-For (1 behind nginx or an ALB).
    # The address they report is forwarded to the auth service, which throttles logins per
    # client address: without it every browser would share the load balancer's.
    trusted_proxy_hops=int(os.environ.get("LETSCHAT_TRUSTED_PROXY_HOPS", "0")),
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", radius="large")),
        # The page policy on the Vite dev server's responses (the backend's are csp.py's too).
        csp.DevServerPolicy(),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
    cors_allowed_origins=[
        origin.strip()
        for origin in os.environ.get(
            "LETSCHAT_APP_ORIGINS",
            f"http://localhost:{_frontend_port},http://127.0.0.1:{_frontend_port}",
        ).split(",")
        if origin.strip()
    ],
)
