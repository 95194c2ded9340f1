"""The services' log lines: one JSON object each, with the context bound where they happen, and
never a secret's value even when a call passes one."""

from __future__ import annotations

import json
import logging
import sys

import httpx
from fastapi import FastAPI

from backend_services import logs
from backend_services.core.config import CommonSettings
from backend_services.message_service.stats import frame_type
from backend_services.metrics import Metrics
from backend_services.web import install_error_handlers, install_telemetry, served_app


def line(record: logging.LogRecord) -> dict[str, object]:
    parsed = json.loads(logs.JsonFormatter("message", "host:1").format(record))
    assert isinstance(parsed, dict)
    return parsed


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "letschat.test", "levelname": "INFO", "msg": message})
    made.__dict__.update(extra)
    return made


def test_a_line_says_when_what_who_and_in_which_context() -> None:
    with logs.bound(request_id="r1", user_id=None):
        with logs.bound(connection_id="c1"):
            inside = line(record("sent %d", count=3))
        after = line(record("done"))
    outside = line(record("later"))
    assert inside["level"] == "INFO"
    assert inside["service"] == "message"
    assert inside["instance"] == "host:1"
    assert inside["logger"] == "letschat.test"
    assert inside["request_id"] == "r1"
    assert inside["connection_id"] == "c1"
    assert inside["count"] == 3
    assert "user_id" not in inside  # None is left out.
    assert str(inside["ts"]).endswith("+00:00")
    assert after["request_id"] == "r1"
    assert "connection_id" not in after
    assert "request_id" not in outside


def test_secrets_passed_by_mistake_are_redacted() -> None:
    passed = line(record("oops", token="eyJ.secret", password="hunter22", body="hello"))
    assert passed["token"] == passed["password"] == passed["body"] == logs.REDACTED
    assert "eyJ.secret" not in json.dumps(passed)


def test_an_exception_is_one_field_of_the_line() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    parsed = line(made)
    assert "ValueError: broken" in str(parsed["exception"])


def test_a_frame_type_is_read_from_its_text() -> None:
    assert frame_type('{"type":"ack","client_msg_id":"x"}') == "ack"
    assert frame_type('{"type":"pong"}') == "pong"
    assert frame_type("not a frame") == "other"
    assert frame_type('{"type":"unterminated') == "other"


class Lines(logging.Handler):
    """Formats each record as it is logged, in the context it is logged in."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logs.JsonFormatter("test", "host:1"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_a_crash_is_logged_and_answered_with_its_request_id() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    install_telemetry(app, Metrics("test", "0"))
    served = served_app(app, CommonSettings(log_format="json"))
    transport = httpx.ASGITransport(app=served, raise_app_exceptions=False)
    handler, root = Lines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answer = await http.get("/boom", headers={"X-Request-ID": "req-42"})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "req-42"
    errors = [line for line in handler.lines if line["level"] == "ERROR"]
    assert errors
    assert all(line.get("request_id") == "req-42" for line in errors)
    access = [line for line in handler.lines if line["logger"] == "letschat.access"]
    assert [(line["route"], line["status"]) for line in access] == [("/boom", 500)]
