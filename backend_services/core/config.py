"""Settings for each service, read once at the entrypoint from `LETSCHAT_*` variables."""

from __future__ import annotations

from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = IPv4Network | IPv6Network

# Only ever accepted in development: a fresh clone runs without any configuration.
DEV_JWT_SECRET = "letschat-development-secret-change-me-0123456789"  # noqa: S105
MIN_SECRET_BYTES = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class CommonSettings(BaseSettings):
    """What every service needs: the database, the token secret, the environment."""

    model_config = SettingsConfigDict(
        env_prefix="LETSCHAT_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    mongodb_url: str = "mongodb://127.0.0.1:27017"
    mongodb_db: str = "letschat"
    # Every MongoDB operation ends within this, answered `service_unavailable` if it could not.
    mongodb_timeout_ms: int = Field(default=5000, ge=100, le=60_000)
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_audience: str = "letschat"
    # Short-lived on purpose: clients renew them with their session's refresh token (the auth
    # service's `/auth/refresh`), so a stolen one is worth little for long.
    access_token_seconds: int = Field(default=600, ge=1, le=900)
    log_level: str = "info"
    # One JSON object per line (for a log pipeline), or plain text for people; unset: text in
    # development, JSON everywhere else.
    log_format: Literal["json", "text"] | None = None
    # A request's head (its headers; a WebSocket handshake too) must arrive within this of the
    # connection's start, and its body within the second figure of the request's start: a
    # client that trickles them is answered 408 and dropped instead of holding a connection.
    request_head_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    request_body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @property
    def logs_as(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "text" if self.environment is Environment.DEVELOPMENT else "json"

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Self:
        secret = self.jwt_secret.get_secret_value()
        if self.environment is Environment.DEVELOPMENT:
            return self
        if secret == DEV_JWT_SECRET or len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"LETSCHAT_JWT_SECRET must be set to a random value of at least {MIN_SECRET_BYTES} "
                f"bytes outside development (environment={self.environment.value})"
            )
        return self


class AuthSettings(CommonSettings):
    port: int = 8001
    # bcrypt cost: 12 is the floor (about 250 ms a hash on one core).
    bcrypt_rounds: int = Field(default=12, ge=12, le=16)
    # A session lasts while it is used: this long after its last refresh, and never longer than
    # `session_max_days` after the login.
    session_idle_days: float = Field(default=30, gt=0)
    session_max_days: float = Field(default=90, gt=0)
    # A refresh token replaced this recently may come again from a tab that refreshed at the
    # same moment: it gets the same new token. Any older reuse ends the session.
    refresh_grace_seconds: float = Field(default=60, ge=0, le=600)
    # Failed logins counted in a window, per username and, separately, per client address.
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=30, ge=1)
    login_failure_window_seconds: int = Field(default=300, ge=1)
    # Refreshes per session (and, for tokens that are not valid, per client address) and auth
    # instance: a burst, refilled at a rate.
    refresh_burst: int = Field(default=30, ge=1)
    refresh_rate_per_second: float = Field(default=0.5, gt=0)
    # Whose X-Forwarded-For is believed: addresses or networks ("10.0.0.0/8,127.0.0.1"). Only
    # the load balancer and the web app's backend belong here; nobody, by default.
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        return _split_commas(value)

    @model_validator(mode="after")
    def _sessions_fit(self) -> Self:
        if self.session_idle_days > self.session_max_days:
            raise ValueError("LETSCHAT_SESSION_IDLE_DAYS must not exceed LETSCHAT_SESSION_MAX_DAYS")
        return self


class MessageSettings(CommonSettings):
    port: int = 8002
    redis_url: str | None = None
    # Every Redis command ends within this (a publish that could not is delivered on this
    # instance only, and the others backfill it from the store); a listening connection that
    # hears nothing, its own echo included, for 5 s more is reconnected.
    redis_timeout_ms: int = Field(default=2000, ge=100, le=60_000)
    # Every channel name starts with this, so several deployments (or tests) can share one Redis.
    channel_prefix: str = "letschat:"
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://127.0.0.1:3000"]
    )
    auth_timeout_seconds: float = Field(default=5.0, gt=0)
    max_frame_bytes: int = Field(default=64 * 1024, ge=1024)
    # permessage-deflate saves ~100 bytes on a typical message frame and costs ~40% of the CPU
    # of fan-out (each socket compresses on its own); worth it only on metered, slow links.
    ws_compression: bool = False
    # Frames queued for one socket before it is closed as a slow consumer (it will resume).
    send_queue_size: int = Field(default=1024, ge=16)
    resume_limit: int = Field(default=300, ge=1)
    # Token bucket per user: a burst of `send_burst` messages, refilled at `send_rate_per_second`.
    send_burst: int = Field(default=30, ge=1)
    send_rate_per_second: float = Field(default=10.0, gt=0)
    # Adding people to groups (creating one with members included), counted per adder on every
    # instance: at most `adds_per_hour` others an hour. Nobody belongs to more than
    # `max_groups_per_user` groups, however they got there.
    adds_per_hour: int = Field(default=200, ge=1)
    max_groups_per_user: int = Field(default=500, ge=1)
    # Frames of any type one socket may send: a burst, refilled at a rate. The web app sends a
    # few a minute; a socket over it is read no faster (see message_service/websocket.py).
    frame_burst: int = Field(default=200, ge=10)
    frame_rate_per_second: float = Field(default=50.0, gt=0)
    # How often open sockets are checked for logged-out or expired tokens.
    session_sweep_seconds: float = Field(default=15.0, gt=0)
    # How often each instance checks that its sockets' users still belong to the conversations
    # the sockets follow: a `left` event lost on the way (Redis down at that moment) stops
    # their messages within this.
    membership_recheck_seconds: float = Field(default=60.0, gt=0)
    # How long after sending someone may edit, and delete, their message (0: no limit); and
    # whether a group's creator may delete anyone's message in it.
    edit_window_seconds: float = Field(default=3600.0, ge=0)
    delete_window_seconds: float = Field(default=0.0, ge=0)
    creator_deletes: bool = True
    # A seq allocated but not written within this time is declared lost (see store/messages.py).
    seq_hole_grace_seconds: float = Field(default=2.0, gt=0)
    # Reads from sockets are stored together this often, and one conversation's markers at most
    # once every `read_repeat_seconds` (see message_service/reads.py).
    read_flush_seconds: float = Field(default=0.5, gt=0, le=5)
    read_repeat_seconds: float = Field(default=2.0, ge=0, le=30)
    # Each instance renews its presence record this often; the record of an instance that
    # stopped renewing it (killed) counts no more after `presence_ttl_seconds`, when the next
    # beat anywhere tells its users' contacts they went offline.
    presence_beat_seconds: float = Field(default=20.0, gt=0)
    presence_ttl_seconds: float = Field(default=45.0, gt=0)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: object) -> object:
        return _split_commas(value)


def _split_commas(value: object) -> object:
    """Accept a comma-separated list, as environment variables are."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value
