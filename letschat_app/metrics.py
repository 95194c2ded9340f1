"""The web app backend's figures, at `/metrics` of the Reflex backend (for the private
network's scraper: the public load balancer answers that path 404, and a request that came
through a proxy, with `X-Forwarded-For`, gets 404 here too).

The figures are the process's: run one server worker per container (GRANIAN_WORKERS=1, as
compose and ECS do) and scale with containers, or each scrape sees one worker's.

Each tab with the chat open holds one socket to the message service from this backend: how
many are open, what comes through them, and how often they are lost and opened again.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from starlette.types import ASGIApp, Receive, Scope, Send

disable_created_metrics()
REGISTRY = CollectorRegistry()
LIVE_SOCKETS = Gauge(
    "letschat_web_live_sockets",
    "Tabs holding a socket to the message service (one each while the chat is open).",
    registry=REGISTRY,
)
FRAMES = Counter(
    "letschat_web_frames_received",
    "Frames the tabs' sockets received from the message service, by type.",
    ["type"],
    registry=REGISTRY,
)
RECONNECTS = Counter(
    "letschat_web_reconnects",
    "Times a tab's socket to the message service was lost or refused and tried again.",
    registry=REGISTRY,
)
SESSIONS_ENDED = Counter(
    "letschat_web_sessions_ended",
    "Tabs sent to the login page because a service refused their session (ended elsewhere, "
    "expired, revoked); logging out is not counted.",
    registry=REGISTRY,
)

_METRICS_PATH = "/metrics"


def count_frames(types: list[str]) -> None:
    for kind in types:
        FRAMES.labels(kind).inc()


def serve_metrics(app: ASGIApp) -> ASGIApp:
    """An `api_transformer` of rx.App: GET /metrics answered here, the rest passed on."""

    async def metrics_or_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != _METRICS_PATH:
            await app(scope, receive, send)
            return
        if any(name.lower() == b"x-forwarded-for" for name, _ in scope["headers"]):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = generate_latest(REGISTRY)
        headers = [(b"content-type", CONTENT_TYPE_LATEST.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return metrics_or_app
