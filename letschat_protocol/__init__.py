"""The wire protocol of Let's Chat: what the services and their clients say to each other.

Both sides import it; it depends on pydantic alone. `models` holds what REST and the socket
carry, `client` and `server` the socket's frames each way (a tagged union and a parser each),
`codes` the error and close codes. docs/asyncapi.yaml is generated from it
(`python -m letschat_protocol.asyncapi`).
"""

from letschat_protocol.client import (
    AuthFrame,
    ClientFrame,
    PingFrame,
    ReadFrame,
    ResumeFrame,
    SendFrame,
    client_frame_adapter,
    parse_client_frame,
)
from letschat_protocol.codes import CloseCode, ErrorCode, must_not_reconnect
from letschat_protocol.models import (
    LEGACY_EPOCH,
    Conversation,
    Cursor,
    GroupSummary,
    Message,
    MessagePage,
    SessionInfo,
    TokenResponse,
    User,
)
from letschat_protocol.server import (
    AckFrame,
    AuthedFrame,
    ConversationFrame,
    ErrorFrame,
    LeftFrame,
    LimitedFrame,
    MessageFrame,
    PongFrame,
    ReadMarkerFrame,
    ReadyFrame,
    ResetFrame,
    ResumedFrame,
    ServerFrame,
    parse_server_frame,
    server_frame_adapter,
)

__all__ = [
    "LEGACY_EPOCH",
    "AckFrame",
    "AuthFrame",
    "AuthedFrame",
    "ClientFrame",
    "CloseCode",
    "Conversation",
    "ConversationFrame",
    "Cursor",
    "ErrorCode",
    "ErrorFrame",
    "GroupSummary",
    "LeftFrame",
    "LimitedFrame",
    "Message",
    "MessageFrame",
    "MessagePage",
    "PingFrame",
    "PongFrame",
    "ReadFrame",
    "ReadMarkerFrame",
    "ReadyFrame",
    "ResetFrame",
    "ResumeFrame",
    "ResumedFrame",
    "SendFrame",
    "ServerFrame",
    "SessionInfo",
    "TokenResponse",
    "User",
    "client_frame_adapter",
    "must_not_reconnect",
    "parse_client_frame",
    "parse_server_frame",
    "server_frame_adapter",
]
