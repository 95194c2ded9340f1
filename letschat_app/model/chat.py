"""What one tab knows of the signed-in user's conversations, and the rules it follows.

Reflex-free, so every rule here is unit-tested without a browser; the Reflex state
(state/chat.py) is a thin layer of event handlers over it.

- **Cursors.** `cursors[cid]` is the newest seq this tab's live stream delivered (or, for a
  conversation it has never streamed, the newest seq the conversation list reported when it was
  first seen). A (re)connect resumes from these cursors and from nothing else, so whatever the
  tab shows was either received by it or is received again: a conversation list fetched later
  never moves a cursor past messages the tab has not got.
- **Change cursors.** Edits, deletions and reactions are numbered per conversation apart from
  seqs; `change_cursors[cid]` is the newest change number the stream delivered (or the
  conversation's `last_change` when first seen) and goes with the seq cursor on a resume. A
  change carries the whole message: of two copies, the higher `version` is shown.
- **Epochs.** A cursor counts in one history of its conversation, named by the epoch the
  conversation had when the tab started counting; it goes with the cursor on every resume. A
  `reset` (the stored history was replaced, e.g. restored from a backup) starts that
  conversation over from 0 in the new epoch: what the tab held of it goes, unsent messages stay.
- **Read means seen.** A conversation is read only while the tab is seen (visible, focused, the
  newest messages on screen) or when the person opens it. Otherwise a message counts as unread,
  marks where the "New messages" divider goes and pops up, as in any other conversation.
- **Cheap reads.** At most one `read` frame per conversation every `READ_INTERVAL_SECONDS`,
  plus one at once when the tab becomes seen, a conversation is opened or left. The first read
  after a quiet spell goes at once.
- **Calm popups.** The first unseen message of a conversation pops up at once; while more keep
  coming, its toast is brought up to date at most every `TOAST_REFRESH_SECONDS` (each update is a
  message to the browser, and a busy group would otherwise cost one per message per tab). An
  opted-in browser notification still goes for every message.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from letschat_app.model.presence import presence_line, status_of
from letschat_app.model.sidebar import SidebarPlaces
from letschat_app.model.timeline import Timeline, zone
from letschat_app.model.typing import Typing, Typists
from letschat_app.state.models import (
    DELETED_TEXT,
    ChatItem,
    MessageItem,
    Person,
    avatar_color,
    chat_item,
    initials,
    link_mentions,
    mentions,
    message_item,
    person,
    plain,
    preview,
)
from letschat_protocol import (
    LEGACY_EPOCH,
    Conversation,
    Cursor,
    DeleteFrame,
    EditFrame,
    Message,
    Presence,
    PresenceFrame,
    ReactFrame,
    ReadFrame,
    ResumeFrame,
    SendFrame,
    TypingFrame,
    TypingNoticeFrame,
    User,
)
from letschat_protocol.models import MAX_BODY_CHARS

# A tab sends at most one read per conversation per this many seconds. The service stores a
# marker at most every 2 s (LETSCHAT_READ_REPEAT_SECONDS), so reading a busy conversation more
# often would cost a frame each for nothing.
READ_INTERVAL_SECONDS = 2.0
# A conversation's toast is updated at most this often while its messages keep coming.
TOAST_REFRESH_SECONDS = 2.0


@dataclass
class Pending:
    """A send without an ack yet: resent with the same id after a reconnect."""

    conversation_id: str
    body: str
    sent_at: float
    reply_to: str | None = None


@dataclass
class Popup:
    """News worth a toast (and an opted-in browser notification)."""

    message: Message
    count: int
    toast_id: str
    # False: only the notification goes now; the toast catches up on a later tick.
    toast: bool = True


@dataclass
class _Read:
    """The last read frame this tab sent for a conversation."""

    sent_seq: int = 0
    sent_at: float = float("-inf")


class ChatModel:
    """Conversations, their timelines, cursors, read markers and pending sends of one tab."""

    def __init__(self, user_id: str = "", display_name: str = "", username: str = "") -> None:
        self.user_id = user_id
        self.display_name = display_name
        self.username = username  # Messages that say @username mention this person.
        self.chats: dict[str, ChatItem] = {}
        self.cursors: dict[str, int] = {}
        # The epoch each cursor counts in (set with the cursor, changed only by `reset`).
        self.epochs: dict[str, str] = {}
        self.change_cursors: dict[str, int] = {}
        # Display names of the people in the user's conversations (who reacted), and who is
        # in each conversation (whom a message may @mention).
        self.names: dict[str, str] = {}
        self.members: dict[str, list[Person]] = {}
        self.timelines: dict[str, Timeline] = {}
        self.pending: dict[str, Pending] = {}
        self.muted: set[str] = set()
        self.time_zone = ""  # The viewer's (an IANA name); UTC until their browser says.
        self.active_id = ""
        self.first_unread_seq = 0
        self.seen = False
        # Frames for the live socket, taken by the state after each change: built by their
        # protocol models and kept in wire form (plain data, as tests and the state read them).
        self.outbox: list[dict[str, Any]] = []
        # Toasts that should go: what they announced was read.
        self.dismissed: set[str] = set()
        # Who this tab shows typing; when it tells the others that its user types.
        self.typists = Typists()
        self.typing = Typing()
        # Whether people are there (the last the service said of each), everyone in each
        # conversation, and the conversations whose member list changed since it was shown.
        self.presence: dict[str, Presence] = {}
        self.users: dict[str, User] = {}
        self.member_ids: dict[str, list[str]] = {}
        self._people_changed: set[str] = set()
        # Whether this tab is away (hidden, or unused for a while), as letschat.js says.
        self.away = False
        # Groups whose details changed (a system line came): fetched again by the state.
        self.stale: set[str] = set()
        self._reads: dict[str, _Read] = {}
        # Conversations read further than the service has been told.
        self._read_due: set[str] = set()
        # Conversation -> the toast still up for it: (its id, the newest seq it announced).
        # A toast's id is new each time (sonner drops a toast that reuses a dismissed id).
        self._toasts: dict[str, tuple[str, int]] = {}
        # Conversation -> when its toast was last shown or updated, and the update waiting.
        self._toasted_at: dict[str, float] = {}
        self._toast_due: dict[str, Popup] = {}
        # Toast updates whose time came on a tick, for the state to show.
        self.due_popups: list[Popup] = []
        # What the Reflex state last published, by var name (kept by state/chat.py).
        self.published: dict[str, Any] = {}
        # Places of the conversations in the sidebar's chunks; a change marks its chunk.
        self.places = SidebarPlaces()

    # --- the conversation list --------------------------------------------------------------

    def load(self, conversations: Iterable[Conversation], now: float) -> None:
        """Take the conversation list from the store. Cursors already held stay as they are:
        what the tab missed comes again through the stream."""
        listed = list(conversations)
        self._learn_names(listed)
        fresh = {c.id: self._item(c) for c in listed}
        for conversation_id, item in fresh.items():
            known = self.chats.get(conversation_id)
            if known is not None and known.mentioned_seq:
                fresh[conversation_id] = dataclasses.replace(
                    item, mentioned_seq=known.mentioned_seq
                )
        for gone in set(self.chats) - set(fresh):
            self._forget(gone)
            self.places.remove(gone)
        for conversation in listed:
            self._count_from(conversation, fresh[conversation.id].last_seq)
            self.places.changed(conversation.id)
        self.chats = fresh
        active = self.chats.get(self.active_id)
        if active is not None and self.seen:
            self._read_upto(active, active.last_seq, now=now, force=True)

    def upsert(self, conversation: Conversation) -> None:
        """A conversation the user now belongs to, or whose details changed."""
        self._learn_names([conversation])
        item = self._item(conversation)
        known = self.chats.get(conversation.id)
        if known is not None:
            # The stream is the authority on what this tab has received and read.
            item = dataclasses.replace(
                item,
                last_seq=known.last_seq,
                last_read_seq=known.last_read_seq,
                unread=known.unread,
                preview=known.preview,
                last_activity=known.last_activity,
                mentioned_seq=known.mentioned_seq,
            )
        self._count_from(conversation, item.last_seq)
        self.chats[conversation.id] = item
        self.places.changed(conversation.id)

    def _count_from(self, conversation: Conversation, seq: int) -> None:
        """A conversation first seen: its cursor starts at `seq`, in the epoch it has now."""
        if conversation.id not in self.cursors:
            self.cursors[conversation.id] = seq
            self.epochs[conversation.id] = conversation.epoch
        # A conversation started over (`reset`) counts its changes from the next list.
        self.change_cursors.setdefault(conversation.id, conversation.last_change)

    def _learn_names(self, conversations: Iterable[Conversation]) -> None:
        for conversation in conversations:
            ids = [member.id for member in conversation.members]
            if self.member_ids.get(conversation.id) != ids:
                self.member_ids[conversation.id] = ids
                self._people_changed.add(conversation.id)
            for member in conversation.members:
                self.names[member.id] = member.display_name
                self.users[member.id] = member
            self.members[conversation.id] = [
                person(member) for member in conversation.members if member.id != self.user_id
            ]

    def reset(self, conversation_id: str, epoch: str) -> None:
        """The stored history of a conversation is not the one this tab counted in: forget
        the messages the tab holds of it and count from 0 in `epoch`. Its messages come again
        from the start; unsent messages stay and go again after the resume, as always."""
        self.cursors[conversation_id] = 0
        self.epochs[conversation_id] = epoch
        # Changes of the new history are followed from when the socket resumes.
        self.change_cursors.pop(conversation_id, None)
        timeline = self.timelines.get(conversation_id)
        if timeline is not None:
            timeline.reset()  # Unsent messages stay in it.
        self.places.changed(conversation_id)

    def left(self, conversation_id: str) -> None:
        self._forget(conversation_id)
        self.chats.pop(conversation_id, None)
        self.places.remove(conversation_id)

    def set_muted(self, muted: set[str]) -> None:
        self.muted = set(muted)
        for conversation_id, chat in self.chats.items():
            if chat.muted != (conversation_id in self.muted):
                self.chats[conversation_id] = dataclasses.replace(
                    chat, muted=conversation_id in self.muted
                )
                self.places.changed(conversation_id)

    def ordered_chats(self) -> list[ChatItem]:
        return sorted(self.chats.values(), key=lambda c: c.last_activity, reverse=True)

    @property
    def total_unread(self) -> int:
        return sum(chat.unread for chat in self.chats.values() if not chat.muted)

    @property
    def active(self) -> ChatItem:
        return self.chats.get(self.active_id, ChatItem())

    def resume_frame(self) -> ResumeFrame:
        """What a (re)connected socket resumes from: what this tab itself has received, never
        the conversation list's newer figures."""
        return ResumeFrame(
            cursors={
                cid: Cursor(
                    seq=self.cursors.get(cid, chat.last_seq),
                    epoch=self.epochs.get(cid, LEGACY_EPOCH),
                    change=self.change_cursors.get(cid),
                )
                for cid, chat in self.chats.items()
            }
        )

    def resume_cursors(self) -> dict[str, Any]:
        """The resume frame's cursors, as they go on the wire."""
        cursors: dict[str, Any] = self.resume_frame().model_dump()["cursors"]
        return cursors

    def _item(self, conversation: Conversation) -> ChatItem:
        item = chat_item(conversation, self.user_id, conversation.id in self.muted)
        if item.partner_id:
            item.presence = status_of(self.presence.get(item.partner_id))
        return item

    def _forget(self, conversation_id: str) -> None:
        self.cursors.pop(conversation_id, None)
        self.epochs.pop(conversation_id, None)
        self.change_cursors.pop(conversation_id, None)
        self.members.pop(conversation_id, None)
        self.member_ids.pop(conversation_id, None)
        self.timelines.pop(conversation_id, None)
        self.typists.forget(conversation_id)
        self._reads.pop(conversation_id, None)
        self._drop_toast(conversation_id)
        if self.active_id == conversation_id:
            self.active_id = ""

    # --- the open conversation --------------------------------------------------------------

    def timeline(self, conversation_id: str) -> Timeline:
        timeline = self.timelines.get(conversation_id)
        if timeline is None:
            timeline = self.timelines[conversation_id] = Timeline()
            timeline.zone = zone(self.time_zone)
        return timeline

    def set_time_zone(self, name: str) -> None:
        """The viewer's time zone (what their browser says), for where days begin."""
        if name == self.time_zone:
            return
        self.time_zone = name
        for timeline in self.timelines.values():
            timeline.zone = zone(name)
            timeline.touch_all()

    def open(self, conversation_id: str, now: float) -> bool:
        """Open a conversation (a deliberate look: it is read); return True if its newest page
        must be fetched first."""
        chat = self.chats.get(conversation_id)
        if chat is None:
            return False
        self.leave(now)
        self.active_id = conversation_id
        self.first_unread_seq = chat.last_read_seq + 1 if chat.unread else 0
        timeline = self.timeline(conversation_id)
        timeline.touch_all()
        self._read_upto(chat, chat.last_seq, now=now, force=True)
        return not timeline.loaded

    def leave(self, now: float) -> None:
        """Close the open conversation, sending its read marker if one is due."""
        if self.active_id:
            self._sync_read(self.active_id, now, force=True)
        self.active_id = ""
        self.first_unread_seq = 0

    def add_page(self, conversation_id: str, messages: list[Message], has_older: bool) -> None:
        """A page from the store: the newest one, or one older than the window."""
        timeline = self.timeline(conversation_id)
        for message in messages:
            timeline.add(self._message_item(message), live=False)
        if messages or not has_older:
            timeline.has_older = has_older
        timeline.loaded = True

    def jump_to_newest(self) -> bool:
        """Return True if the open conversation's window must be refetched from the newest
        page (the reader had paged so far back that newer messages were let go)."""
        timeline = self.timelines.get(self.active_id)
        if timeline is None or timeline.at_newest:
            return False
        timeline.reset()
        return True

    # --- messages from the stream -----------------------------------------------------------

    def receive(self, message: Message, now: float, *, ack: bool = False) -> Popup | None:
        """A stored message from the live stream (a `message`, or with `ack` the answer to this
        tab's own send); return a popup if it is news the person has not seen.

        An ack does not move the cursor: it can come before the stream has brought what was
        stored just before it, and a resume from it would skip those. The message itself
        follows as a `message` frame."""
        conversation_id = message.conversation_id
        if not ack:
            self.cursors[conversation_id] = max(self.cursors.get(conversation_id, 0), message.seq)
        mine = message.sender_id == self.user_id
        if mine:
            self.pending.pop(message.client_msg_id, None)
        self.typists.stopped(conversation_id, message.sender_id)
        timeline = self.timelines.get(conversation_id)
        if timeline is not None or conversation_id == self.active_id:
            self.timeline(conversation_id).add(self._message_item(message), live=True)
        chat = self.chats.get(conversation_id)
        if message.system is not None and (chat is None or message.seq > chat.last_seq):
            # The group changed (members, name): its details are fetched again.
            self.stale.add(conversation_id)
        if chat is None or message.seq <= chat.last_seq:
            # Replayed, or counted already by the conversation list; a read held back until
            # the stream caught up may be due now.
            if conversation_id in self._read_due:
                self._sync_read(conversation_id, now)
            return None
        watching = conversation_id == self.active_id and self.seen
        news = not mine and message.seq > chat.last_read_seq and not watching
        mentioned = news and mentions(message.body, self.username)
        chat = dataclasses.replace(
            chat,
            last_seq=message.seq,
            preview=preview(message, self.user_id),
            last_activity=message.created_at.isoformat(),
            unread=chat.unread + 1 if news else chat.unread,
            mentioned_seq=message.seq if mentioned else chat.mentioned_seq,
        )
        self.chats[conversation_id] = chat
        self.places.changed(conversation_id)
        if watching or mine:
            # Writing in a conversation, like watching it, means having read it.
            self._read_upto(chat, message.seq, now=now, send=not mine)
            return None
        if not news:
            return None
        if conversation_id == self.active_id and not self.first_unread_seq:
            self.first_unread_seq = message.seq
        if (chat.muted and not mentioned) or message.system is not None:
            return None  # A mention gets through a mute; a system line pops up nowhere.
        shown = self._toasts.get(conversation_id)
        toast_id = shown[0] if shown else f"chat-{conversation_id}-{message.seq}"
        self._toasts[conversation_id] = (toast_id, message.seq)
        popup = Popup(message, chat.unread, toast_id)
        if shown and now - self._toasted_at.get(conversation_id, 0.0) < TOAST_REFRESH_SECONDS:
            self._toast_due[conversation_id] = popup
            return dataclasses.replace(popup, toast=False)
        self._toasted_at[conversation_id] = now
        self._toast_due.pop(conversation_id, None)
        return popup

    def change(self, change: int, message: Message) -> None:
        """A message changed (a `change` frame): shown as it is now wherever it shows."""
        conversation_id = message.conversation_id
        self.change_cursors[conversation_id] = max(
            self.change_cursors.get(conversation_id, 0), change
        )
        timeline = self.timelines.get(conversation_id)
        if timeline is not None:
            timeline.change(self._message_item(message))
            if message.deleted:
                timeline.quote_deleted(message.id, DELETED_TEXT)
        chat = self.chats.get(conversation_id)
        if chat is not None and message.seq == chat.last_seq:
            self.chats[conversation_id] = dataclasses.replace(
                chat, preview=preview(message, self.user_id)
            )
            self.places.changed(conversation_id)

    def _message_item(self, message: Message) -> MessageItem:
        # Senders are (or were) members: their names say who reacted, if the lists did not.
        self.names.setdefault(message.sender_id, message.sender_name)
        return message_item(message, self.user_id, self.names)

    def limited(self, conversation_id: str) -> None:
        """The stream skipped older messages of a conversation (a long absence): its window
        has a gap, so it is fetched afresh."""
        timeline = self.timelines.get(conversation_id)
        if timeline is not None:
            timeline.reset()

    def read_elsewhere(self, conversation_id: str, seq: int) -> None:
        """Another tab (or device) read up to `seq`."""
        chat = self.chats.get(conversation_id)
        if chat is None or seq <= chat.last_read_seq:
            return
        timeline = self.timelines.get(conversation_id)
        if seq >= chat.last_seq:
            unread = 0
        elif timeline is not None and timeline.loaded and timeline.oldest_seq is not None:
            unread = sum(1 for m in timeline.messages() if not m.mine and m.seq > seq)
        else:
            unread = chat.unread
        self.chats[conversation_id] = dataclasses.replace(chat, last_read_seq=seq, unread=unread)
        self.places.changed(conversation_id)
        read = self._reads.setdefault(conversation_id, _Read())
        read.sent_seq = max(read.sent_seq, seq)
        self._dismiss_upto(conversation_id, seq)

    # --- reading ------------------------------------------------------------------------------

    def set_seen(self, seen: bool, now: float) -> None:
        """The tab became seen or stopped being seen; becoming seen reads the open one."""
        self.seen = seen
        chat = self.chats.get(self.active_id)
        if chat is None:
            return
        if seen:
            self._read_upto(chat, chat.last_seq, now=now, force=True)
        else:
            self._sync_read(chat.id, now, force=True)

    def wants_tick(self) -> bool:
        """Whether time alone can change anything: a send may time out, a read or a toast
        update may be due."""
        return bool(self.pending or self._read_due or self._toast_due or self.typists)

    def tick(self, now: float) -> None:
        """Send the reads held back by the read interval that are due by now, and queue
        the toast updates held back by theirs (in `due_popups`); stop showing typing that
        was not renewed."""
        self.typists.expire(now)
        for conversation_id in list(self._read_due):
            self._sync_read(conversation_id, now)
        for conversation_id, popup in list(self._toast_due.items()):
            if now - self._toasted_at.get(conversation_id, 0.0) >= TOAST_REFRESH_SECONDS:
                del self._toast_due[conversation_id]
                self._toasted_at[conversation_id] = now
                self.due_popups.append(popup)

    def take_due_popups(self) -> list[Popup]:
        popups, self.due_popups = self.due_popups, []
        return popups

    def _read_upto(
        self, chat: ChatItem, seq: int, *, now: float, force: bool = False, send: bool = True
    ) -> None:
        if seq > chat.last_read_seq or chat.unread:
            chat = dataclasses.replace(chat, unread=0, last_read_seq=max(chat.last_read_seq, seq))
            self.chats[chat.id] = chat
            self.places.changed(chat.id)
        self._dismiss_upto(chat.id, chat.last_read_seq)
        if not send:
            # The service moved the marker itself: a sender has read what they sent.
            read = self._reads.setdefault(chat.id, _Read())
            read.sent_seq = max(read.sent_seq, seq)
            return
        self._read_due.add(chat.id)
        self._sync_read(chat.id, now, force=force)

    def _sync_read(self, conversation_id: str, now: float, *, force: bool = False) -> None:
        """Tell the service how far this tab has read, if that moved and the limit allows.

        Never past the tab's cursor: the service bounds a read by what it delivered to this
        socket, so a read ahead of the stream would be cut short and not sent again.
        """
        chat = self.chats.get(conversation_id)
        if chat is None:
            self._read_due.discard(conversation_id)
            return
        read = self._reads.setdefault(conversation_id, _Read())
        target = min(chat.last_read_seq, self.cursors.get(conversation_id, 0))
        if target <= read.sent_seq:
            if chat.last_read_seq <= read.sent_seq:
                self._read_due.discard(conversation_id)
            return
        if not force and now - read.sent_at < READ_INTERVAL_SECONDS:
            return
        read.sent_seq, read.sent_at = target, now
        if target >= chat.last_read_seq:
            self._read_due.discard(conversation_id)
        self.outbox.append(ReadFrame(conversation_id=conversation_id, seq=target).model_dump())

    def _dismiss_upto(self, conversation_id: str, seq: int) -> None:
        toast = self._toasts.get(conversation_id)
        if toast is not None and toast[1] <= seq:
            self._drop_toast(conversation_id)

    def _drop_toast(self, conversation_id: str) -> None:
        toast = self._toasts.pop(conversation_id, None)
        self._toasted_at.pop(conversation_id, None)
        self._toast_due.pop(conversation_id, None)
        self.due_popups = [
            p for p in self.due_popups if p.message.conversation_id != conversation_id
        ]
        if toast is not None:
            self.dismissed.add(toast[0])

    # --- sending ------------------------------------------------------------------------------

    # --- presence -------------------------------------------------------------------------------

    def presence_notice(self, entries: Iterable[Presence]) -> None:
        """What the service says of whether people are there (the newest per person wins)."""
        changed = set()
        for entry in entries:
            if self.presence.get(entry.user_id) != entry:
                self.presence[entry.user_id] = entry
                changed.add(entry.user_id)
        if not changed:
            return
        for conversation_id, chat in self.chats.items():
            if chat.partner_id in changed:
                status = status_of(self.presence.get(chat.partner_id))
                if chat.presence != status:
                    self.chats[conversation_id] = dataclasses.replace(chat, presence=status)
                    self.places.changed(conversation_id)
        for conversation_id, ids in self.member_ids.items():
            if not changed.isdisjoint(ids):
                self._people_changed.add(conversation_id)

    def people(self, conversation_id: str, now: datetime) -> list[Person]:
        """Everyone in a conversation, as its member list shows them."""
        where = zone(self.time_zone)
        found = []
        for user_id in self.member_ids.get(conversation_id, []):
            user = self.users.get(user_id)
            if user is None:
                continue
            entry = self.presence.get(user_id)
            found.append(
                dataclasses.replace(
                    person(user),
                    presence=status_of(entry),
                    presence_text=presence_line(entry, where, now),
                )
            )
        return found

    def partner_line(self, conversation_id: str, now: datetime) -> str:
        """A direct conversation's header: whether the other person is there."""
        chat = self.chats.get(conversation_id)
        if chat is None or not chat.partner_id:
            return ""
        return presence_line(self.presence.get(chat.partner_id), zone(self.time_zone), now)

    def take_people_change(self, conversation_id: str) -> bool:
        """Whether the conversation's member list changed since this was last asked."""
        changed = conversation_id in self._people_changed
        self._people_changed.discard(conversation_id)
        return changed

    def set_away(self, away: bool) -> None:
        """letschat.js: the tab is away (hidden, or unused for a while), or back."""
        if away != self.away:
            self.away = away
            self.outbox.append(PresenceFrame(away=away).model_dump())

    def resumed(self, now: float) -> None:
        """A socket resumed: pending sends go again, and it learns that the tab is away (a
        socket counts as there from its resume)."""
        self.resend_all(now)
        if self.away:
            self.outbox.append(PresenceFrame(away=True).model_dump())

    def typed(self, now: float) -> None:
        """The user typed in the open conversation's composer."""
        if self.active_id in self.chats and self.typing.typed(self.active_id, now):
            self.outbox.append(TypingFrame(conversation_id=self.active_id).model_dump())

    def stopped_typing(self, now: float) -> None:
        """The user left the composer, or emptied it, without sending."""
        conversation_id = self.typing.stopped(now)
        if conversation_id is not None and conversation_id in self.chats:
            self.outbox.append(
                TypingFrame(conversation_id=conversation_id, active=False).model_dump()
            )

    def typing_notice(self, notice: TypingNoticeFrame, now: float) -> None:
        """Another member is typing (or stopped) in one of the user's conversations."""
        user = notice.user
        if user.id == self.user_id or notice.conversation_id not in self.chats:
            return
        name = user.display_name or user.username
        self.typists.notice(notice.conversation_id, user.id, name, notice.active, now)

    def send(self, body: str, now: float, *, reply_to: str = "") -> bool:
        """Queue a message to the open conversation (answering `reply_to`, a message it
        shows); it shows as pending until stored. False if there is nothing to send or it is
        longer than a message may be (the composer holds such a message back; nothing is cut
        off)."""
        body = body.strip()
        if not body or self.active_id not in self.chats or len(body) > MAX_BODY_CHARS:
            return False
        client_msg_id = uuid.uuid4().hex
        quoted = self.shown_message(reply_to) if reply_to else None
        if quoted is not None and quoted.deleted:  # Deleted meanwhile: nothing to quote.
            quoted = None
        self.pending[client_msg_id] = Pending(
            self.active_id, body, now, quoted.id if quoted is not None else None
        )
        self.outbox.append(self._send_frame(client_msg_id))
        self.typing.sent()
        self.timeline(self.active_id).add_pending(
            MessageItem(
                key=client_msg_id,
                conversation_id=self.active_id,
                sender_id=self.user_id,
                sender_name=self.display_name,
                body=body,
                markdown=link_mentions(body) if "@" in body else "",
                client_msg_id=client_msg_id,
                status="pending",
                mine=True,
                initials=initials(self.display_name),
                avatar_color=avatar_color(self.user_id),
                reply_id=quoted.id if quoted is not None else "",
                reply_seq=quoted.seq if quoted is not None else 0,
                reply_name=quoted.sender_name if quoted is not None else "",
                reply_excerpt=plain(quoted.body)[:200] if quoted is not None else "",
            )
        )
        return True

    def edit(self, message_id: str, body: str) -> bool:
        """Ask to replace the body of one of the user's messages in the open conversation;
        it shows edited when the change comes back. False: nothing to do, or not allowed."""
        body = body.strip()
        held = self._own(message_id)
        if held is None or not body or len(body) > MAX_BODY_CHARS or body == held.body:
            return False
        self.outbox.append(
            EditFrame(conversation_id=self.active_id, message_id=message_id, body=body).model_dump()
        )
        return True

    def delete(self, message_id: str) -> bool:
        """Ask to delete a message: the user's own, or any in a group they created."""
        held = self.shown_message(message_id)
        if held is None or held.deleted:
            return False
        chat = self.active
        moderates = chat.kind == "group" and chat.created_by == self.user_id
        if not held.mine and not moderates:
            return False
        self.outbox.append(
            DeleteFrame(conversation_id=self.active_id, message_id=message_id).model_dump()
        )
        return True

    def react(self, message_id: str, emoji: str, *, add: bool) -> bool:
        """Add or take back the user's reaction to a message of the open conversation."""
        held = self.shown_message(message_id)
        if held is None or held.deleted:
            return False
        self.outbox.append(
            ReactFrame(
                conversation_id=self.active_id, message_id=message_id, emoji=emoji, add=add
            ).model_dump()
        )
        return True

    def _own(self, message_id: str) -> MessageItem | None:
        """One of the user's messages in the open conversation, not deleted."""
        held = self.shown_message(message_id)
        return held if held is not None and held.mine and not held.deleted else None

    def shown_message(self, message_id: str) -> MessageItem | None:
        """A stored message the open conversation's window holds."""
        return self.timeline(self.active_id).find(message_id) if self.active_id else None

    def own_message(self, message_id: str = "") -> MessageItem | None:
        """One of the user's messages the open conversation shows, to edit (without an id:
        their newest)."""
        if message_id:
            return self._own(message_id)
        if not self.active_id:
            return None
        for item in reversed(self.timeline(self.active_id).messages()):
            if item.mine and not item.deleted:
                return item
        return None

    def retry(self, client_msg_id: str, now: float) -> None:
        """Send a failed message again with the same id: the service stores it at most once."""
        pending = self.pending.get(client_msg_id)
        if pending is None:
            return
        pending.sent_at = now
        self._set_status(pending.conversation_id, client_msg_id, "pending")
        self.outbox.append(self._send_frame(client_msg_id))

    def send_failed(self, client_msg_id: str) -> bool:
        pending = self.pending.get(client_msg_id)
        if pending is None:
            return False
        self._set_status(pending.conversation_id, client_msg_id, "failed")
        return True

    def expire(self, now: float, timeout: float) -> None:
        """Sends without an ack for too long while connected show as failed, with a retry."""
        for client_msg_id, pending in self.pending.items():
            if now - pending.sent_at > timeout:
                self._set_status(pending.conversation_id, client_msg_id, "failed")

    def resend_all(self, now: float) -> None:
        """After a resume: every send still waiting goes again (same ids), clock restarted."""
        for client_msg_id, pending in self.pending.items():
            pending.sent_at = now
            self.outbox.append(self._send_frame(client_msg_id))

    def take_outbox(self) -> list[dict[str, Any]]:
        frames, self.outbox = self.outbox, []
        return frames

    def take_dismissed(self) -> set[str]:
        dismissed, self.dismissed = self.dismissed, set()
        return dismissed

    def _send_frame(self, client_msg_id: str) -> dict[str, Any]:
        pending = self.pending[client_msg_id]
        return SendFrame(
            conversation_id=pending.conversation_id,
            client_msg_id=client_msg_id,
            body=pending.body,
            reply_to=pending.reply_to,
        ).model_dump(exclude_none=True)

    def _set_status(self, conversation_id: str, client_msg_id: str, status: str) -> None:
        timeline = self.timelines.get(conversation_id)
        if timeline is not None:
            timeline.set_status(client_msg_id, status)
