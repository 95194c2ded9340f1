"""The codes both sides agree on: error codes (REST bodies and `error` frames) and the close
codes of the socket.

Close codes follow Centrifuge's convention: 4000-4499 means "reconnect and resume", 4500-4999
means "do not reconnect with these credentials". 1009, 1012 and 1013 are RFC 6455's own.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    INVALID_CREDENTIALS = "invalid_credentials"
    UNAUTHORIZED = "unauthorized"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - an error code, not a secret
    TOKEN_REVOKED = "token_revoked"  # noqa: S105
    REFRESH_TOKEN_INVALID = "refresh_token_invalid"  # noqa: S105
    REFRESH_TOKEN_EXPIRED = "refresh_token_expired"  # noqa: S105
    REFRESH_TOKEN_REVOKED = "refresh_token_revoked"  # noqa: S105
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105
    WRONG_PASSWORD = "wrong_password"  # noqa: S105
    USERNAME_TAKEN = "username_taken"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    RATE_LIMITED = "rate_limited"
    MESSAGE_TOO_LONG = "message_too_long"
    NOT_YOUR_MESSAGE = "not_your_message"
    NOT_GROUP_CREATOR = "not_group_creator"
    EDIT_WINDOW_CLOSED = "edit_window_closed"
    MESSAGE_DELETED = "message_deleted"
    UNKNOWN_EMOJI = "unknown_emoji"
    TOO_MANY_REACTIONS = "too_many_reactions"
    BAD_FRAME = "bad_frame"
    AUTH_TIMEOUT = "auth_timeout"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    SLOW_CONSUMER = "slow_consumer"
    REQUEST_TIMEOUT = "request_timeout"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_ERROR = "internal_error"


class CloseCode(IntEnum):
    """WebSocket close codes used by the message service."""

    MESSAGE_TOO_BIG = 1009
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    SLOW_CONSUMER = 4000
    PROTOCOL_ERROR = 4500
    UNAUTHORIZED = 4501
    TOKEN_EXPIRED = 4502
    TOKEN_REVOKED = 4503
    AUTH_TIMEOUT = 4504
    ORIGIN_NOT_ALLOWED = 4505

    @property
    def reconnect(self) -> bool:
        """Whether a client should reconnect (with backoff) and resume after this close."""
        return not must_not_reconnect(self)

    @property
    def description(self) -> str:
        return _CLOSE_DESCRIPTIONS[self]


def must_not_reconnect(code: int) -> bool:
    """A close in 4500-4999: the credentials were refused; reconnecting with them is futile."""
    return 4500 <= code <= 4999


_CLOSE_DESCRIPTIONS = {
    CloseCode.MESSAGE_TOO_BIG: (
        "A client frame was larger than the frame limit (64 KiB). Sent by the WebSocket layer. "
        "Reconnect and resume, but do not send the same frame again."
    ),
    CloseCode.SERVICE_RESTART: (
        "The instance is shutting down (deploy or restart). Reconnect with backoff (another "
        "instance, or this one when it is back) and resume from the cursors."
    ),
    CloseCode.TRY_AGAIN_LATER: (
        "A backing service (MongoDB) was unreachable while checking the auth frame, or while "
        "catching the socket up (a resume, a gap in live delivery, a conversation joined while "
        "connected). Reconnect with backoff and resume; the session is still valid."
    ),
    CloseCode.SLOW_CONSUMER: (
        "The socket fell too far behind: its send queue was full (what was still queued is "
        "dropped), or catching up from the store did not converge. Reconnect and resume from "
        "the cursors; nothing is lost."
    ),
    CloseCode.PROTOCOL_ERROR: "The first frame was not a valid `auth` frame. A client bug.",
    CloseCode.UNAUTHORIZED: (
        "The token is not valid (bad signature, wrong audience, malformed, no session), its "
        "session is not known, or its account no longer exists. Sign in again."
    ),
    CloseCode.TOKEN_EXPIRED: (
        "The access token expired, at `auth` or later (open sockets are checked every "
        "`LETSCHAT_SESSION_SWEEP_SECONDS`, default 15 s). Refresh once (`POST /auth/refresh`) "
        "and reconnect with the new token; sign in again if the refresh fails. A client that "
        "re-authenticates in time never sees it."
    ),
    CloseCode.TOKEN_REVOKED: (
        "The token's session ended (logout, ended from another device, a password change, a "
        "reused refresh token) or expired, at `auth` or later (within a sweep interval). The "
        "session's refresh token no longer works either. Sign in again."
    ),
    CloseCode.AUTH_TIMEOUT: (
        "No `auth` frame arrived within 5 s (`LETSCHAT_AUTH_TIMEOUT_SECONDS`)."
    ),
    CloseCode.ORIGIN_NOT_ALLOWED: (
        "The Origin header is not allowed. The service refuses before accepting, so the client "
        "sees the handshake fail with HTTP 403 (a browser reports close code 1006), not 4505."
    ),
}
