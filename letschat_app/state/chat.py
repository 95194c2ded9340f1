"""Conversations and messages of the signed-in user: a thin Reflex layer over `ChatModel`.

The model (letschat_app/model/) holds every rule; this state runs it on events and publishes
what the page shows, each var only when it changed. The open conversation is published as
`SLOTS` small lists (see model/timeline.py), so a new message re-sends one of them, not the
whole conversation. Only `@rx.event` methods are public: everything else is private, so no page
can call it by name.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from datetime import UTC, datetime
from typing import Any

import reflex as rx

from letschat_app import api_client
from letschat_app.model.chat import ChatModel
from letschat_app.model.sidebar import CHUNKS as CHAT_CHUNKS
from letschat_app.model.timeline import SLOTS
from letschat_app.state.models import ChatItem, MessageItem, Person, expand_shortcodes
from letschat_app.state.session import SessionState, notice_for
from letschat_protocol import ClientFrame, Conversation, client_frame_adapter
from letschat_protocol.models import MAX_BODY_CHARS

# Frames waiting for this tab's live socket, by Reflex client token. Not state: a queue can't be
# serialised, and it belongs to this process, like the socket it feeds.
OUTBOXES: dict[str, asyncio.Queue[ClientFrame]] = {}
# Tabs with work for the live connection's idle tick (a send waiting for its ack, a read held
# back), by client token: an idle tab's tick then costs no state round trip.
TICK_WANTED: set[str] = set()
PAGE_SIZE = 50
# How many older pages a jump to a replied-to message loads at most (50 messages each).
JUMP_PAGES = 20


def added_notice_id(conversation_id: str) -> str:
    """The toast that tells someone who added them to a group (one per group)."""
    return f"added-{conversation_id}"


def focus_composer(opened: str = "") -> rx.event.EventSpec:
    """Put the focus in the composer once this event's changes are on the page; `opened`: the
    conversation the event opened, which letschat.js waits for the page to show (with its
    draft) before it does, and gives what was typed after the switcher's Enter."""
    return rx.call_script(f"window.letschat && window.letschat.focusComposer({json.dumps(opened)})")


def outbox(client_token: str) -> asyncio.Queue[ClientFrame]:
    return OUTBOXES.setdefault(client_token, asyncio.Queue(maxsize=1000))


def slot_name(index: int) -> str:
    return f"slot_{index}"


def chats_name(chunk: int) -> str:
    return f"chats_{chunk}"


class ChatState(SessionState):
    # The sidebar: places of the conversations, newest activity first; each chunk holds the
    # conversations of CHUNK places (model/sidebar.py).
    chat_order: rx.Field[list[int]] = rx.field(default_factory=list)
    locals().update({chats_name(n): rx.field(default_factory=list) for n in range(CHAT_CHUNKS)})
    __annotations__.update({chats_name(n): "rx.Field[list[ChatItem]]" for n in range(CHAT_CHUNKS)})
    active_id: str = ""
    active: rx.Field[ChatItem] = rx.field(default_factory=ChatItem)
    # The other members of the open conversation, whom the composer offers to @mention.
    active_members: rx.Field[list[Person]] = rx.field(default_factory=list)
    total_unread: int = 0
    # The open conversation's window: slot_order lists the slots oldest first; each slot holds
    # the stored messages of one seq bucket; `unsent` the sends not stored yet.
    slot_order: rx.Field[list[int]] = rx.field(default_factory=list)
    unsent: rx.Field[list[MessageItem]] = rx.field(default_factory=list)
    # slot_0 … slot_{SLOTS-1}, declared in a loop (read them with getattr and `slot_name`;
    # likewise the sidebar's chunks with `chats_name`).
    locals().update({slot_name(n): rx.field(default_factory=list) for n in range(SLOTS)})
    __annotations__.update({slot_name(n): "rx.Field[list[MessageItem]]" for n in range(SLOTS)})
    has_older: bool = False
    at_newest: bool = True
    # "Ada is typing…" under the open conversation's messages ("" when nobody is).
    typing_line: str = ""
    # Everyone in the open conversation, with whether they are there; for a direct one, what
    # its header says of the other person ("Online", "Last seen today at 14:05").
    active_people: rx.Field[list[Person]] = rx.field(default_factory=list)
    active_presence: str = ""
    # The user's "appear offline" setting (every device of theirs; the service keeps it).
    appear_offline: bool = False
    loading_older: bool = False
    first_unread_seq: int = 0
    # connecting | connected | reconnecting: the Reflex backend's socket to the message service.
    connection: str = "connecting"
    error: str = ""
    # The composer edits one of the user's messages (its id and body), or answers one.
    editing_id: str = ""
    editing_body: str = ""
    replying: rx.Field[MessageItem] = rx.field(default_factory=MessageItem)
    # A message the user asked to delete, waiting for them to confirm.
    deleting_id: str = ""
    muted_json: str = rx.LocalStorage("[]", name="letschat_muted", sync=True)
    notify: str = rx.LocalStorage("off", name="letschat_notify", sync=True)

    # Answers started in conversations the user left, waiting there for them to come back.
    _replies: dict[str, MessageItem] = {}
    # The conversation list has been fetched: the live socket may resume from the cursors.
    _chats_loaded: bool = False
    _model: ChatModel = ChatModel()

    @rx.var
    def moderates(self) -> bool:
        """The open conversation is a group the user created: they may delete any message."""
        return (
            self.active.kind == "group"
            and bool(self.user_id)
            and (self.active.created_by == self.user_id)
        )

    @rx.var
    def page_title(self) -> str:
        return f"({self.total_unread}) Let's Chat" if self.total_unread else "Let's Chat"

    # --- events -----------------------------------------------------------------------------

    @rx.event
    async def load_chats(self):
        if not self.token:
            return None
        try:
            conversations = await self._call(api_client.conversations)
        except api_client.ApiError as exc:
            return self._api_failed(exc)
        model = self._chat_model()
        # Mutes are read here, once per page load (they sync across tabs in localStorage),
        # not on every published change.
        model.set_muted(_parse_muted(self.muted_json))
        model.load(conversations, time.monotonic())
        self._chats_loaded = True
        self.error = ""
        return [
            *self._publish(),
            rx.call_script(
                "Intl.DateTimeFormat().resolvedOptions().timeZone",
                callback=ChatState.set_time_zone,
            ),
        ]

    @rx.event
    async def refresh_chat(self, conversation_id: str):
        """A group changed (a system line came): its name, members and description again."""
        if not isinstance(conversation_id, str) or not self.token:
            return None
        try:
            conversation = await self._call(api_client.conversation, conversation_id)
        except api_client.ApiError as exc:
            if exc.status == 404:  # Removed from it meanwhile: `left` says so.
                return None
            return self._api_failed(exc)
        if conversation_id in self._chat_model().chats:
            self._upsert_chat(conversation)
        return None

    @rx.event
    def set_time_zone(self, name: str):
        """Where the viewer's days begin (for the day lines in the stream)."""
        if not isinstance(name, str) or len(name) > 64:
            return None
        self._chat_model().set_time_zone(name)
        return self._publish()

    @rx.event
    async def open_chat(self, conversation_id: str):
        return await self._open(conversation_id)

    @rx.event
    async def open_to_type(self, conversation_id: str):
        """The quick switcher's choice: open it, then put the focus in its composer (with what
        was typed since, letschat.js), only if it opened."""
        return await self._open(conversation_id, focus=True)

    async def _open(self, conversation_id: str, *, focus: bool = False):
        model = self._chat_model()
        before = model.active_id
        fetch = model.open(conversation_id, time.monotonic())
        if model.active_id != conversation_id:
            return None
        if conversation_id != before:
            self._switch_compose_mode(before, conversation_id)
        if fetch and (failed := await self._fetch_page(conversation_id, None)) is not None:
            return failed
        return [
            *self._publish(),
            rx.call_script("window.letschat && window.letschat.scrollToFirstUnread()"),
            # Opened: the notice that someone added you to it has done its work.
            rx.toast.dismiss(added_notice_id(conversation_id)),
            *([focus_composer(conversation_id)] if focus else []),
        ]

    @rx.event
    def close_chat(self):
        model = self._chat_model()
        self._switch_compose_mode(model.active_id, "")
        model.leave(time.monotonic())
        return self._publish()

    def _switch_compose_mode(self, left: str, opened: str) -> None:
        """Another conversation opens: an edit started in the one `left` ends there, and an
        answer waits there (like the draft, letschat.js) until it is open again."""
        if left and self.replying.id:
            self._replies[left] = self.replying
        self._end_compose_mode()
        if opened:
            self.replying = self._replies.pop(opened, MessageItem())

    def _end_compose_mode(self) -> None:
        self.editing_id, self.editing_body = "", ""
        self.replying = MessageItem()

    @rx.event
    async def load_older(self):
        conversation_id = self.active_id
        if not conversation_id or self.loading_older or not self.has_older:
            return
        self.loading_older = True
        yield
        oldest = self._chat_model().timeline(conversation_id).oldest_seq
        failed = await self._fetch_page(conversation_id, oldest)
        self.loading_older = False
        yield failed or self._publish()

    @rx.event
    async def jump_to_newest(self):
        scroll = rx.call_script("window.letschat && window.letschat.scrollToNewest()")
        if self._chat_model().jump_to_newest():
            failed = await self._fetch_page(self.active_id, None)
            if failed is not None:
                return failed
        return [*self._publish(), scroll]

    @rx.event
    def set_seen(self, seen: bool):
        """letschat.js: the tab is (or stopped being) visible, focused and at the newest."""
        self._chat_model().set_seen(seen, time.monotonic())
        return self._publish()

    @rx.event
    async def send(self, form: dict[str, Any]) -> None:
        model = self._chat_model()
        body = expand_shortcodes(str(form.get("body", "")).strip())
        if self.editing_id:
            editing, self.editing_id, self.editing_body = self.editing_id, "", ""
            if model.edit(editing, body):
                self._publish()
            return
        replying, self.replying = self.replying.id, MessageItem()
        if not model.send(body, time.monotonic(), reply_to=replying):
            if len(body) > MAX_BODY_CHARS:  # The composer holds these back; a safety net.
                self.error = (
                    f"A message can be at most {MAX_BODY_CHARS:,} characters; "
                    f"that one had {len(body):,}."
                )
            return
        self._flush_outbox(model)
        # One turn of the loop lets this tab's socket writer put the frame on the wire before
        # this event's state delta is built and sent.
        await asyncio.sleep(0)
        self._publish()

    @rx.event
    def set_away(self, away: bool):
        """letschat.js: this tab is away (hidden, or unused for 5 minutes), or back."""
        if isinstance(away, bool):
            self._chat_model().set_away(away)
        return self._publish()

    @rx.event
    async def load_appear_offline(self):
        try:
            setting = await self._call(api_client.presence_setting)
        except api_client.ApiError as exc:
            return self._api_failed(exc)
        self.appear_offline = setting.appear_offline
        return None

    @rx.event
    async def toggle_appear_offline(self):
        try:
            setting = await self._call(api_client.set_presence_setting, not self.appear_offline)
        except api_client.ApiError as exc:
            return self._api_failed(exc)
        self.appear_offline = setting.appear_offline
        return None

    @rx.event
    def typed(self):
        """letschat.js: the user typed in the composer (at most every few seconds)."""
        self._chat_model().typed(time.monotonic())
        return self._publish()

    @rx.event
    def stopped_typing(self):
        """letschat.js: the user left or emptied the composer without sending."""
        self._chat_model().stopped_typing(time.monotonic())
        return self._publish()

    @rx.event
    def start_edit(self, message_id: str = ""):
        """Edit a message of the user's in the composer (their newest, without an id: ↑ in an
        empty composer)."""
        model = self._chat_model()
        item = model.own_message(message_id)
        if item is not None:
            self.replying = MessageItem()
            self.editing_id, self.editing_body = item.id, item.body
        # Answered even with nothing to edit: letschat.js holds an Enter typed meanwhile.
        return focus_composer()

    @rx.event
    def start_reply(self, message_id: str):
        item = self._chat_model().shown_message(message_id)
        if item is None or item.deleted:
            return None
        self.editing_id, self.editing_body = "", ""
        self.replying = item
        return focus_composer()

    @rx.event
    def cancel_compose(self) -> None:
        """Stop editing or answering (Escape, or the ✕ above the composer)."""
        self._end_compose_mode()

    @rx.event
    def react(self, message_id: str, emoji: str, add: bool):
        if isinstance(emoji, str) and isinstance(add, bool):
            self._chat_model().react(message_id, emoji, add=add)
        return self._publish()

    @rx.event
    def toggle_reaction(self, message_id: str, emoji: str, mine: bool):
        """A click on a reaction: the viewer's goes if it was there, else it is added."""
        if isinstance(emoji, str) and isinstance(mine, bool):
            self._chat_model().react(message_id, emoji, add=not mine)
        return self._publish()

    @rx.event
    def ask_delete(self, message_id: str) -> None:
        self.deleting_id = message_id

    @rx.event
    def cancel_delete(self) -> None:
        self.deleting_id = ""

    @rx.event
    def delete_message(self, message_id: str):
        """The deletion was confirmed."""
        self.deleting_id = ""
        if isinstance(message_id, str) and message_id:
            self._chat_model().delete(message_id)
        return self._publish()

    @rx.event
    async def jump_to_message(self, message_id: str, seq: int):
        """Show a message (a reply's original): loading older pages until the window holds
        it, then scrolling it into view."""
        model = self._chat_model()
        conversation_id = self.active_id
        if not conversation_id or not isinstance(seq, int):
            return None
        timeline = model.timeline(conversation_id)
        for _ in range(JUMP_PAGES):
            oldest = timeline.oldest_seq
            if timeline.find(message_id) is not None or not timeline.has_older:
                break
            if oldest is None or oldest <= seq:
                break
            failed = await self._fetch_page(conversation_id, oldest)
            if failed is not None:
                return failed
        script = f"window.letschat && window.letschat.showMessage({json.dumps(message_id)})"
        return [*self._publish(), rx.call_script(script)]

    @rx.event
    async def leave_group(self, conversation_id: str):
        """Leave a group from outside it (the notice that someone added you)."""
        try:
            await self._call(api_client.leave, conversation_id)
        except api_client.ApiError as exc:
            return self._api_failed(exc)
        self._left(conversation_id)
        return rx.toast.dismiss(added_notice_id(conversation_id))

    @rx.event
    def retry(self, client_msg_id: str):
        self._chat_model().retry(client_msg_id, time.monotonic())
        return self._publish()

    @rx.event
    def toggle_mute(self, conversation_id: str):
        model = self._chat_model()
        muted = model.muted ^ {conversation_id}
        self.muted_json = json.dumps(sorted(muted))
        model.set_muted(muted)
        return self._publish()

    @rx.event
    def set_notify(self, enabled: bool):
        self.notify = "on" if enabled else "off"
        if enabled:
            return rx.call_script("window.letschat && window.letschat.askNotificationPermission()")
        return None

    @rx.event
    def dismiss_error(self) -> None:
        self.error = ""

    # --- helpers for this state, its substates and the live connection ----------------------

    def _chat_model(self) -> ChatModel:
        model = self._model
        if model.user_id != self.user_id:
            # Another person signed in in this tab: start afresh.
            model = self._model = ChatModel(self.user_id, self.display_name, self.username)
            model.places.touch_all()
            self._chats_loaded = False
            self._replies = {}
            self._end_compose_mode()
        model.display_name = self.display_name
        model.username = self.username
        return model

    async def _fetch_page(self, conversation_id: str, before_seq: int | None) -> Any:
        try:
            page, has_older = await self._call(
                api_client.older_messages, conversation_id, before_seq, PAGE_SIZE
            )
        except api_client.ApiError as exc:
            return self._api_failed(exc)
        self._chat_model().add_page(conversation_id, page, has_older)
        return None

    def _api_failed(self, exc: api_client.ApiError) -> rx.event.EventSpec | None:
        if exc.ends_session:
            return self._end_session(notice_for(exc))
        self.error = exc.message
        return None

    def _upsert_chat(self, conversation: Conversation) -> None:
        self._chat_model().upsert(conversation)
        self._publish()

    def _left(self, conversation_id: str) -> None:
        self._chat_model().left(conversation_id)
        self._publish()

    def _flush_outbox(self, model: ChatModel, client_token: str | None = None) -> None:
        queue = outbox(client_token or self.router.session.client_token)
        for frame in model.take_outbox():
            if not queue.full():
                queue.put_nowait(client_frame_adapter.validate_python(frame))

    def _publish(self, client_token: str | None = None) -> list[Any]:
        """Copy what changed in the model to the vars the page renders; send the frames it
        queued; return the toasts to dismiss. The live socket passes the tab's `client_token`,
        which costs a router lookup otherwise."""
        client_token = client_token or self.router.session.client_token
        model = self._chat_model()
        self._flush_outbox(model, client_token)
        put = functools.partial(_put, self, model.published)
        changed_chunks = model.places.take_changes()
        if changed_chunks:
            for chunk in changed_chunks:
                put(chats_name(chunk), model.places.chunk(chunk, model.chats), always=True)
            put("chat_order", model.places.order([chat.id for chat in model.ordered_chats()]))
            put("total_unread", model.total_unread)
        put("active", model.active)
        put("active_members", model.members.get(model.active_id, []))
        switched = put("active_id", model.active_id)
        put("first_unread_seq", model.first_unread_seq)
        put("typing_line", model.typists.line(model.active_id))
        now = datetime.now(UTC)
        if model.take_people_change(model.active_id) or switched:
            put("active_people", model.people(model.active_id, now))
        put("active_presence", model.partner_line(model.active_id, now) or "Direct message")
        timeline = model.timelines.get(model.active_id) if model.active_id else None
        if timeline is None:
            if switched:
                put("slot_order", [])
                put("unsent", [])
                for index in range(SLOTS):
                    put(slot_name(index), [], always=True)
        else:
            if switched:
                timeline.touch_all()
            changed, order_changed = timeline.take_changes()
            for index in changed:
                put(slot_name(index), timeline.slot(index), always=True)
            if order_changed:
                put("slot_order", timeline.order())
            put("unsent", timeline.unsent())
            put("has_older", timeline.has_older)
            put("at_newest", timeline.at_newest)
        if model.wants_tick():
            TICK_WANTED.add(client_token)
        else:
            TICK_WANTED.discard(client_token)
        # Reassigned so a state manager that stores states (Redis) sees the change.
        self._model = model
        return [rx.toast.dismiss(toast) for toast in sorted(model.take_dismissed())]


def _put(
    state: rx.State, published: dict[str, Any], name: str, value: Any, *, always: bool = False
) -> bool:
    """Assign a var if its value changed since it was last published (or `always`); return
    whether it was assigned. Every assignment puts the var on the wire, and reading a var back
    through a background task's state proxy costs more than keeping a copy."""
    if not always and name in published and published[name] == value:
        return False
    setattr(state, name, value)
    published[name] = value
    return True


def _parse_muted(raw: str) -> set[str]:
    try:
        return {str(cid) for cid in json.loads(raw or "[]")}
    except (ValueError, TypeError):
        return set()
