"""Conversations and messages of the signed-in user, and sending.

The live connection (state/live.py) feeds this state; pages and components only read it and call
its events. Messages of conversations that are not open are kept backend-side (`_cache`), so the
browser only ever receives the open conversation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from typing import Any

import reflex as rx

from backend_services.core.schemas import Conversation, Message
from letschat_app import api_client
from letschat_app.state.models import ChatItem, MessageItem, chat_item, message_item, preview
from letschat_app.state.session import SessionState

# Frames waiting for this tab's live socket, by Reflex client token. Not state: a queue can't be
# serialised, and it belongs to this process, like the socket it feeds.
OUTBOXES: dict[str, asyncio.Queue[dict[str, Any]]] = {}
PAGE_SIZE = 50


def outbox(client_token: str) -> asyncio.Queue[dict[str, Any]]:
    return OUTBOXES.setdefault(client_token, asyncio.Queue(maxsize=1000))


class ChatState(SessionState):
    chats: rx.Field[list[ChatItem]] = rx.field(default_factory=list)
    active_id: str = ""
    messages: rx.Field[list[MessageItem]] = rx.field(default_factory=list)
    has_older: bool = False
    loading_older: bool = False
    first_unread_seq: int = 0
    # connecting | connected | reconnecting
    connection: str = "connecting"
    error: str = ""
    muted_json: str = rx.LocalStorage("[]", name="letschat_muted", sync=True)
    notify: str = rx.LocalStorage("off", name="letschat_notify", sync=True)

    # The conversation list has been fetched: the live socket resumes from its cursors.
    _chats_loaded: bool = False
    _cache: dict[str, list[MessageItem]] = {}
    _has_older: dict[str, bool] = {}
    # client_msg_id -> (conversation_id, body, time first sent)
    _pending: dict[str, tuple[str, str, float]] = {}

    # --- derived ---------------------------------------------------------------------------

    @rx.var
    def total_unread(self) -> int:
        return sum(chat.unread for chat in self.chats if not chat.muted)

    @rx.var
    def page_title(self) -> str:
        return f"({self.total_unread}) Let's Chat" if self.total_unread else "Let's Chat"

    @rx.var
    def active(self) -> ChatItem:
        return next((chat for chat in self.chats if chat.id == self.active_id), ChatItem())

    def _muted(self) -> set[str]:
        try:
            return set(json.loads(self.muted_json or "[]"))
        except ValueError:
            return set()

    # --- loading ---------------------------------------------------------------------------

    @rx.event
    async def load_chats(self):
        if not self.token:
            return None
        try:
            conversations = await api_client.conversations(self.token)
        except api_client.ApiError as exc:
            return self._api_failed(exc)
        muted = self._muted()
        self.chats = [chat_item(c, self.user_id, c.id in muted) for c in conversations]
        self._chats_loaded = True
        self.error = ""
        return None

    def _api_failed(self, exc: api_client.ApiError) -> rx.event.EventSpec | None:
        if exc.ends_session:
            return self._end_session("Your session expired. Please log in again.")
        self.error = exc.message
        return None

    def upsert_chat(self, conversation: Conversation) -> None:
        item = chat_item(conversation, self.user_id, conversation.id in self._muted())
        if conversation.id == self.active_id:
            item.unread = 0
        others = [chat for chat in self.chats if chat.id != conversation.id]
        self.chats = sorted([item, *others], key=lambda c: c.last_activity, reverse=True)

    # --- opening a conversation ------------------------------------------------------------

    @rx.event
    async def open_chat(self, conversation_id: str):
        chat = next((c for c in self.chats if c.id == conversation_id), None)
        if chat is None:
            return None
        self.active_id = conversation_id
        self.first_unread_seq = chat.last_read_seq + 1 if chat.unread else 0
        if conversation_id not in self._has_older:
            try:
                page, has_older = await api_client.older_messages(self.token, conversation_id, None)
            except api_client.ApiError as exc:
                return self._api_failed(exc)
            self._merge(conversation_id, [message_item(m, self.user_id) for m in page])
            self._has_older[conversation_id] = has_older
        self._show(conversation_id)
        self._mark_read()
        return rx.call_script("window.letschat && window.letschat.scrollToFirstUnread()")

    @rx.event
    def close_chat(self) -> None:
        self.active_id = ""
        self.messages = []

    @rx.event
    async def load_older(self):
        conversation_id = self.active_id
        if not conversation_id or self.loading_older or not self.has_older:
            return
        self.loading_older = True
        yield
        oldest = next((m.seq for m in self.messages if m.seq), None)
        try:
            page, has_older = await api_client.older_messages(self.token, conversation_id, oldest)
        except api_client.ApiError as exc:
            self.loading_older = False
            yield self._api_failed(exc)
            return
        self._merge(conversation_id, [message_item(m, self.user_id) for m in page])
        self._has_older[conversation_id] = has_older
        self.loading_older = False
        if conversation_id == self.active_id:
            self._show(conversation_id)

    def _merge(self, conversation_id: str, items: list[MessageItem]) -> None:
        """Add stored messages to a conversation's cache: each once, in seq order, with any
        pending send they confirm replaced and the still-pending ones last."""
        cache = self._cache.get(conversation_id)
        if len(items) == 1 and cache is not None and _append_newest(cache, items[0]):
            return
        incoming = {m.id for m in items}
        confirmed = {m.client_msg_id for m in items if m.mine}
        kept = [
            m
            for m in self._cache.get(conversation_id, [])
            if m.id not in incoming and not (m.status != "sent" and m.client_msg_id in confirmed)
        ]
        merged = sorted([*kept, *items], key=lambda m: (m.status != "sent", m.seq))
        self._cache[conversation_id] = merged

    def _show(self, conversation_id: str) -> None:
        if conversation_id == self.active_id:
            self.messages = list(_untracked(self._cache.get(conversation_id, [])))
            self.has_older = self._has_older.get(conversation_id, False)

    def _mark_read(self) -> None:
        """The open conversation is being read: move the marker to its newest message."""
        newest = next((m.seq for m in reversed(_untracked(self.messages)) if m.status == "sent"), 0)
        chat = self.active
        if not newest or (newest <= chat.last_read_seq and chat.unread == 0):
            return
        self.chats = [
            _replace(c, unread=0, last_read_seq=max(c.last_read_seq, newest))
            if c.id == chat.id
            else c
            for c in self.chats
        ]
        self._enqueue({"type": "read", "conversation_id": chat.id, "seq": newest})

    # --- sending ---------------------------------------------------------------------------

    @rx.event
    async def send(self, form: dict[str, Any]) -> None:
        body = str(form.get("body", "")).strip()
        if not body or not self.active_id:
            return
        client_msg_id = uuid.uuid4().hex
        self._pending[client_msg_id] = (self.active_id, body, time.monotonic())
        pending = MessageItem(
            key=client_msg_id,
            conversation_id=self.active_id,
            sender_id=self.user_id,
            sender_name=self.display_name,
            body=body,
            client_msg_id=client_msg_id,
            status="pending",
            mine=True,
        )
        self._enqueue(self._send_frame(client_msg_id))
        # One turn of the loop lets this tab's socket writer put the frame on the wire before
        # this event's state delta (the whole open conversation) is built and sent.
        await asyncio.sleep(0)
        self._cache.setdefault(self.active_id, []).append(pending)
        self._show(self.active_id)

    @rx.event
    def retry(self, client_msg_id: str) -> None:
        """Send a failed message again with the same id: the service stores it at most once."""
        if client_msg_id not in self._pending:
            return
        conversation_id, body, _ = self._pending[client_msg_id]
        self._pending[client_msg_id] = (conversation_id, body, time.monotonic())
        self._set_status(conversation_id, client_msg_id, "pending")
        self._enqueue(self._send_frame(client_msg_id))

    def _send_frame(self, client_msg_id: str) -> dict[str, Any]:
        conversation_id, body, _ = self._pending[client_msg_id]
        return {
            "type": "send",
            "conversation_id": conversation_id,
            "client_msg_id": client_msg_id,
            "body": body,
        }

    def _enqueue(self, frame: dict[str, Any]) -> None:
        queue = outbox(self.router.session.client_token)
        if not queue.full():
            queue.put_nowait(frame)

    def _set_status(self, conversation_id: str, client_msg_id: str, status: str) -> None:
        for item in self._cache.get(conversation_id, []):
            if item.client_msg_id == client_msg_id and item.status != "sent":
                item.status = status
        self._show(conversation_id)

    # --- applying what the service says (called by the live connection) -------------------

    def apply_message(self, message: Message) -> bool:
        """Show a stored message; return True if it is news worth a popup.

        Only a message newer than what the sidebar already accounts for counts as unread: a
        resume may replay messages the conversation list has already counted.
        """
        conversation_id = message.conversation_id
        if message.sender_id == self.user_id:
            self._pending.pop(message.client_msg_id, None)
        self._merge(conversation_id, [message_item(message, self.user_id)])
        self._show(conversation_id)
        news = False
        chats = []
        for chat in self.chats:
            if chat.id == conversation_id and message.seq > chat.last_seq:
                news = message.sender_id != self.user_id and message.seq > chat.last_read_seq
                chat = _replace(
                    chat,
                    last_seq=message.seq,
                    preview=preview(message, self.user_id),
                    last_activity=message.created_at.isoformat(),
                    unread=chat.unread + 1 if news else chat.unread,
                )
            chats.append(chat)
        self.chats = sorted(chats, key=lambda c: c.last_activity, reverse=True)
        if conversation_id == self.active_id:
            self._mark_read()
            return False
        return news and not self.chat_by_id(conversation_id).muted

    def chat_by_id(self, conversation_id: str) -> ChatItem:
        return next((c for c in self.chats if c.id == conversation_id), ChatItem())

    def apply_read(self, conversation_id: str, seq: int) -> None:
        """Another tab read up to `seq`: recount what is still unread here."""
        cached = self._cache.get(conversation_id)
        chats = []
        for chat in self.chats:
            if chat.id == conversation_id:
                read = max(chat.last_read_seq, seq)
                if read >= chat.last_seq:
                    unread = 0
                elif cached is not None:
                    unread = sum(1 for m in cached if not m.mine and m.seq > read)
                else:
                    unread = chat.unread
                chat = _replace(chat, last_read_seq=read, unread=unread)
            chats.append(chat)
        self.chats = chats

    def apply_left(self, conversation_id: str) -> None:
        self.chats = [c for c in self.chats if c.id != conversation_id]
        self._cache.pop(conversation_id, None)
        self._has_older.pop(conversation_id, None)
        if self.active_id == conversation_id:
            self.active_id = ""
            self.messages = []

    def apply_send_failed(self, client_msg_id: str, reason: str) -> None:
        if client_msg_id in self._pending:
            conversation_id = self._pending[client_msg_id][0]
            self._set_status(conversation_id, client_msg_id, "failed")
            self.error = reason

    def expire_pending(self, older_than: float) -> None:
        """Sends without an ack for too long are shown as failed, with a retry button."""
        now = time.monotonic()
        for client_msg_id, (conversation_id, _, sent_at) in list(self._pending.items()):
            if now - sent_at > older_than:
                self._set_status(conversation_id, client_msg_id, "failed")

    def pending_frames(self) -> list[dict[str, Any]]:
        """Sends still waiting for an ack, to go again after a reconnect (same ids)."""
        return [self._send_frame(cmid) for cmid in self._pending]

    # --- preferences -----------------------------------------------------------------------

    @rx.event
    def toggle_mute(self, conversation_id: str) -> None:
        muted = self._muted() ^ {conversation_id}
        self.muted_json = json.dumps(sorted(muted))
        self.chats = [_replace(c, muted=c.id in muted) for c in self.chats]

    @rx.event
    def set_notify(self, enabled: bool):
        self.notify = "on" if enabled else "off"
        if enabled:
            return rx.call_script("window.letschat && window.letschat.askNotificationPermission()")
        return None

    @rx.event
    def dismiss_error(self) -> None:
        self.error = ""


def _replace(chat: ChatItem, **changes: Any) -> ChatItem:
    return dataclasses.replace(chat, **changes)


def _untracked(value: Any) -> Any:
    """The object behind Reflex's change-tracking proxy, to read (never to change) a whole list
    at once: through the proxy every element read wraps the element in a proxy of its own."""
    return getattr(value, "__wrapped__", value)


def _append_newest(cache: list[MessageItem], item: MessageItem) -> bool:
    """`_merge` for the common cases, in time independent of the conversation's length: a
    message newer than every stored one goes after them, before the unsent ones, and replaces
    the pending send it confirms; the newest stored one again (its ack and its message frame
    both carry it) changes nothing. Return False to leave any other case to `_merge`."""
    # The cache is in `_merge` order: stored messages by seq, then the unsent ones.
    position = len(cache)
    while position and cache[position - 1].status != "sent":
        position -= 1
    newest = cache[position - 1] if position else None
    known = newest is not None and newest.id == item.id
    if newest is not None and newest.seq >= item.seq and not known:
        return False
    if item.mine:
        for index in range(position, len(cache)):
            if cache[index].client_msg_id == item.client_msg_id:
                del cache[index]
                break
    if not known:
        cache.insert(position, item)
    return True
