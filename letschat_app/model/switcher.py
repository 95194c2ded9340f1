"""The quick switcher's choices (Ctrl+K): the user's conversations and people, ranked by how
well their name matches what was typed.

A match is scored as people expect of such a box: the name starting with it first, then a
word of the name starting with it, then the letters anywhere in the name, then the letters in
order with gaps ("gh" finds "Grace Hopper"), the tighter the better. Among matches as good, the
conversation with the newest activity comes first, so an empty box lists the latest ones.
"""

from __future__ import annotations

from collections.abc import Iterable

from letschat_app.state.models import ChatItem, Person, SwitchItem

LIMIT = 8


def score(query: str, text: str) -> float | None:
    """How well `query` matches `text` (higher is better), or None if it does not."""
    q, t = query.casefold().strip(), text.casefold()
    if not q:
        return 0.0
    if t.startswith(q):
        return 400.0
    words = t.replace("@", " ").replace("-", " ").replace("_", " ").replace(".", " ").split()
    if any(word.startswith(q) for word in words):
        return 300.0
    if q in t:
        return 200.0 - t.index(q) / 100
    # The letters in order: fewer and shorter gaps score higher.
    position, gaps = 0, 0
    for letter in q:
        found = t.find(letter, position)
        if found < 0:
            return None
        gaps += found - position
        position = found + 1
    return 100.0 - gaps


def choices(
    query: str,
    chats: Iterable[ChatItem],
    people: Iterable[Person],
    *,
    limit: int = LIMIT,
) -> list[SwitchItem]:
    """The best `limit` matches: conversations (newest activity first among equals), then
    people the user has no direct conversation with yet."""
    ranked: list[tuple[float, str, SwitchItem]] = []
    partners = set()
    for chat in chats:
        partners.add(chat.partner_id)
        found = score(query, chat.name)
        if found is None:
            continue
        detail = (
            f"Group · {chat.member_count} members" if chat.kind == "group" else "Direct message"
        )
        item = SwitchItem(
            key=f"c:{chat.id}",
            kind="conversation",
            id=chat.id,
            label=chat.name,
            detail=detail,
            unread=chat.unread,
            presence=chat.presence,
        )
        ranked.append((found, chat.last_activity, item))
    for someone in people:
        if someone.id in partners:
            continue
        found = max(
            (
                s
                for s in (score(query, someone.display_name), score(query, someone.username))
                if s is not None
            ),
            default=None,
        )
        if found is None:
            continue
        item = SwitchItem(
            key=f"u:{someone.id}",
            kind="person",
            id=someone.id,
            label=someone.display_name or someone.username,
            detail=f"@{someone.username} · new message",
            presence=someone.presence,
        )
        ranked.append((found - 0.5, "", item))  # A conversation first, at an equal match.
    ranked.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    unique: dict[str, SwitchItem] = {}
    for _, _, item in ranked:
        unique.setdefault(item.key, item)
    return list(unique.values())[:limit]
