"""The one error vocabulary of Let's Chat.

Core code raises `AppError` subclasses; the HTTP and WebSocket edges translate them exactly once:
REST answers `{"code": ..., "message": ...}` with the error's status, the WebSocket either sends an
error frame or closes with the error's close code. Close codes follow Centrifuge's convention:
4000-4499 means "reconnect and resume", 4500-4999 means "do not reconnect with these credentials".
The codes themselves are the protocol's (`letschat_protocol.codes`), which clients share.
"""

from __future__ import annotations

from typing import Any, ClassVar

# Re-exported: the services import the codes from here with the errors that carry them.
from letschat_protocol.codes import CloseCode as CloseCode
from letschat_protocol.codes import ErrorCode as ErrorCode


class AppError(Exception):
    """An expected failure with a stable code, an HTTP status and a WebSocket close code."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
    status: ClassVar[int] = 500
    # How a socket is closed when this error ends it (during authentication). After that, errors
    # are answered with an error frame and the socket stays open.
    close_code: ClassVar[int | None] = None
    default_message: ClassVar[str] = "Something went wrong."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        self.message = message or self.default_message
        self.retry_after = retry_after
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message}


class ValidationFailed(AppError):
    code = ErrorCode.VALIDATION_ERROR
    status = 422
    default_message = "The request is not valid."


class InvalidCredentials(AppError):
    code = ErrorCode.INVALID_CREDENTIALS
    status = 401
    default_message = "Wrong username or password."


class Unauthorized(AppError):
    code = ErrorCode.UNAUTHORIZED
    status = 401
    close_code = CloseCode.UNAUTHORIZED
    default_message = "A valid access token is required."


class TokenExpired(Unauthorized):
    code = ErrorCode.TOKEN_EXPIRED
    close_code = CloseCode.TOKEN_EXPIRED
    default_message = "Your session has expired; log in again."


class TokenRevoked(Unauthorized):
    code = ErrorCode.TOKEN_REVOKED
    close_code = CloseCode.TOKEN_REVOKED
    default_message = "This session was logged out; log in again."


class RefreshTokenInvalid(AppError):
    """Malformed, forged, or for a session or account that does not exist."""

    code = ErrorCode.REFRESH_TOKEN_INVALID
    status = 401
    default_message = "This sign-in is not valid; log in again."


class RefreshTokenExpired(AppError):
    code = ErrorCode.REFRESH_TOKEN_EXPIRED
    status = 401
    default_message = "Your session expired; log in again."


class RefreshTokenRevoked(AppError):
    """The session was ended: logout, another device, a password change. The message says which."""

    code = ErrorCode.REFRESH_TOKEN_REVOKED
    status = 401
    default_message = "This session was ended; log in again."


class RefreshTokenReused(AppError):
    """A refresh token that had already been replaced came back: it may have been stolen, so
    the whole session it belongs to has been ended."""

    code = ErrorCode.REFRESH_TOKEN_REUSED
    status = 401
    default_message = (
        "This session was ended because an old copy of its sign-in was used; log in again."
    )
    # True only for the attempt that found the reuse and ended the session (later attempts
    # with the session's tokens get the same answer).
    ended_now = False


class WrongPassword(AppError):
    """The current password, when changing it (403, not 401: the caller stays signed in)."""

    code = ErrorCode.WRONG_PASSWORD
    status = 403
    default_message = "The current password is not right."


class UsernameTaken(AppError):
    code = ErrorCode.USERNAME_TAKEN
    status = 409
    default_message = "That username is taken."


class NotFound(AppError):
    code = ErrorCode.NOT_FOUND
    status = 404
    default_message = "Not found."


class Conflict(AppError):
    code = ErrorCode.CONFLICT
    status = 409
    default_message = "That is not possible in the current state."


class TooManyAttempts(AppError):
    code = ErrorCode.TOO_MANY_ATTEMPTS
    status = 429
    default_message = "Too many failed attempts; try again later."


class RateLimited(AppError):
    code = ErrorCode.RATE_LIMITED
    status = 429
    default_message = "You are sending too fast; slow down."


class MessageTooLong(AppError):
    code = ErrorCode.MESSAGE_TOO_LONG
    status = 422
    default_message = "Messages can be at most 4000 characters."


class NotYourMessage(AppError):
    code = ErrorCode.NOT_YOUR_MESSAGE
    status = 403
    default_message = "Only its sender can change that message."


class NotGroupCreator(AppError):
    code = ErrorCode.NOT_GROUP_CREATOR
    status = 403
    default_message = "Only the group's creator can do that."


class EditWindowClosed(AppError):
    code = ErrorCode.EDIT_WINDOW_CLOSED
    status = 403
    default_message = "That message is too old to change."


class MessageDeleted(AppError):
    code = ErrorCode.MESSAGE_DELETED
    status = 409
    default_message = "That message was deleted."


class UnknownEmoji(AppError):
    code = ErrorCode.UNKNOWN_EMOJI
    status = 422
    default_message = "That emoji is not one you can react with."


class TooManyReactions(AppError):
    code = ErrorCode.TOO_MANY_REACTIONS
    status = 409
    default_message = "That message has as many different reactions as it can take."


class BadFrame(AppError):
    code = ErrorCode.BAD_FRAME
    status = 400
    default_message = "That frame is not understood."


class ServiceUnavailable(AppError):
    code = ErrorCode.SERVICE_UNAVAILABLE
    status = 503
    close_code = CloseCode.TRY_AGAIN_LATER
    default_message = "A backing service is unavailable; try again shortly."


class InternalError(AppError):
    """A bug: logged in full, reported to the client without details."""


def message_not_found() -> NotFound:
    return NotFound("Message not found.")


def conversation_not_found() -> NotFound:
    """The same answer for a missing conversation and one the caller may not see."""
    return NotFound("Conversation not found.")
