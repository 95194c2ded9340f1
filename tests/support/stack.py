"""A whole backend for one test: auth service and N message-service instances, on real servers."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import Service, service_process

ALLOWED_ORIGIN = "http://allowed.test"
JWT_SECRET = secrets.token_urlsafe(48)
# Lines a healthy run never logs. Tests that break things on purpose still must not produce these.
_BAD_LOG = re.compile(r"\bERROR\b|Traceback|CRITICAL")


@dataclass
class Stack:
    auth: Service
    messages: list[Service]
    env: dict[str, str]

    @property
    def auth_url(self) -> str:
        return self.auth.url

    def services(self) -> list[Service]:
        return [self.auth, *self.messages]

    def bad_log_lines(self) -> list[str]:
        return [
            f"{service.name}: {line}"
            for service in self.services()
            for line in service.log().splitlines()
            if _BAD_LOG.search(line)
        ]


def stack_env(mongo_url: str, redis_url: str | None, **overrides: str) -> dict[str, str]:
    run = uuid.uuid4().hex[:12]
    env = {
        "LETSCHAT_ENVIRONMENT": "test",
        "LETSCHAT_JWT_SECRET": JWT_SECRET,
        "LETSCHAT_MONGODB_URL": mongo_url,
        "LETSCHAT_MONGODB_DB": f"test_{run}",
        "LETSCHAT_CHANNEL_PREFIX": f"test:{run}:",
        "LETSCHAT_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        "LETSCHAT_SESSION_SWEEP_SECONDS": "0.5",
        "LETSCHAT_SEQ_HOLE_GRACE_SECONDS": "1",
        "LETSCHAT_LOG_LEVEL": "info",
    }
    if redis_url:
        env["LETSCHAT_REDIS_URL"] = redis_url
    env.update(overrides)
    return env


@contextmanager
def running_stack(
    mongo_url: str,
    redis_url: str | None,
    log_dir: Path,
    *,
    instances: int = 2,
    per_instance: Sequence[Mapping[str, str]] = (),
    **overrides: str,
) -> Iterator[Stack]:
    """The auth service and `instances` message-service instances; `per_instance[i]` holds
    settings for instance i alone (its own Redis URL, say)."""
    env = stack_env(mongo_url, redis_url, **overrides)
    own = [*per_instance, *[{}] * (instances - len(per_instance))]
    services = [service_process("auth_service", "auth", env, log_dir)] + [
        service_process("message_service", f"message{index + 1}", {**env, **own[index]}, log_dir)
        for index in range(instances)
    ]
    try:
        for service in services:  # Start all, then wait: the imports overlap.
            service.start()
        for service in services:
            service.wait_ready()
        yield Stack(auth=services[0], messages=services[1:], env=env)
    finally:
        for service in services:
            service.stop()
