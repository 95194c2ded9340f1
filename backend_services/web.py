"""The HTTP edge both services share: error mapping, health routes, bearer auth, serving."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from backend_services import logs
from backend_services.core.config import CommonSettings, IPNetwork
from backend_services.core.errors import (
    AppError,
    CloseCode,
    ErrorCode,
    InternalError,
    ServiceUnavailable,
    Unauthorized,
)
from backend_services.core.presence import PresenceUnavailable
from backend_services.deadlines import BodyDeadline, timed_http
from backend_services.headers import ResponseHeaders
from backend_services.metrics import Metrics, RequestTelemetry

logger = logging.getLogger("letschat")

HealthCheck = Callable[[], Awaitable[None]]
# Polled all day by load balancers and scrapers: counted, never logged one by one.
QUIET_ROUTES = ("/healthz", "/readyz", "/metrics")
# Each dependency gets this long to answer /readyz, all at once: a stalled one makes the
# instance not ready within this, for the load balancer to take it out.
READY_CHECK_SECONDS = 1.5

_HTTP_CODES = {
    400: "bad_request",
    401: ErrorCode.UNAUTHORIZED.value,
    403: "forbidden",
    404: ErrorCode.NOT_FOUND.value,
    405: "method_not_allowed",
    413: "payload_too_large",
    408: ErrorCode.REQUEST_TIMEOUT.value,
    415: "unsupported_media_type",
}


def client_address(request: Request, trusted: Sequence[IPNetwork]) -> str:
    """The address of whoever sent `request`: the peer, unless the peer is a trusted proxy; then
    the nearest address in X-Forwarded-For that is not one, read from the right (the left part
    of the header is whatever the client wrote, and anyone can write anything there)."""
    peer = request.client.host if request.client else ""
    if not trusted or not _within(peer, trusted):
        return peer or "unknown"
    hops = [hop.strip() for h in request.headers.getlist("x-forwarded-for") for hop in h.split(",")]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # Garbage: the last address we could trust is the answer.
        client = hop
        if not _within(hop, trusted):
            break
    return client


def _within(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    headers = {}
    if "retry_after" in extra:
        retry_after = extra.pop("retry_after")
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"code": code, "message": message, **extra}, status, headers=headers)


def _describe(errors: list[Any]) -> str:
    first = errors[0] if errors else {}
    location = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    reason = first.get("msg", "invalid value")
    return f"{location}: {reason}" if location else str(reason)


def as_app_error(exc: Exception, where: str) -> AppError | None:
    """`exc` in the error vocabulary, or None for a bug: the one place a store failure becomes
    `ServiceUnavailable`, whether a request or a socket's frame met it (`where` says which, for
    the log). A store failure is expected while MongoDB is down or slow, so a warning."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, PyMongoError):
        logger.warning("store unavailable on %s: %s", where, exc)
        return ServiceUnavailable()
    if isinstance(exc, PresenceUnavailable):
        logger.warning("presence unavailable on %s: %s", where, exc)
        return ServiceUnavailable()
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as `{code, message}`; nothing leaves as a bare 500 page."""

    async def failure(request: Request, exc: Exception) -> JSONResponse:
        error = as_app_error(exc, f"{request.method} {request.url.path}")
        if error is None:
            logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
            error = InternalError()
        return error_response(
            error.status, error.code.value, error.message, retry_after=error.retry_after
        )

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return error_response(
            422, ErrorCode.VALIDATION_ERROR.value, _describe(errors), details=errors
        )

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    app.add_exception_handler(AppError, failure)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # Registered by class as well as under Exception: Starlette answers an `Exception` handler's
    # errors and then raises them again (for the server to log as a crash).
    app.add_exception_handler(PyMongoError, failure)
    app.add_exception_handler(PresenceUnavailable, failure)
    app.add_exception_handler(Exception, failure)


def health_router(checks: Mapping[str, HealthCheck]) -> APIRouter:
    """`/healthz`: the process serves requests. `/readyz`: every dependency answers."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def probe(check: HealthCheck) -> str:
        try:
            async with asyncio.timeout(READY_CHECK_SECONDS):
                await check()
        except TimeoutError:
            return "unavailable: no answer"
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    @router.get("/readyz", response_model=None)
    async def readyz() -> dict[str, Any] | JSONResponse:
        answers = await asyncio.gather(*(probe(check) for check in checks.values()))
        results = dict(zip(checks, answers, strict=True))
        if all(result == "ok" for result in results.values()):
            return {"status": "ok", "checks": results}
        return error_response(
            503, ErrorCode.SERVICE_UNAVAILABLE.value, "Not ready.", checks=results
        )

    return router


def bearer_token(authorization: str | None) -> str:
    """The token from an `Authorization: Bearer ...` header, or `Unauthorized`."""
    if not authorization:
        raise Unauthorized()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


class Draining:
    """Whether this instance is shutting down: set from the first moment (the signal)."""

    def __init__(self) -> None:
        self.on = False


class DrainGuard:
    """While draining, new requests get 503 `service_unavailable` (but `/healthz`: the process
    is alive) and new sockets are closed at once with 1012, so a load balancer and every client
    go elsewhere from the first moment of shutdown, not after the sockets have drained."""

    def __init__(self, app: ASGIApp, draining: Draining) -> None:
        self.app = app
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.draining.on or scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http":
            if scope["path"] in ("/healthz", "/metrics"):  # Alive, and still scraped.
                await self.app(scope, receive, send)
                return
            response = error_response(
                503, ErrorCode.SERVICE_UNAVAILABLE.value, "This instance is shutting down."
            )
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        if (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            reason = "server restarting; reconnect and resume"
            await send(
                {"type": "websocket.close", "code": CloseCode.SERVICE_RESTART, "reason": reason}
            )


def install_telemetry(app: FastAPI, metrics: Metrics) -> None:
    """`/metrics` (`serve` wraps the app in `RequestTelemetry`, outside even its error
    handling, so that a crash's log lines and 500 carry the request id too)."""
    app.state.metrics = metrics
    app.include_router(metrics.router())


def install_drain_guard(app: FastAPI) -> Draining:
    """Refuse new work once `serve` is told to stop (see `DrainGuard`)."""
    draining = Draining()
    app.state.draining = draining
    app.add_middleware(DrainGuard, draining=draining)
    return draining


# How often an idle server wakes, to refresh its Date header. uvicorn's own loop wakes ten times
# a second to look for a shutdown request, ~2.5 ms of CPU a second per idle process on a small box.
TICK_SECONDS = 1.0


class _Server(uvicorn.Server):
    """uvicorn, with a hook that runs before it starts refusing and dropping connections, and
    woken by a shutdown signal instead of polling for one."""

    def __init__(
        self,
        config: uvicorn.Config,
        before_shutdown: Callable[[], Awaitable[None]] | None,
        draining: Draining | None = None,
    ) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown
        self._draining = draining
        self._woken: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def main_loop(self) -> None:
        exiting = asyncio.Event()
        self._woken = (asyncio.get_running_loop(), exiting)
        # Counter 0 each time: on_tick then refreshes the Date header, as uvicorn does each second.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_SECONDS):
                    await exiting.wait()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining is not None:
            self._draining.on = True  # From now on, nothing new is taken (DrainGuard).
        super().handle_exit(sig, frame)
        if self._woken is not None:
            loop, exiting = self._woken
            # A signal handler may interrupt the loop anywhere: hand it the wake-up safely.
            loop.call_soon_threadsafe(exiting.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:  # Stop accepting before the hook, not after it.
            server.close()
        if self._before_shutdown is not None:
            try:
                await self._before_shutdown()
            except Exception:
                logger.exception("graceful shutdown hook failed")
        await super().shutdown(sockets)


def served_app(app: FastAPI, settings: CommonSettings) -> ASGIApp:
    """What the server runs: `app` with its response headers and body deadline, all inside
    the request telemetry (when the app has metrics): outermost, so that even a crash's log
    lines and its 500 carry the request id."""
    served: ASGIApp = BodyDeadline(ResponseHeaders(app), settings.request_body_timeout_seconds)
    metrics: Metrics | None = getattr(app.state, "metrics", None)
    if metrics is None:
        return served
    return RequestTelemetry(
        served, metrics, log_requests=settings.logs_as == "json", quiet=QUIET_ROUTES
    )


def serve(
    app: FastAPI,
    settings: CommonSettings,
    *,
    service: str,
    port: int,
    ws_max_size: int = 64 * 1024,
    ws_compression: bool = False,
    ws_protocol: type[asyncio.Protocol] | None = None,
    before_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `app` under uvicorn until SIGINT/SIGTERM (WebSockets: `ws_protocol`, else uvicorn's
    websockets-sansio)."""
    logs.configure(service, settings.log_level, settings.logs_as)
    config = uvicorn.Config(
        served_app(app, settings),
        host=settings.host,
        port=port,
        # `logs.configure` did it all: every logger in the one format, at its level.
        log_config=None,
        log_level=None,
        http=timed_http(settings.request_head_timeout_seconds),
        ws=ws_protocol or "websockets-sansio",
        ws_max_size=ws_max_size,
        ws_per_message_deflate=ws_compression,
        # X-Forwarded-For is read by `client_address`, from trusted proxies only; uvicorn's
        # own handling would believe any loopback client.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    _Server(config, before_shutdown, getattr(app.state, "draining", None)).run()
