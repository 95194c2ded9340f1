"""The models REST and the socket carry: accounts, sessions, conversations, messages.

Which side sends a model decides how it is read. What clients send (`ClientModel`) is strict:
unknown fields and wrong types are refused, so `{"$ne": null}` is never a string. What the
service sends (`ServiceModel`) ignores fields it does not know, so a service that adds one does
not break the clients still running during a rolling deploy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

MAX_BODY_CHARS = 4000
MAX_GROUP_MEMBERS = 1000
# Different emoji on one message, and different emoji one person put on it.
MAX_REACTIONS_PER_MESSAGE = 20
MAX_REACTIONS_PER_PERSON = 10
# Characters of the replied-to message a reply quotes.
REPLY_EXCERPT_CHARS = 200
# The epoch of a conversation from before epochs (and what a service without them implies).
LEGACY_EPOCH = "0"


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
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"),
    Field(
        description=(
            "Chosen by the client, unique per sender and conversation; reused verbatim on retries."
        )
    ),
]
Seq = Annotated[int, Field(ge=0, le=2**53)]
Epoch = Annotated[str, Field(min_length=1, max_length=64)]


def require_type(schema: JsonDict) -> None:
    """A frame's `type` has a default, for building it, but every frame on the wire has one."""
    required = schema.get("required")
    names = (
        [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
    )
    schema["required"] = ["type", *(name for name in names if name != "type")]


class ClientModel(BaseModel):
    """What a client sends: strict about unknown fields and types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ServiceModel(BaseModel):
    """What the service sends: built strictly, read leniently (unknown fields are dropped)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


# --- Users and auth ---------------------------------------------------------------------------


class User(ServiceModel):
    id: str
    username: str = Field(description="Lower case, 3-32 of `a-z 0-9 _ . -`.")
    display_name: str


class UpdateGroupRequest(ClientModel):
    name: GroupName | None = None
    description: Annotated[str, StringConstraints(max_length=300)] | None = None


class RegisterRequest(ClientModel):
    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginRequest(ClientModel):
    # Looser than RegisterRequest: a malformed name is just a wrong credential, not a 422.
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class TokenResponse(ServiceModel):
    """A signed-in session: a short-lived access token, and the refresh token that replaces it
    (`POST /auth/refresh`; each refresh token works once)."""

    user: User
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name
    expires_in: int  # Seconds the access token lasts.
    refresh_token: str
    session_id: str


class RefreshRequest(ClientModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class PasswordChangeRequest(ClientModel):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    new_password: Password


class SessionInfo(ServiceModel):
    """A device someone is signed in on."""

    id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str
    # Approximate on purpose: the network (/24 for IPv4, /48 for IPv6), not the address.
    client_network: str
    current: bool


class EndedSessions(ServiceModel):
    ended: int


# --- Messages and conversations ---------------------------------------------------------------


def _absent(value: object) -> bool:
    return value is None


def _empty(value: object) -> bool:
    return not value


class Reaction(ServiceModel):
    emoji: str
    user_ids: list[str] = Field(description="Who reacted, in the order they did.")


class ReplyPreview(ServiceModel):
    """The message a reply answers, as it was when the reply was sent (its excerpt is emptied
    when it is deleted)."""

    message_id: str
    seq: int = Field(description="Where to find it: `GET .../messages?before_seq={seq + 1}`.")
    sender_id: str
    sender_name: str
    excerpt: str = Field(description=f"Its first {REPLY_EXCERPT_CHARS} characters, as text.")
    deleted: bool = Field(default=False, exclude_if=_empty)


class SystemEvent(ServiceModel):
    """What a system line in a group's stream says happened (its message's `body` says it in
    words, for clients that do not know the event)."""

    # A string, not an enum: a client must read the events of a newer service too.
    kind: str = Field(description="`joined`, `left`, `added`, `removed`, `renamed` or `described`.")
    actor_id: str
    actor_name: str
    target_id: SkipJsonSchema[None] | str = Field(default=None, exclude_if=_absent)
    target_name: SkipJsonSchema[None] | str = Field(default=None, exclude_if=_absent)
    name: SkipJsonSchema[None] | str = Field(
        default=None, exclude_if=_absent, description="With `renamed`: the new name."
    )


class Message(ServiceModel):
    id: str = Field(description="Unique; the key to deduplicate on.")
    conversation_id: str
    seq: int = Field(
        description=(
            "Position in the conversation. Increases with every message but may skip numbers "
            "(seqs lost to failed writes are never shown)."
        ),
        json_schema_extra={"minimum": 1},
    )
    sender_id: str
    sender_name: str = Field(description="The sender's display name when the message was sent.")
    body: str = Field(
        description=(
            "Trimmed, 1-4000 characters (empty once deleted). A small markdown subset; render "
            "it without raw HTML."
        )
    )
    client_msg_id: str = Field(description="The sender's `client_msg_id`.")
    created_at: datetime = Field(description="UTC, ISO 8601 with a `Z` suffix.")
    # What changes after sending (`change` frames carry the message as it is then). A field at
    # its default is left out, so a message nobody touched looks as it always did.
    version: int = Field(
        default=0,
        exclude_if=_empty,
        description=(
            "Counts the message's changes (edits, deletion, reactions): of two copies, keep the "
            "one with the higher version."
        ),
    )
    edited_at: SkipJsonSchema[None] | datetime = Field(
        default=None, exclude_if=_absent, description="When the body was last edited."
    )
    deleted: bool = Field(
        default=False,
        exclude_if=_empty,
        description="Deleted: `body` is empty and its text is gone from the store.",
    )
    reactions: list[Reaction] = Field(
        default=[], exclude_if=_empty, description="Per emoji, who reacted, first emoji first."
    )
    reply_to: SkipJsonSchema[None] | ReplyPreview = Field(default=None, exclude_if=_absent)
    system: SkipJsonSchema[None] | SystemEvent = Field(
        default=None,
        exclude_if=_absent,
        description=(
            "A system line (someone joined, left, was added or removed; the group was "
            "renamed), from the member who did it; not to be answered or changed."
        ),
    )


class Presence(ServiceModel):
    """Whether someone is there: `online` (a tab of theirs is open and used), `away` (every tab
    idle for 5 minutes, or hidden) or `offline` (no tab open, or they appear offline)."""

    user_id: str
    # A string, not an enum: a client must read the statuses of a newer service too.
    status: str = Field(description="`online`, `away` or `offline`.")
    last_seen_at: SkipJsonSchema[None] | datetime = Field(
        default=None,
        exclude_if=_absent,
        description="When an offline person was last connected, to the minute (if known).",
    )


class PresenceSetting(ClientModel):
    appear_offline: bool = Field(
        description="Show you as offline to everyone, whatever your tabs report."
    )


class SearchPage(ServiceModel):
    """Messages that match a search, newest first."""

    messages: list[Message]
    next_cursor: SkipJsonSchema[None] | str = Field(
        default=None,
        exclude_if=_absent,
        description=(
            "Pass as `cursor` for the next page; absent when nothing older matches. A page may "
            "hold fewer results than asked (even none) and still have a cursor: the search read "
            "as much as one page may and goes on from there."
        ),
    )


class MessagePage(ServiceModel):
    messages: list[Message]
    has_more: bool


class Conversation(ServiceModel):
    """A conversation as one member sees it (name, unread count and marker are theirs)."""

    id: str
    kind: Literal["direct", "group"]
    name: str = Field(
        description="The group's name, or the other person's display name for a direct one."
    )
    members: list[User]
    is_public: bool
    last_seq: int = Field(
        description="Seq of the newest message (0 when there is none).",
        json_schema_extra={"minimum": 0},
    )
    last_message: Message | None
    unread: int = Field(
        description="Others' messages after `last_read_seq`, counted up to 1000.",
        json_schema_extra={"minimum": 0},
    )
    last_read_seq: int = Field(json_schema_extra={"minimum": 0})
    created_at: datetime
    # Which history of the conversation `last_seq` counts in: a new epoch means the stored
    # history was replaced (restored from a backup), and cursors from another epoch are void.
    epoch: str = Field(
        default=LEGACY_EPOCH,
        description=(
            "The history `last_seq` counts in. Send it back with the cursor on `resume`; a new "
            "epoch (after a restore) answers an old cursor with `reset`."
        ),
    )
    created_by: str = Field(
        default="",
        description=(
            "Who created it (a group's creator may delete anyone's message in it, rename it, "
            "describe it and remove members)."
        ),
    )
    description: str = Field(
        default="", exclude_if=_empty, description="A group's description, set by its creator."
    )
    last_change: int = Field(
        default=0,
        description=(
            "The conversation's change counter (edits, deletions, reactions): where a client "
            "starts its change cursor when it reads this view before the messages (a change "
            "made in between comes again; one made before is in the messages it reads)."
        ),
        json_schema_extra={"minimum": 0},
    )


class GroupSummary(ServiceModel):
    """A public group as shown to someone who may join it."""

    id: str
    name: str
    member_count: int
    last_seq: int


class CreateDirectRequest(ClientModel):
    user_id: ObjectIdStr


class CreateGroupRequest(ClientModel):
    name: GroupName
    member_ids: Annotated[list[ObjectIdStr], Field(max_length=MAX_GROUP_MEMBERS - 1)] = []
    is_public: bool = False


class AddMemberRequest(ClientModel):
    user_id: ObjectIdStr


class SendMessageRequest(ClientModel):
    # Length is checked by the store, so an over-long body gets its own code (message_too_long).
    body: str
    client_msg_id: ClientMsgId
    reply_to: ObjectIdStr | None = Field(
        default=None, description="The id of the message (in this conversation) it answers."
    )


class EditMessageRequest(ClientModel):
    body: str


class ReactRequest(ClientModel):
    emoji: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    add: bool = Field(description="True adds your reaction, false takes it back; both idempotent.")


class Change(ServiceModel):
    """A change to a message (edit, deletion, reaction), numbered in its conversation."""

    change: int = Field(json_schema_extra={"minimum": 1})
    message: Message = Field(description="The message as it is after the change.")


class ChangePage(ServiceModel):
    changes: list[Change]
    last_change: int = Field(
        description="The change cursor to continue from (lost numbers included).",
        json_schema_extra={"minimum": 0},
    )
    has_more: bool


class ReadRequest(ClientModel):
    seq: Seq


class Cursor(ClientModel):
    """Where a client is in one conversation: the newest seq it received, in the history
    whose epoch it was given with the conversation."""

    seq: Seq
    epoch: Epoch
    change: SkipJsonSchema[None] | Seq = Field(
        default=None,
        exclude_if=_absent,
        description=(
            "The newest change number received (see `Conversation.last_change`). Absent: "
            "changes are followed live from now, none caught up."
        ),
    )
