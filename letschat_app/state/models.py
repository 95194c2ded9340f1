"""What the UI shows, as plain dataclasses built from the wire schemas."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from datetime import datetime

from letschat_protocol import Conversation, Message, SessionInfo, User
from letschat_protocol.emoji import shortcode

PREVIEW_CHARS = 80


@dataclasses.dataclass
class Person:
    id: str = ""
    username: str = ""
    display_name: str = ""
    # online | away | offline ("" while unknown), and what the member list says of it.
    presence: str = ""
    presence_text: str = ""


@dataclasses.dataclass
class ChatItem:
    """A conversation in the sidebar."""

    id: str = ""
    kind: str = "direct"
    name: str = ""
    preview: str = ""
    unread: int = 0
    last_seq: int = 0
    last_read_seq: int = 0
    is_public: bool = False
    member_count: int = 0
    muted: bool = False
    last_activity: str = ""  # ISO time, for ordering
    # The newest message that mentions the viewer by @username; unread while above
    # `last_read_seq` (the sidebar marks it, and it pops up even when muted).
    mentioned_seq: int = 0
    created_by: str = ""
    description: str = ""  # A group's, set by its creator.
    # A direct conversation: the other person, and whether they are there (see Person).
    partner_id: str = ""
    presence: str = ""


@dataclasses.dataclass
class ReactionItem:
    """One emoji under a message: how many, whether the viewer is among them, and who."""

    emoji: str = ""
    count: int = 0
    mine: bool = False
    who: str = ""  # "Ada, Grace and you"


@dataclasses.dataclass
class MessageItem:
    """A message in the open conversation; `status` is pending, sent or failed."""

    key: str = ""
    id: str = ""
    conversation_id: str = ""
    seq: int = 0
    sender_id: str = ""
    sender_name: str = ""
    body: str = ""
    timestamp: str = ""
    client_msg_id: str = ""
    status: str = "sent"
    mine: bool = False
    # The body as shown, when it differs: with its @mentions marked (`link_mentions`).
    markdown: str = ""
    # Shown under the message before it: the same sender, a few minutes later (no name, no
    # avatar of its own; its time on hover). Set by the timeline.
    continues: bool = False
    # The first message of a day (in the viewer's time zone): a day line goes above it.
    day_start: bool = False
    initials: str = ""
    avatar_color: str = "gray"
    # What changed after sending: the highest version wins (a change can come before the
    # message it changes, or after a page that already showed it).
    version: int = 0
    edited: bool = False
    deleted: bool = False
    reactions: list[ReactionItem] = dataclasses.field(default_factory=list)
    # The message this one answers (empty: none).
    reply_id: str = ""
    reply_seq: int = 0
    reply_name: str = ""
    reply_excerpt: str = ""
    # A system line ("Ada added Grace"): shown centred, without actions.
    system: bool = False


DELETED_TEXT = "This message was deleted"


@dataclasses.dataclass
class SwitchItem:
    """A place the quick switcher (Ctrl+K) offers: a conversation, or someone to message."""

    key: str = ""  # "c:<conversation id>" or "u:<user id>"
    kind: str = ""  # conversation | person
    id: str = ""  # The conversation's id, or the person's
    label: str = ""
    detail: str = ""  # "Group · 12 members", "Direct message", "@ada"
    unread: int = 0
    presence: str = ""


@dataclasses.dataclass
class SearchResult:
    """A message a search found, as the results list shows it."""

    id: str = ""
    conversation_id: str = ""
    seq: int = 0
    where: str = ""  # The conversation's name
    sender_name: str = ""
    text: str = ""  # Plain text, cut short
    when: str = ""  # "Dec 3, 14:05"


@dataclasses.dataclass
class GroupResult:
    id: str = ""
    name: str = ""
    member_count: int = 0


def person(user: User) -> Person:
    return Person(id=user.id, username=user.username, display_name=user.display_name)


# The markdown marks a message may use (components/conversation.py), for plain-text places.
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKS = re.compile(r"(\*\*|__|~~|`+|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w))")
_BLOCK_MARKS = re.compile(r"^\s*(?:>+\s?|[-*+]\s+|\d+[.)]\s+|#{1,6}\s+)", re.MULTILINE)


# An @username, not inside a word, an address or a path (usernames: 3-32 of a-z 0-9 _ . -).
_MENTION = re.compile(r"(?<![\w@./:-])@([A-Za-z0-9_-][A-Za-z0-9_.-]{1,30}[A-Za-z0-9_-])")
# A `:name:` shortcode, as a word of its own (not `std::x::y`).
_SHORTCODE = re.compile(r"(?<![\w:]):([a-z0-9_+-]{1,32}):(?![\w:])")
# What is left as it is: code (fenced blocks, indented lines, inline spans, longest first)
# and links (their text and address).
VERBATIM = re.compile(
    r"((?:```|~~~).*?(?:```|~~~)|^(?: {4}|\t)[^\n]*|(`+)[^`]*?\2|\[[^\]\n]*\]\([^)\n]*\))",
    re.DOTALL | re.MULTILINE,
)
# Mentions link here; the view shows such a link as a mention and lets no other `#` address
# through. A link someone typed to it is turned into one the view refuses.
MENTION_HREF = "#mention-"
_TYPED_MENTION_HREF = re.compile(r"\]\(\s*<?#mention-", re.IGNORECASE)


def link_mentions(body: str) -> str:
    """The body with each @mention outside code and links as a link to `#mention-<name>`,
    which the message view shows as a mention."""
    if "#mention-" in body.lower():
        body = _TYPED_MENTION_HREF.sub("](#not-a-mention-", body)
    return outside_verbatim(body, _link) if "@" in body else body


def outside_verbatim(body: str, change: Callable[[str], str]) -> str:
    """`body` with `change` applied to each stretch outside code and links."""
    out: list[str] = []
    last = 0
    for verbatim in VERBATIM.finditer(body):
        out.append(change(body[last : verbatim.start()]))
        out.append(verbatim.group(0))
        last = verbatim.end()
    out.append(change(body[last:]))
    return "".join(out)


def expand_shortcodes(body: str) -> str:
    """`:name:` becomes its emoji, for the names in the reaction set (others stay as typed),
    outside code and links, and only as a word of its own (`std::x::y` stays): what the
    composer sends."""
    return outside_verbatim(body, _emoji) if ":" in body else body


def _emoji(text: str) -> str:
    return _SHORTCODE.sub(lambda match: shortcode(match.group(1)) or match.group(0), text)


def _link(text: str) -> str:
    return _MENTION.sub(lambda m: f"[@{m.group(1)}]({MENTION_HREF}{m.group(1).lower()})", text)


def mentions(body: str, username: str) -> bool:
    """Whether `body` mentions `username` as `@username` (any case, a whole name)."""
    if not username:
        return False
    pattern = rf"(?<![\w@.-])@{re.escape(username)}(?![\w-]|\.\w)"
    return re.search(pattern, body, re.IGNORECASE) is not None


def plain(body: str) -> str:
    """A message as plain text, for a preview, a popup or a notification: what its markdown
    shows, without the marks (links as their text), on one line."""
    text = _LINK.sub(r"\1", body)
    text = _BLOCK_MARKS.sub("", text)
    text = _MARKS.sub("", text)
    return " ".join(text.split())


def preview(message: Message | None, viewer: str) -> str:
    if message is None:
        return ""
    text = DELETED_TEXT if message.deleted else plain(message.body)
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1] + "…"
    mine = message.sender_id == viewer and message.system is None
    return f"You: {text}" if mine else text


def popup_text(message: Message, count: int, chat: ChatItem) -> tuple[str, str]:
    """A conversation's popup: who wrote, or how many are waiting ("3 new messages from Ada",
    "… in #design"), over the newest message's text."""
    where = f" in {chat.name}" if chat.kind == "group" else ""
    if count > 1:
        title = f"{count} new messages" + (where or f" from {message.sender_name}")
    else:
        title = f"{message.sender_name}{where}"
    text = plain(message.body)
    body = text[:140] + "…" if len(text) > 140 else text
    if count > 1 and chat.kind == "group":
        body = f"{message.sender_name}: {body}"
    return title, body


def chat_item(conversation: Conversation, viewer: str, muted: bool) -> ChatItem:
    last = conversation.last_message
    activity = last.created_at if last else conversation.created_at
    partner = ""
    if conversation.kind == "direct":
        partner = next((m.id for m in conversation.members if m.id != viewer), "")
    return ChatItem(
        id=conversation.id,
        kind=conversation.kind,
        name=conversation.name,
        preview=preview(last, viewer),
        unread=conversation.unread,
        last_seq=conversation.last_seq,
        last_read_seq=conversation.last_read_seq,
        is_public=conversation.is_public,
        member_count=len(conversation.members),
        created_by=conversation.created_by,
        muted=muted,
        last_activity=activity.isoformat(),
        partner_id=partner,
        description=conversation.description,
    )


# Radix colours for avatars: a person keeps theirs everywhere (it comes from their id). The
# avatar's soft variant keeps its text readable on each, in light and dark themes.
AVATAR_COLORS = (
    "tomato", "crimson", "pink", "plum", "purple", "violet", "iris", "indigo", "blue",
    "cyan", "teal", "jade", "green", "grass", "bronze", "gold", "brown", "orange",
)  # fmt: skip


def avatar_color(user_id: str) -> str:
    digest = hashlib.blake2s(user_id.encode(), digest_size=4).digest()
    return AVATAR_COLORS[int.from_bytes(digest, "big") % len(AVATAR_COLORS)]


def initials(name: str) -> str:
    """Up to two letters for an avatar: of the first two words, or the first two of one."""
    words = name.split()
    if len(words) >= 2:
        return (words[0][0] + words[1][0]).upper()
    return name.strip()[:2].upper() or "?"


def _shown(body: str) -> str:
    linked = link_mentions(body)
    return "" if linked == body else linked


def who_reacted(user_ids: list[str], viewer: str, names: dict[str, str]) -> str:
    """ "Ada, Grace and you": the viewer last, others by name (as many as are known)."""
    people = [names.get(uid, "someone") for uid in user_ids if uid != viewer]
    if viewer in user_ids:
        people.append("you")
    if len(people) <= 1:
        return "".join(people)
    return f"{', '.join(people[:-1])} and {people[-1]}"


def message_item(message: Message, viewer: str, names: dict[str, str] | None = None) -> MessageItem:
    quote = message.reply_to
    return MessageItem(
        key=message.id,
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sender_id=message.sender_id,
        sender_name=message.sender_name,
        body=message.body,
        timestamp=message.created_at.isoformat(),
        client_msg_id=message.client_msg_id,
        status="sent",
        mine=message.sender_id == viewer,
        markdown=_shown(message.body),
        initials=initials(message.sender_name),
        avatar_color=avatar_color(message.sender_id),
        version=message.version,
        edited=message.edited_at is not None and not message.deleted,
        deleted=message.deleted,
        reactions=[
            ReactionItem(
                emoji=reaction.emoji,
                count=len(reaction.user_ids),
                mine=viewer in reaction.user_ids,
                who=who_reacted(reaction.user_ids, viewer, names or {}),
            )
            for reaction in message.reactions
        ],
        reply_id=quote.message_id if quote else "",
        reply_seq=quote.seq if quote else 0,
        reply_name=quote.sender_name if quote else "",
        reply_excerpt=(plain(quote.excerpt) or DELETED_TEXT) if quote else "",
        system=message.system is not None,
    )


@dataclasses.dataclass
class DeviceItem:
    """A session in the settings' list of devices."""

    id: str = ""
    device: str = ""
    network: str = ""
    last_used: str = ""
    current: bool = False


# Most specific first: Edge and Opera say "Chrome" too, Chrome says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_agent(user_agent: str) -> str:
    """ "Firefox on Windows", from a User-Agent header; what is left of it when unknown."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), "")
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    plain = re.sub(r"\s+", " ", user_agent).strip()
    return plain[:40] if plain else "Unknown device"


def describe_when(moment: datetime, now: datetime) -> str:
    """ "just now", "5 minutes ago", "3 days ago"."""
    seconds = max(0.0, (now - moment).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def device(info: SessionInfo, now: datetime) -> DeviceItem:
    return DeviceItem(
        id=info.id,
        device=describe_agent(info.user_agent),
        network=info.client_network,
        last_used=describe_when(info.last_used_at, now),
        current=info.current,
    )
