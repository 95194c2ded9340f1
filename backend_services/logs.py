"""Logging for every process: one JSON object per line outside development, plain text in it.

A line says when (`ts`, UTC), how bad (`level`), who (`service`, `instance`), what (`event`,
the message; `logger`) and about what: the request or socket it happened in (`request_id`,
`connection_id`) and whose it was (`user_id`), taken from the context the HTTP middleware and
the socket endpoint bind, plus whatever the call passed as `extra`. Tokens, passwords and
message bodies are never logged: no call passes them, and a field named like one is replaced
by "[redacted]" should one ever try.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

LogFormat = Literal["json", "text"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"
# Fields that must never carry their value into a log line, whoever passes them.
SECRET_FIELDS = frozenset(
    {"token", "access_token", "refresh_token", "password", "new_password", "body", "authorization"}
)
# Loggers kept at INFO or above whatever LOGLEVEL says (see `configure`).
CHATTY_LIBRARIES = ("pymongo", "websockets", "uvicorn.error", "uvicorn.protocols")
# uvicorn's per-socket lines ('%s - "WebSocket %s" [accepted]', "connection open", ...).
UVICORN_SOCKET_LINES = ('%s - "WebSocket', "connection open", "connection closed")
# What every LogRecord has; anything else on a record came from `extra`.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours.
}

_context: ContextVar[Mapping[str, str]] = ContextVar(
    "letschat_log_context", default=MappingProxyType({})
)


def instance_name() -> str:
    """Which process of a service this is: its host (a container's id) and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Add `fields` (None ones left out) to every line logged in this context."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: str | None) -> None:
    """Add `fields` to the rest of this context (a task's, or a request's). Only from async
    code running in that context: FastAPI runs a sync dependency in a thread, on a copy."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def context() -> Mapping[str, str]:
    return _context.get()


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON."""

    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self._service = service
        self._instance = instance

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = dict(_context.get())
        for name, value in record.__dict__.items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                line[name] = value
        for name in SECRET_FIELDS & line.keys():
            line[name] = REDACTED
        line.update(  # Last: no `extra` overrides what every line must say.
            ts=datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            level=record.levelname,
            service=self._service,
            instance=self._instance,
            logger=record.name,
            event=record.getMessage(),
        )
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(service: str, level: str, log_format: LogFormat) -> None:
    """Send every logger's records (uvicorn's too) to stderr in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(service, instance_name()))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.captureWarnings(True)  # Warnings too, in the same format.
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Their debug lines carry what is never logged: pymongo's the documents it sends (message
    # bodies, password hashes), the WebSocket protocol's the start of every frame.
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    # In JSON, each request is logged once by the services' own middleware, with its route,
    # request id and user, and without the query string (a search's words are no log's
    # business); uvicorn's access line would repeat it without them. Sockets say when they
    # open and close themselves (with their connection id); uvicorn's lines would add the
    # client's address and the URL's query.
    logging.getLogger("uvicorn.access").disabled = log_format == "json"
    socket_lines = logging.getLogger("uvicorn.error")
    socket_lines.filters[:] = [_not_socket_chatter] if log_format == "json" else []


def _not_socket_chatter(record: logging.LogRecord) -> bool:
    return not (str(record.msg).startswith(UVICORN_SOCKET_LINES))
