"""Wire schemas shared by the services and their clients (the Reflex app imports only these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)

MAX_BODY_CHARS = 4000
MAX_GROUP_MEMBERS = 1000


def _fold_case(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


# "Alice" registers as "alice": names are unique case-insensitively and shown lower-case.
Username = Annotated[
    str,
    BeforeValidator(_fold_case),
    StringConstraints(min_length=3, max_length=32, pattern=r"^[a-z0-9_.-]+$"),
]
# Characters, not bytes: passwords are pre-hashed, so bcrypt's 72-byte limit never truncates one.
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
ObjectIdStr = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ClientMsgId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
Seq = Annotated[int, Field(ge=0, le=2**53)]
# The epoch of a conversation from before epochs (and what a service without them implies).
LEGACY_EPOCH = "0"


class WireModel(BaseModel):
    """Strict about unknown fields and types: `{"$ne": null}` is never a string."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- Users and auth -------------------------------------------------------------------------


class User(WireModel):
    id: str
    username: str
    display_name: str


class RegisterRequest(WireModel):
    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginRequest(WireModel):
    # Looser than RegisterRequest: a malformed name is just a wrong credential, not a 422.
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class TokenResponse(WireModel):
    """A signed-in session: a short-lived access token, and the refresh token that replaces it
    (`POST /auth/refresh`; each refresh token works once)."""

    user: User
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_in: int  # Seconds the access token lasts.
    refresh_token: str
    session_id: str


class RefreshRequest(WireModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class PasswordChangeRequest(WireModel):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    new_password: Password


class SessionInfo(WireModel):
    """A device someone is signed in on."""

    id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str
    # Approximate on purpose: the network (/24 for IPv4, /48 for IPv6), not the address.
    client_network: str
    current: bool


class EndedSessions(WireModel):
    ended: int


# --- Messages and conversations -------------------------------------------------------------


class Message(WireModel):
    id: str
    conversation_id: str
    seq: int
    sender_id: str
    sender_name: str
    body: str
    client_msg_id: str
    created_at: datetime


class MessagePage(WireModel):
    messages: list[Message]
    has_more: bool


class Conversation(WireModel):
    id: str
    kind: Literal["direct", "group"]
    name: str
    members: list[User]
    is_public: bool
    last_seq: int
    last_message: Message | None
    unread: int
    last_read_seq: int
    created_at: datetime
    # Which history of the conversation `last_seq` counts in: a new epoch means the stored
    # history was replaced (restored from a backup), and cursors from another epoch are void.
    epoch: str = LEGACY_EPOCH


class GroupSummary(WireModel):
    """A public group as shown to someone who may join it."""

    id: str
    name: str
    member_count: int
    last_seq: int


class CreateDirectRequest(WireModel):
    user_id: ObjectIdStr


class CreateGroupRequest(WireModel):
    name: GroupName
    member_ids: Annotated[list[ObjectIdStr], Field(max_length=MAX_GROUP_MEMBERS - 1)] = []
    is_public: bool = False


class AddMemberRequest(WireModel):
    user_id: ObjectIdStr


class SendMessageRequest(WireModel):
    # Length is checked by the store, so an over-long body gets its own code (message_too_long).
    body: str
    client_msg_id: ClientMsgId


class ReadRequest(WireModel):
    seq: Seq


# --- WebSocket frames from the client -------------------------------------------------------


class AuthFrame(WireModel):
    type: Literal["auth"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


Epoch = Annotated[str, Field(min_length=1, max_length=64)]


class Cursor(WireModel):
    """Where a client is in one conversation: the newest seq it received, in the history
    whose epoch it was given with the conversation."""

    seq: Seq
    epoch: Epoch


class ResumeFrame(WireModel):
    type: Literal["resume"]
    # A bare seq is a cursor whose history the client does not know (it is checked only for
    # running past the stored history).
    cursors: Annotated[dict[ObjectIdStr, Seq | Cursor], Field(max_length=10_000)] = {}


class SendFrame(WireModel):
    type: Literal["send"]
    conversation_id: ObjectIdStr
    client_msg_id: ClientMsgId
    body: str


class ReadFrame(WireModel):
    type: Literal["read"]
    conversation_id: ObjectIdStr
    seq: Seq


class PingFrame(WireModel):
    type: Literal["ping"]


ClientFrame = Annotated[
    AuthFrame | ResumeFrame | SendFrame | ReadFrame | PingFrame, Field(discriminator="type")
]
client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
