"""REST routes of the message service. Every route needs a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from backend_services.core.errors import ValidationFailed
from backend_services.core.schemas import (
    AddMemberRequest,
    ChangePage,
    Conversation,
    CreateDirectRequest,
    CreateGroupRequest,
    EditMessageRequest,
    GroupSummary,
    Message,
    MessagePage,
    Presence,
    PresenceSetting,
    ReactRequest,
    ReadRequest,
    SearchPage,
    SendMessageRequest,
    UpdateGroupRequest,
)
from backend_services.message_service.deps import (
    Conversations,
    CurrentSession,
    Messages,
    PresenceDep,
    Search,
)

router = APIRouter()

ConversationId = Annotated[str, Path(min_length=1, max_length=128)]
MessageId = Annotated[str, Path(min_length=1, max_length=128)]
SeqParam = Query(ge=0, le=2**53)
# Conversations per page of GET /conversations.
DEFAULT_PAGE = 100
MAX_PAGE = 200


@router.get("/conversations", tags=["conversations"])
async def list_conversations(
    conversations: Conversations,
    session: CurrentSession,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> list[Conversation]:
    """Your conversations, newest activity first, `limit` at a time. When more follow, the
    `Link` header's `rel="next"` URL (and `X-Next-Cursor`, its `cursor`) gets the next page."""
    page = await conversations.list_page(session, limit=limit, cursor=cursor)
    if page.next_cursor is not None:
        url = request.url.include_query_params(cursor=page.next_cursor, limit=limit)
        response.headers["Link"] = f'<{url}>; rel="next"'
        response.headers["X-Next-Cursor"] = page.next_cursor
    return page.conversations


@router.get("/conversations/{conversation_id}", tags=["conversations"])
async def get_conversation(
    conversation_id: ConversationId, conversations: Conversations, session: CurrentSession
) -> Conversation:
    return await conversations.get(session, conversation_id)


@router.patch("/conversations/{conversation_id}", tags=["conversations"])
async def update_group(
    conversation_id: ConversationId,
    body: UpdateGroupRequest,
    conversations: Conversations,
    session: CurrentSession,
) -> Conversation:
    """Rename a group or change its description (its creator only). A rename shows in the
    stream as a system line, which also tells every member's app."""
    return await conversations.update_group(
        session, conversation_id, name=body.name, description=body.description
    )


@router.post("/conversations/direct", tags=["conversations"])
async def open_direct(
    body: CreateDirectRequest,
    conversations: Conversations,
    session: CurrentSession,
    response: Response,
) -> Conversation:
    """The one direct conversation with `user_id` (201 when it is new, 200 when it existed)."""
    view, created = await conversations.open_direct(session, body.user_id)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return view


@router.post("/conversations/groups", status_code=201, tags=["conversations"])
async def create_group(
    body: CreateGroupRequest, conversations: Conversations, session: CurrentSession
) -> Conversation:
    """A new group with you and `member_ids` in it. Adding people counts against your hourly
    allowance (429 `rate_limited`); someone in too many groups already cannot be added (409)."""
    return await conversations.create_group(
        session, body.name, body.member_ids, is_public=body.is_public
    )


@router.get("/groups", tags=["conversations"])
async def search_groups(
    conversations: Conversations,
    _: CurrentSession,
    q: Annotated[str, Query(max_length=80)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[GroupSummary]:
    """Public groups whose name starts with `q`."""
    return await conversations.search_groups(q, limit=limit)


@router.post("/conversations/{conversation_id}/join", tags=["conversations"])
async def join_group(
    conversation_id: ConversationId, conversations: Conversations, session: CurrentSession
) -> Conversation:
    return await conversations.join(session, conversation_id)


@router.post("/conversations/{conversation_id}/leave", status_code=204, tags=["conversations"])
async def leave_group(
    conversation_id: ConversationId, conversations: Conversations, session: CurrentSession
) -> None:
    await conversations.leave(session, conversation_id)


@router.post("/conversations/{conversation_id}/members", tags=["conversations"])
async def add_member(
    conversation_id: ConversationId,
    body: AddMemberRequest,
    conversations: Conversations,
    session: CurrentSession,
) -> Conversation:
    """Add someone to a group you belong to (within your hourly allowance of adds)."""
    return await conversations.add_member(session, conversation_id, body.user_id)


@router.delete(
    "/conversations/{conversation_id}/members/{user_id}",
    status_code=204,
    tags=["conversations"],
)
async def remove_member(
    conversation_id: ConversationId,
    user_id: Annotated[str, Path(min_length=1, max_length=128)],
    conversations: Conversations,
    session: CurrentSession,
) -> None:
    """Remove someone from a group (its creator only): their sockets get `left`, the others a
    system line."""
    await conversations.remove_member(session, conversation_id, user_id)


@router.get("/conversations/{conversation_id}/messages", tags=["messages"])
async def list_messages(
    conversation_id: ConversationId,
    messages: Messages,
    session: CurrentSession,
    before_seq: Annotated[int | None, SeqParam] = None,
    after_seq: Annotated[int | None, SeqParam] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> MessagePage:
    """A page of messages in ascending seq.

    Without `after_seq`: the newest `limit` (before `before_seq` if given); `has_more` says older
    ones exist. With `after_seq`: the oldest `limit` after it (and before `before_seq`), read
    without skipping messages still being written; `has_more` says newer ones exist.
    """
    if after_seq is not None and before_seq is not None and before_seq <= after_seq + 1:
        raise ValidationFailed("before_seq must be greater than after_seq + 1.")
    return await messages.page(
        session, conversation_id, limit=limit, before_seq=before_seq, after_seq=after_seq
    )


@router.post("/conversations/{conversation_id}/messages", status_code=201, tags=["messages"])
async def send_message(
    conversation_id: ConversationId,
    body: SendMessageRequest,
    messages: Messages,
    session: CurrentSession,
    response: Response,
) -> Message:
    """Send a message; a resend with the same `client_msg_id` returns the stored one (200)."""
    msg, created = await messages.send(
        session, conversation_id, body.body, body.client_msg_id, reply_to=body.reply_to
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return msg


@router.patch("/conversations/{conversation_id}/messages/{message_id}", tags=["messages"])
async def edit_message(
    conversation_id: ConversationId,
    message_id: MessageId,
    body: EditMessageRequest,
    messages: Messages,
    session: CurrentSession,
) -> Message:
    """Replace the body of your message (within the edit window); returns it as it is now.
    Every member's sockets get it as a `change` frame."""
    return await messages.edit(session, conversation_id, message_id, body.body)


@router.delete("/conversations/{conversation_id}/messages/{message_id}", tags=["messages"])
async def delete_message(
    conversation_id: ConversationId,
    message_id: MessageId,
    messages: Messages,
    session: CurrentSession,
) -> Message:
    """Delete your message, or any in a group you created; returns it deleted (also when it
    was already)."""
    return await messages.delete(session, conversation_id, message_id)


@router.post("/conversations/{conversation_id}/messages/{message_id}/reactions", tags=["messages"])
async def react(
    conversation_id: ConversationId,
    message_id: MessageId,
    body: ReactRequest,
    messages: Messages,
    session: CurrentSession,
) -> Message:
    """Add (`add: true`) or take back your reaction; idempotent both ways."""
    return await messages.react(session, conversation_id, message_id, body.emoji, add=body.add)


@router.get("/conversations/{conversation_id}/changes", tags=["messages"])
async def list_changes(
    conversation_id: ConversationId,
    messages: Messages,
    session: CurrentSession,
    after_change: Annotated[int, SeqParam] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ChangePage:
    """Changes to messages (edits, deletions, reactions) after `after_change`, oldest first,
    each with its message as it is now; read without skipping changes still being written.
    Continue from `last_change` while `has_more`."""
    return await messages.changes(session, conversation_id, after=after_change, limit=limit)


@router.post("/conversations/{conversation_id}/read", tags=["messages"])
async def mark_read(
    conversation_id: ConversationId, body: ReadRequest, messages: Messages, session: CurrentSession
) -> dict[str, str | int]:
    """Move your read marker forward to `seq`; returns where it now is."""
    seq = await messages.read_to(session, conversation_id, body.seq)
    return {"conversation_id": conversation_id, "seq": seq}


@router.get("/conversations/{conversation_id}/presence", tags=["presence"])
async def conversation_presence(
    conversation_id: ConversationId,
    conversations: Conversations,
    presence: PresenceDep,
    session: CurrentSession,
) -> list[Presence]:
    """Whether each member is there (you included): online, away, or offline with when they
    were last seen. Changes follow on the socket as `presence` frames."""
    view = await conversations.get(session, conversation_id)
    return await presence.presence_of([member.id for member in view.members])


@router.get("/presence/me", tags=["presence"])
async def my_presence_setting(presence: PresenceDep, session: CurrentSession) -> PresenceSetting:
    return await presence.setting(session.user.id)


@router.put("/presence/me", tags=["presence"])
async def set_my_presence_setting(
    body: PresenceSetting, presence: PresenceDep, session: CurrentSession
) -> PresenceSetting:
    """Appear offline (or not) to everyone, on all your devices; your sockets get a
    `presence_setting` frame."""
    return await presence.set_setting(session.user.id, body.appear_offline)


@router.get("/search", tags=["messages"])
async def search_messages(
    search: Search,
    session: CurrentSession,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    conversation_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> SearchPage:
    """Messages in your conversations (or in `conversation_id`) with every word of `q`, newest
    first: `"a phrase"` as written, `from:username`, `in:#group` or `in:@username` (a direct
    conversation). Continue with `cursor` = the page's `next_cursor`."""
    return await search.search(
        session, q, conversation_id=conversation_id, cursor=cursor, limit=limit
    )
