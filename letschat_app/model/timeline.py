"""One conversation's messages as a tab holds them: a bounded window of seq buckets.

Messages are grouped by `seq // CHUNK` into buckets, and the window is at most `SLOTS`
consecutive buckets. Each bucket is shown through a slot (`bucket % SLOTS`) of its own, so the
page's state carries the window as `SLOTS` small lists: a new message changes one slot (at most
`CHUNK` messages on the wire) and, when the window slides, the slot order (`SLOTS` small ints),
never the whole conversation.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from letschat_app.state.models import MessageItem

# Messages per bucket: the most one new message re-sends to the page (three on average).
CHUNK = 5
# Buckets in the window: the open conversation holds at most CHUNK * SLOTS stored messages.
SLOTS = 40
# A message from the sender of the one before, sent within this long of it, goes under it.
GROUP_SECONDS = 5 * 60


@functools.lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The time zone called `name` (an IANA name, as browsers report it); UTC if unknown."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _day(item: MessageItem, where: tzinfo) -> date | None:
    if not item.timestamp:  # Not stored yet: it is being sent now.
        return None
    return datetime.fromisoformat(item.timestamp).astimezone(where).date()


def continues(before: MessageItem | None, item: MessageItem, where: tzinfo = UTC) -> bool:
    """Whether `item` goes under `before` without a name and avatar of its own: the same
    sender, the same day, within `GROUP_SECONDS`."""
    if before is None or before.sender_id != item.sender_id or before.system or item.system:
        return False
    if not item.timestamp or not before.timestamp:
        return True
    if _day(before, where) != _day(item, where):
        return False
    gap = datetime.fromisoformat(item.timestamp) - datetime.fromisoformat(before.timestamp)
    return 0 <= gap.total_seconds() <= GROUP_SECONDS


def grouped(
    items: list[MessageItem], before: MessageItem | None, where: tzinfo = UTC
) -> list[MessageItem]:
    """`items` with `continues` and `day_start` set, the first one against `before`."""
    out = []
    for item in items:
        day = _day(item, where)
        flags = {
            "continues": continues(before, item, where),
            "day_start": day is not None and (before is None or _day(before, where) != day),
        }
        same = all(getattr(item, name) == value for name, value in flags.items())
        out.append(item if same else dataclasses.replace(item, **flags))
        before = item
    return out


class Timeline:
    """The stored messages of a window of buckets, plus the sends not yet stored."""

    def __init__(self) -> None:
        self._buckets: dict[int, list[MessageItem]] = {}
        self._lo: int | None = None
        self._hi: int | None = None
        # The store has messages before the window (it was paged or slid past them).
        self.has_older = False
        # The window reaches the newest message; if not, newer ones wait for "Jump to newest".
        self.at_newest = True
        # A page was fetched from the store: the window is not only what arrived live.
        self.loaded = False
        self.pending: list[MessageItem] = []
        # Slots whose contents changed since `take_changes`; the order changed too, if True.
        self._changed: set[int] = set()
        self._order_changed = False
        # Where days begin and end for the viewer (their browser's time zone).
        self.zone: tzinfo = UTC

    # --- reading --------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def messages(self) -> list[MessageItem]:
        """Every stored message of the window in seq order (for tests and small readers)."""
        return [m for b in sorted(self._buckets) for m in self._buckets[b]]

    @property
    def oldest_seq(self) -> int | None:
        if self._lo is None:
            return None
        for bucket in range(self._lo, (self._hi or self._lo) + 1):
            if self._buckets.get(bucket):
                return self._buckets[bucket][0].seq
        return None

    @property
    def newest_seq(self) -> int:
        if self._hi is None or self._lo is None:
            return 0
        for bucket in range(self._hi, self._lo - 1, -1):
            if self._buckets.get(bucket):
                return self._buckets[bucket][-1].seq
        return 0

    def slot(self, index: int) -> list[MessageItem]:
        """What slot `index` shows: the window's bucket that maps to it, or nothing; grouped
        under the messages before them."""
        if self._lo is None or self._hi is None:
            return []
        for bucket in range(self._lo, self._hi + 1):
            if bucket % SLOTS == index:
                return grouped(self._buckets.get(bucket, []), self._last_before(bucket), self.zone)
        return []

    def unsent(self) -> list[MessageItem]:
        """The sends not yet stored, grouped under the newest stored message."""
        newest = self._last_before(self._hi + 1) if self._hi is not None else None
        return grouped(self.pending, newest if self.at_newest else None, self.zone)

    def _last_before(self, bucket: int) -> MessageItem | None:
        """The last message of the window before `bucket`."""
        if self._lo is None:
            return None
        for earlier in range(bucket - 1, self._lo - 1, -1):
            messages = self._buckets.get(earlier)
            if messages:
                return messages[-1]
        return None

    def order(self) -> list[int]:
        """The slots in the window's order, oldest bucket first."""
        if self._lo is None or self._hi is None:
            return []
        return [bucket % SLOTS for bucket in range(self._lo, self._hi + 1)]

    def take_changes(self) -> tuple[set[int], bool]:
        """The slots changed since the last call, and whether the order changed."""
        changed, order = self._changed, self._order_changed
        self._changed, self._order_changed = set(), False
        return changed, order

    def touch_all(self) -> None:
        """Mark every slot changed: the page shows another conversation now."""
        self._changed = set(range(SLOTS))
        self._order_changed = True

    # --- changing ---------------------------------------------------------------------------

    def add(self, item: MessageItem, *, live: bool) -> bool:
        """Add a stored message (a repeat replaces it); return False if it is outside the
        window. A `live` message newer than a window that stopped short of the newest one
        stays out: the reader is looking at older history."""
        self._confirm(item)
        bucket = item.seq // CHUNK
        if self._lo is None or self._hi is None:
            if live and not self.at_newest:
                return False
            self._lo = self._hi = bucket
            self._order_changed = True
        elif bucket > self._hi:
            if not self.at_newest:
                return False
            self._hi = bucket
            self._order_changed = True
            while self._hi - self._lo + 1 > SLOTS:
                self._evict(self._lo)
                self._lo += 1
                self.has_older = True
        elif bucket < self._lo:
            if self._hi - bucket + 1 > SLOTS and live:
                return False
            self._lo = bucket
            self._order_changed = True
            while self._hi - self._lo + 1 > SLOTS:
                self._evict(self._hi)
                self._hi -= 1
                self.at_newest = False
        messages = self._buckets.setdefault(bucket, [])
        seqs = [m.seq for m in messages]
        index = bisect.bisect_left(seqs, item.seq)
        if index < len(messages) and messages[index].seq == item.seq:
            held = messages[index]
            if held == item or held.version > item.version:
                return True  # The same, or an older version than the one shown.
            messages[index] = item
        else:
            messages.insert(index, item)
        self._changed.add(bucket % SLOTS)
        if index == len(messages) - 1:
            self._changed_after(bucket)  # Their first message may go under this one now.
        return True

    def _changed_after(self, bucket: int) -> None:
        """Mark the next bucket that holds messages changed (its first one's grouping)."""
        for later in range(bucket + 1, (self._hi or bucket) + 1):
            if self._buckets.get(later):
                self._changed.add(later % SLOTS)
                return

    def find(self, message_id: str) -> MessageItem | None:
        """The stored message with this id, if the window holds it."""
        for bucket in self._buckets.values():
            for item in bucket:
                if item.id == message_id:
                    return item
        return None

    def change(self, item: MessageItem) -> bool:
        """A message changed (edited, deleted, reacted to): shown as it is now if the window
        holds it, or if it is newer than the window's newest (the change came first). A change
        to a message the window does not reach changes nothing: a page shows it as it is."""
        held = self.find(item.id)
        if held is None and (not self.loaded or item.seq <= self.newest_seq or not self.at_newest):
            return False
        return self.add(item, live=True)

    def quote_deleted(self, message_id: str, text: str) -> None:
        """A message was deleted: the replies shown quoting it quote `text` instead."""
        for bucket, items in self._buckets.items():
            for index, item in enumerate(items):
                if item.reply_id == message_id and item.reply_excerpt != text:
                    items[index] = dataclasses.replace(item, reply_excerpt=text)
                    self._changed.add(bucket % SLOTS)

    def add_pending(self, item: MessageItem) -> None:
        self.pending.append(item)

    def set_status(self, client_msg_id: str, status: str) -> bool:
        for index, item in enumerate(self.pending):
            if item.client_msg_id == client_msg_id and item.status != status:
                self.pending[index] = dataclasses.replace(item, status=status)
                return True
        return False

    def reset(self) -> None:
        """Forget the stored window (it may have a gap): the next open fetches the newest
        page. Unsent messages stay."""
        self._buckets.clear()
        self._lo = self._hi = None
        self.has_older, self.at_newest, self.loaded = False, True, False
        self.touch_all()

    def _confirm(self, item: MessageItem) -> None:
        """A stored message of mine replaces the pending send it confirms."""
        if item.mine and item.client_msg_id:
            self.pending = [p for p in self.pending if p.client_msg_id != item.client_msg_id]

    def _evict(self, bucket: int) -> None:
        self._buckets.pop(bucket, None)
        self._changed.add(bucket % SLOTS)
        self._changed_after(bucket)
