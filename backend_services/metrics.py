"""Prometheus metrics shared by both services: each app's registry and `/metrics`, its HTTP
requests (with the request id and access log line they share), and its MongoDB commands.

Every figure a service adds lives in its own registry (one per app, so that several apps in
one process, as in the tests, count apart). `/metrics` answers on the service's own port, to
the scraper on the private network only: the public load balancer refuses the path
(deploy/nginx/nginx.conf, docs/deploy.md), and a request that came through any proxy (it has
`X-Forwarded-For`) is answered 404 here too, however its path was spelled.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.registry import Collector
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
    ServerHeartbeatFailedEvent,
    ServerHeartbeatListener,
    ServerHeartbeatStartedEvent,
    ServerHeartbeatSucceededEvent,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend_services import logs

access_log = logging.getLogger("letschat.access")
# No `_created` twin of every series: it doubles what is stored and nobody graphs it.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Seconds: from a fast local answer to the store's operation timeout (5 s by default).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A request id a client or proxy sends is kept if it looks like one; any other gets a new one.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
REQUEST_ID_HEADER = "x-request-id"
UNMATCHED_ROUTE = "unmatched"


class Metrics:
    """One service's registry, with the figures every service has."""

    def __init__(self, service: str, version: str) -> None:
        self.registry = CollectorRegistry()
        Info("letschat_service", "Which service this is.", registry=self.registry).info(
            {"service": service, "version": version}
        )
        self.requests = Counter(
            "letschat_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "letschat_http_request_duration_seconds",
            "From a request's start to its response's end, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "letschat_store_command_duration_seconds",
            "MongoDB commands from sending to the reply, by command.",
            ["command"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store_errors = Counter(
            "letschat_store_command_errors_total",
            "MongoDB commands that failed once sent (server errors, lost connections).",
            ["command"],
            registry=self.registry,
        )
        # A command that never got a connection (the server down) sends no command event: the
        # driver's own checks of the server tell that.
        self.store_up = Gauge(
            "letschat_store_up",
            "1 while the driver's last check of MongoDB succeeded, 0 after one failed.",
            registry=self.registry,
        )
        self.store_check_failures = Counter(
            "letschat_store_check_failures",
            "The driver's checks of MongoDB (every few seconds) that failed.",
            registry=self.registry,
        )

    def add(self, *collectors: Collector) -> None:
        for collector in collectors:
            self.registry.register(collector)

    def store_listeners(self) -> list[CommandListener | ServerHeartbeatListener]:
        return [_StoreListener(self), _StoreChecks(self)]

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/metrics", include_in_schema=False)
        async def metrics(request: Request) -> Response:
            if "x-forwarded-for" in request.headers:  # Through a proxy: not the scraper.
                return Response(status_code=404)
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return router


class _StoreListener(CommandListener):
    """pymongo's command events into the store's figures (called in the driver, briefly)."""

    def __init__(self, metrics: Metrics) -> None:
        self._seconds = metrics.store_seconds
        self._errors = metrics.store_errors

    def started(self, event: CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self._seconds.labels(event.command_name).observe(event.duration_micros / 1e6)

    def failed(self, event: CommandFailedEvent) -> None:
        self._seconds.labels(event.command_name).observe(event.duration_micros / 1e6)
        self._errors.labels(event.command_name).inc()


class _StoreChecks(ServerHeartbeatListener):
    """The driver's periodic checks of the server: whether MongoDB answers at all."""

    def __init__(self, metrics: Metrics) -> None:
        self._up = metrics.store_up
        self._failures = metrics.store_check_failures

    def started(self, event: ServerHeartbeatStartedEvent) -> None:
        pass

    def succeeded(self, event: ServerHeartbeatSucceededEvent) -> None:
        self._up.set(1)

    def failed(self, event: ServerHeartbeatFailedEvent) -> None:
        self._up.set(0)
        self._failures.inc()


class RequestTelemetry:
    """ASGI middleware: each HTTP request gets an id (the client's `X-Request-ID` if it sent a
    sane one; echoed on the response) that every log line of the request carries, is counted
    and timed by its route template, and is logged once when answered. WebSockets pass through
    (the socket endpoint binds its own connection id)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, *, log_requests: bool, quiet: Iterable[str] = ()
    ) -> None:
        self.app = app
        self._metrics = metrics
        # In text logs uvicorn's access line says it already.
        self._log_requests = log_requests
        # Routes polled all day (health checks, scrapes): counted, not logged.
        self._quiet = frozenset(quiet)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, REQUEST_ID_HEADER)
        request_id = given if given and REQUEST_ID.match(given) else uuid.uuid4().hex
        status = 500  # Unless a response starts: an exception escaped the app.
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        with logs.bound(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
                method = scope["method"]
                self._metrics.requests.labels(route, method, str(status)).inc()
                self._metrics.request_seconds.labels(route).observe(elapsed)
                if self._log_requests and route not in self._quiet:
                    access_log.info(
                        "%s %s %d",
                        method,
                        route,
                        status,
                        extra={
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 1),
                        },
                    )


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return str(value.decode("latin-1"))
    return None
