"""Where each conversation sits in the sidebar's state, so a new message re-sends one chunk.

Every conversation keeps a stable place (`index`) for as long as the tab knows it; places are
grouped into `CHUNKS` lists of `CHUNK` (the last one takes whatever does not fit). The page
renders the places in `order`, newest activity first. A message changes one conversation: its
chunk goes on the wire, and the order (a list of small ints) only if the conversation moved.
"""

from __future__ import annotations

from letschat_app.state.models import ChatItem

# Conversations per chunk: the most a new message re-sends of the sidebar.
CHUNK = 8
# Chunks; the last one holds every conversation past CHUNK * (CHUNKS - 1).
CHUNKS = 16


def chunk_of(index: int) -> int:
    return min(index // CHUNK, CHUNKS - 1)


def chunk_start(chunk: int) -> int:
    return chunk * CHUNK


class SidebarPlaces:
    """Stable places of conversations, and which chunks changed since they were last taken."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._changed: set[int] = set()

    def index(self, conversation_id: str) -> int:
        """The conversation's place, given the first free one when it is new."""
        index = self._index.get(conversation_id)
        if index is None:
            taken = set(self._index.values())
            index = next(i for i in range(len(taken) + 1) if i not in taken)
            self._index[conversation_id] = index
        return index

    def changed(self, conversation_id: str) -> None:
        self._changed.add(chunk_of(self.index(conversation_id)))

    def remove(self, conversation_id: str) -> None:
        index = self._index.pop(conversation_id, None)
        if index is not None:
            self._changed.add(chunk_of(index))

    def chunk(self, chunk: int, chats: dict[str, ChatItem]) -> list[ChatItem]:
        """What chunk `chunk` holds, by place; a free place is an empty item (not shown)."""
        start = chunk_start(chunk)
        owned = {i: cid for cid, i in self._index.items() if chunk_of(i) == chunk}
        if not owned:
            return []
        end = max(owned) + 1 if chunk == CHUNKS - 1 else start + CHUNK
        items = [chats.get(owned.get(i, ""), ChatItem()) for i in range(start, end)]
        while items and not items[-1].id:
            items.pop()
        return items

    def order(self, ordered_ids: list[str]) -> list[int]:
        return [self.index(cid) for cid in ordered_ids]

    def take_changes(self) -> set[int]:
        changed, self._changed = self._changed, set()
        return changed

    def touch_all(self) -> None:
        self._changed = set(range(CHUNKS))
