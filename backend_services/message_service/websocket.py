"""The `/ws` endpoint: authenticate, then read, handle and write frames in three tasks.

Reading is kept apart from handling so that a client pipelining sends while the store is slow
still has its keepalive pongs read (uvicorn stops reading the transport once the application
stops receiving, and then drops the client as unresponsive). Frames are still handled one at a
time, in the order they came.

A message to a group goes out once per member socket, so frames are written where they are
pushed, encoded once for all sockets, when the server offers that (`prepared_frames`); the
writer task sends only what a socket could not take at once, through the ASGI `send` itself
(Starlette's per-frame state checks and exception wrapper cost a fifth of what the frame's own
framing and write do). Starlette's `WebSocket` still accepts, receives and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from backend_services import logs
from backend_services.core.errors import (
    AppError,
    BadFrame,
    CloseCode,
    InternalError,
    RateLimited,
)
from backend_services.core.ratelimit import TokenBucket
from backend_services.core.schemas import (
    AuthFrame,
    ClientFrame,
    DeleteFrame,
    EditFrame,
    PingFrame,
    PresenceFrame,
    ReactFrame,
    ReadFrame,
    ResumeFrame,
    SendFrame,
    TypingFrame,
    client_frame_adapter,
)
from backend_services.core.sessions import Session
from backend_services.message_service import frames
from backend_services.message_service.connection import Close, Connection
from backend_services.message_service.deps import get_services
from backend_services.message_service.prepared_frames import (
    WritePrepared,
    prepared_writer,
    text_of,
)
from backend_services.message_service.services import MessageServices
from backend_services.web import as_app_error
from letschat_protocol.server import CLIENT_FRAME_TYPES

logger = logging.getLogger("letschat.ws")
router = APIRouter()

# Frames read ahead of the one being handled. A client with more than this in flight is sending
# faster than the rate limit lets anyone, and is slowed by TCP backpressure.
INBOX_SIZE = 64
# When a socket ends, how long the frames already read may take to be handled before the rest
# are dropped: well inside the hub's drain (5 s) and uvicorn's graceful shutdown (10 s).
HANDLER_FINISH_SECONDS = 3.0
# What an error frame echoes of the frame it answers, so the client can match the two.
CONTEXT_FIELDS = ("conversation_id", "client_msg_id", "message_id")


class _ClientGone(Exception):
    pass


BINARY_FRAME_ERROR = frames.error(BadFrame("Frames must be JSON text."))
# A socket over its frame budget is told at most this often.
TOLD_EVERY_SECONDS = 1.0


class FrameBudget:
    """What one socket may send: every frame, of any type (and binary or malformed ones too),
    takes a token. A socket over its budget is not read until a token is due: uvicorn reads
    no more from a socket than its app takes, so a flood backs up in the flooder's own TCP
    buffers instead of costing this instance a frame's work (even to drop it) at the rate the
    client can write. Nothing is dropped; the client is told `rate_limited` at most once a
    second while it waits."""

    def __init__(self, burst: int, rate_per_second: float, connection: Connection) -> None:
        now = time.monotonic()
        self._bucket = TokenBucket(burst=burst, rate_per_second=rate_per_second, now=now)
        self._connection = connection
        self._told_at = now - TOLD_EVERY_SECONDS

    async def take(self) -> None:
        """A token for the next frame, once there is one."""
        while wait := self._bucket.try_take(now := time.monotonic()):
            if now - self._told_at >= TOLD_EVERY_SECONDS:
                self._told_at = now
                error = RateLimited("Too many frames; slow down.", retry_after=math.ceil(wait))
                self._connection.push(frames.error(error))
            await asyncio.sleep(wait)


async def _receive_text(
    websocket: WebSocket, connection: Connection | None = None, budget: FrameBudget | None = None
) -> str:
    """The next text frame within `budget`; a binary frame is answered with an error (through
    the connection's queue once there is one, so it keeps its place among the replies) and
    skipped."""
    while True:
        if budget is not None:
            await budget.take()
        event = await websocket.receive()
        if event["type"] == "websocket.disconnect":
            raise _ClientGone()
        text = event.get("text")
        if text is not None:
            return str(text)
        if connection is None:
            await websocket.send_text(BINARY_FRAME_ERROR)
        else:
            connection.stats.received["binary"] += 1
            connection.push(BINARY_FRAME_ERROR)


class SocketEndpoint:
    """`/ws`, as an ASGI app."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket_endpoint(websocket, get_services(websocket), send, prepared_writer(scope))


router.routes.append(WebSocketRoute("/ws", SocketEndpoint()))


async def websocket_endpoint(
    websocket: WebSocket,
    services: MessageServices,
    send: Send,
    write_prepared: WritePrepared | None = None,
) -> None:
    origin = websocket.headers.get("origin")
    if origin is not None and origin not in services.settings.allowed_origins:
        # Closing before accepting answers the handshake with HTTP 403.
        await websocket.close(CloseCode.ORIGIN_NOT_ALLOWED, "origin not allowed")
        return
    await websocket.accept()
    try:
        session = await _authenticate(websocket, services)
    except _ClientGone:
        return
    except Exception as exc:
        error = as_app_error(exc, "a socket's auth frame")
        if error is None:
            raise
        # A client that gave up waiting (a store slow to answer) is gone already.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await websocket.close(error.close_code or CloseCode.UNAUTHORIZED, error.message)
        return
    connection = Connection(
        session,
        queue_size=services.settings.send_queue_size,
        write_prepared=write_prepared,
        stats=services.hub.stats,
    )
    logs.bind(connection_id=connection.id, user_id=session.user.id)
    logger.info("socket opened")
    await services.hub.register(connection)
    connection.push(frames.ready(session.user))
    try:
        await _run(websocket, send, services, connection)
    finally:
        services.presence.left(connection, list(connection.streams))
        await services.hub.unregister(connection)
        closing = connection.closing
        logger.info(
            "socket closed",
            extra={
                "closed_by": "server" if closing else "client",
                "close_code": closing.code if closing else None,
            },
        )


async def _authenticate(websocket: WebSocket, services: MessageServices) -> Session:
    timeout = services.settings.auth_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            text = await _receive_text(websocket)
    except TimeoutError:
        await websocket.close(CloseCode.AUTH_TIMEOUT, f"send an auth frame within {timeout:g} s")
        raise _ClientGone() from None
    try:
        frame = client_frame_adapter.validate_json(text)
    except ValidationError:
        frame = None
    if not isinstance(frame, AuthFrame):
        await websocket.close(CloseCode.PROTOCOL_ERROR, "the first frame must be an auth frame")
        raise _ClientGone()
    services.hub.stats.received["auth"] += 1
    return await services.verifier.verify(frame.token)


async def _run(
    websocket: WebSocket, send: Send, services: MessageServices, connection: Connection
) -> None:
    """Read, handle and write until the client leaves or the socket is closed."""
    inbox: asyncio.Queue[str] = asyncio.Queue(INBOX_SIZE)
    settings = services.settings
    budget = FrameBudget(settings.frame_burst, settings.frame_rate_per_second, connection)
    reader = asyncio.create_task(_read_loop(websocket, inbox, connection, budget))
    writer = asyncio.create_task(_write_loop(websocket, send, connection))
    handler = asyncio.create_task(_handle_loop(inbox, services, connection))
    try:
        try:
            await asyncio.wait({reader, writer, handler}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            # Frames already read are still handled: a client that sent messages and closed its
            # tab never sends them again. Bounded, so a socket always ends.
            await _until_handled(inbox, handler)
    finally:
        for task in (reader, writer, handler):
            task.cancel()
        *_, handled = await asyncio.gather(reader, writer, handler, return_exceptions=True)
        if isinstance(handled, Exception):  # Not a cancellation: a bug worth a trace.
            logger.error("frame handler failed", exc_info=handled)


async def _until_handled(inbox: asyncio.Queue[str], handler: asyncio.Task[None]) -> None:
    """Wait until every frame in `inbox` has been handled, the handler stopped, or the limit."""
    if handler.done():
        return
    handled = asyncio.ensure_future(inbox.join())
    try:
        await asyncio.wait(
            {handled, handler},
            timeout=HANDLER_FINISH_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        handled.cancel()


async def _write_loop(websocket: WebSocket, send: Send, connection: Connection) -> None:
    """Send what the socket could not take at once (or everything, without prepared frames)."""
    outbox = connection.outbox
    while True:
        for item in await outbox.take():
            if isinstance(item, Close):
                if websocket.application_state is WebSocketState.CONNECTED:
                    with contextlib.suppress(RuntimeError, OSError):
                        await websocket.close(item.code, item.reason)
                return
            if connection.write_now(item):
                continue
            try:
                await send({"type": "websocket.send", "text": text_of(item)})
            except (RuntimeError, OSError):  # The client went (uvicorn's ClientDisconnected).
                return
        outbox.sent()


async def _read_loop(
    websocket: WebSocket, inbox: asyncio.Queue[str], connection: Connection, budget: FrameBudget
) -> None:
    while True:
        await inbox.put(await _receive_text(websocket, connection, budget))


async def _handle_loop(
    inbox: asyncio.Queue[str], services: MessageServices, connection: Connection
) -> None:
    while True:
        text = await inbox.get()
        try:
            await _handle_text(text, services, connection)
        finally:
            inbox.task_done()


async def _handle_text(text: str, services: MessageServices, connection: Connection) -> None:
    try:
        frame = client_frame_adapter.validate_json(text)
    except ValidationError as exc:
        # Text that is not JSON (or nests deeper than the parser's limit) has no ids to echo;
        # reading it again with `json` would only find that out the slow way, or recurse.
        context = {} if _is_invalid_json(exc) else _raw_context(text)
        connection.stats.received["invalid"] += 1
        connection.push(frames.error(BadFrame(_describe(exc)), **context))
        return
    connection.stats.received[frame.type] += 1
    try:
        await _handle(frame, services, connection)
    except Exception as exc:
        error = as_app_error(exc, f"a socket's {frame.type} frame")
        if error is None:
            logger.exception("failed to handle a %s frame", frame.type)
            error = InternalError()
        connection.push(frames.error(error, **_context(frame)))


async def _handle(
    frame: ClientFrame,
    services: MessageServices,
    connection: Connection,
) -> None:
    session = connection.session
    messages = services.messages
    if isinstance(frame, SendFrame):
        started = time.perf_counter()
        msg, _ = await messages.send(
            session,
            frame.conversation_id,
            frame.body,
            frame.client_msg_id,
            known_member=connection.follows(frame.conversation_id),
            reply_to=frame.reply_to,
        )
        connection.push(frames.ack(frame.client_msg_id, msg))
        connection.stats.send_ack.observe(time.perf_counter() - started)
    # A change comes back to this socket as a `change` frame, like to every member's.
    elif isinstance(frame, EditFrame):
        await messages.edit(
            session,
            frame.conversation_id,
            frame.message_id,
            frame.body,
            known_member=connection.follows(frame.conversation_id),
        )
    elif isinstance(frame, DeleteFrame):
        await messages.delete(
            session,
            frame.conversation_id,
            frame.message_id,
            known_member=connection.follows(frame.conversation_id),
        )
    elif isinstance(frame, ReactFrame):
        await messages.react(
            session,
            frame.conversation_id,
            frame.message_id,
            frame.emoji,
            add=frame.add,
            known_member=connection.follows(frame.conversation_id),
        )
    elif isinstance(frame, ReadFrame):
        await services.messages.mark_read_from(connection, frame.conversation_id, frame.seq)
    elif isinstance(frame, TypingFrame):
        await messages.typing(connection, frame.conversation_id, frame.active)
    elif isinstance(frame, PresenceFrame):
        services.presence.reported(connection, frame.away)
    elif isinstance(frame, ResumeFrame):
        await services.hub.resume(connection, dict(frame.cursors))
        services.presence.joined(connection)
    elif isinstance(frame, PingFrame):
        connection.push(frames.PONG)
    else:
        await _reauthenticate(frame, services, connection)


async def _reauthenticate(
    frame: AuthFrame, services: MessageServices, connection: Connection
) -> None:
    """A fresh access token for the same person: the socket goes on past the old token's expiry,
    without a reconnect, in the token's session. A token that fails closes the socket as at the
    start."""
    try:
        session = await services.verifier.verify(frame.token)
    except AppError as exc:
        connection.close(exc.close_code or CloseCode.UNAUTHORIZED, exc.message)
        return
    if session.user.id != connection.user_id:
        raise BadFrame("That token is for someone else; open a new socket for them.")
    connection.session = session
    connection.push(frames.authed(session.claims.expires_at))


def _context(frame: object) -> dict[str, str]:
    """Echo what lets the client match an error to its request."""
    context = {"frame_type": str(getattr(frame, "type", ""))}
    for name in CONTEXT_FIELDS:
        value = getattr(frame, name, None)
        if isinstance(value, str):
            context[name] = value
    return context


def _raw_context(text: str) -> dict[str, str]:
    """For a frame that failed validation: echo its ids if it has any, so a client can tell
    which pending message the error is about."""
    try:
        raw = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    fields = ("type", *CONTEXT_FIELDS)
    context = {name: raw[name] for name in fields if isinstance(raw.get(name), str)}
    if "type" in context:
        context["frame_type"] = context.pop("type")
    return context


def _is_invalid_json(exc: ValidationError) -> bool:
    errors = exc.errors()
    return bool(errors) and errors[0]["type"] == "json_invalid"


def _describe(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return BadFrame.default_message
    first = errors[0]
    if first["type"] == "json_invalid":
        if "recursion limit" in str(first.get("msg", "")):
            return "Frames may not nest that deep."
        return "Frames must be JSON objects."
    if first["type"] in {"union_tag_not_found", "union_tag_invalid", "model_type"}:
        return (
            "Frames must be objects with a known `type`: "
            f"{', '.join(CLIENT_FRAME_TYPES[:-1])} or {CLIENT_FRAME_TYPES[-1]}."
        )
    location = ".".join(str(part) for part in first["loc"][1:]) or "frame"
    return f"{location}: {first['msg']}"
