"""The two numbered streams every conversation has: its messages (by seq) and the changes to
them (edits, deletions, reactions, by change number).

Both reach an instance through pub/sub and a socket through its topic or from the store, and
both are put in order the same way (`Sequence`), caught up the same way and repaired the same
way: the hub does all of that once, for a `Feed`, and a feed says where its entries are stored,
and how one becomes a frame.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from backend_services.core.store import Store
from backend_services.message_service import frames

Kind = Literal["message", "change"]


@dataclass(frozen=True, slots=True)
class Read:
    """Entries read from the store after a cursor: (number, frame) in order, contiguous up to
    `through`; with `newest`, `first` says where they start if older ones were left out."""

    entries: list[tuple[int, str]]
    through: int
    first: int | None
    has_more: bool


@dataclass(frozen=True, slots=True)
class Feed:
    kind: Kind
    # (store, conversation, after, limit, newest) -> what follows `after`.
    read: Callable[[Store, str, int, int, bool], Awaitable[Read]]
    # The frame saying only the newest entries follow, from the given number.
    limited: Callable[[str, int], str]
    # Where each conversation's counter stands (no entry past it is written).
    counted: Callable[[Store, list[str]], Awaitable[dict[str, int]]]


async def _read_messages(
    store: Store, conversation_id: str, after: int, limit: int, newest: bool
) -> Read:
    batch = await store.messages.read_after(conversation_id, after, limit=limit, newest=newest)
    return Read(
        [(msg.seq, frames.message(msg)) for msg in batch.messages],
        batch.through_seq,
        batch.first_seq,
        batch.has_more,
    )


async def _read_changes(
    store: Store, conversation_id: str, after: int, limit: int, newest: bool
) -> Read:
    batch = await store.changes.read_after(conversation_id, after, limit=limit, newest=newest)
    return Read(
        [(change.change, frames.change(change)) for change in batch.changes],
        batch.through,
        batch.first,
        batch.has_more,
    )


async def _seqs_counted(store: Store, conversation_ids: list[str]) -> dict[str, int]:
    return await store.states.allocated(conversation_ids)


async def _changes_counted(store: Store, conversation_ids: list[str]) -> dict[str, int]:
    return await store.states.changes_counted(conversation_ids)


MESSAGES = Feed("message", _read_messages, frames.limited, _seqs_counted)
CHANGES = Feed("change", _read_changes, frames.changes_limited, _changes_counted)
FEEDS = (MESSAGES, CHANGES)
