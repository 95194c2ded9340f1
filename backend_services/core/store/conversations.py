"""Conversations: direct pairs and groups, their members, and how each member sees them."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend_services.core.errors import (
    Conflict,
    NotFound,
    NotGroupCreator,
    ValidationFailed,
    conversation_not_found,
)
from backend_services.core.schemas import MAX_GROUP_MEMBERS, Conversation, GroupSummary, User
from backend_services.core.store.database import Database, Document, find_by_ids, stored_now
from backend_services.core.store.membership import require_member
from backend_services.core.store.messages import to_message
from backend_services.core.store.reads import ReadMarkers
from backend_services.core.store.state import ConversationStates, epoch_of
from backend_services.core.store.users import UserStore

# Unread counts stop here; the UI shows "99+" long before.
UNREAD_COUNT_CAP = 1000


def direct_id(a: str, b: str) -> str:
    """The one id of the direct conversation between two users, whoever asks first."""
    low, high = sorted((a, b))
    return f"dm:{low}:{high}"


def _user_not_found() -> NotFound:
    return NotFound("User not found.")


class ConversationStore:
    def __init__(
        self,
        database: Database,
        users: UserStore,
        states: ConversationStates,
        reads: ReadMarkers,
    ) -> None:
        self._conversations = database.db["conversations"]
        self._messages = database.db["messages"]
        self._users = users
        self._states = states
        self._reads = reads

    # --- creation and membership -----------------------------------------------------------

    async def open_direct(self, me: str, other: str) -> tuple[Document, bool]:
        """Return the direct conversation between `me` and `other`, and whether it is new."""
        if me == other:
            raise ValidationFailed("You can't start a direct conversation with yourself.")
        if await self._users.get(other) is None:
            raise _user_not_found()
        now = stored_now()
        new_doc = _new_conversation("direct", [me, other], now=now, created_by=me)
        new_doc.pop("_id")
        for _ in range(3):
            try:
                # Only the write that inserted reports an upserted id; a pre-image of None
                # is not proof, since a racing upsert may match the winner's insert.
                result = await self._conversations.update_one(
                    {"_id": direct_id(me, other)}, {"$setOnInsert": new_doc}, upsert=True
                )
            except DuplicateKeyError:
                continue  # Two concurrent upserts: the other one inserted; read it.
            doc = await self._conversations.find_one({"_id": direct_id(me, other)})
            if doc is not None:
                created = result.upserted_id is not None
                if created:
                    await self._states.create(doc["_id"], doc["created_at"])
                return doc, created
        raise Conflict("Could not open the conversation; try again.")

    async def create_group(
        self, creator: str, name: str, member_ids: Iterable[str], *, is_public: bool
    ) -> Document:
        members = list(dict.fromkeys([creator, *member_ids]))
        if len(members) > MAX_GROUP_MEMBERS:
            raise ValidationFailed(f"A group can have at most {MAX_GROUP_MEMBERS} members.")
        found = await self._users.get_many(members)
        if len(found) != len(members):
            raise _user_not_found()
        doc = _new_conversation("group", members, now=stored_now(), created_by=creator, name=name)
        doc["is_public"] = is_public
        await self._states.create(doc["_id"], doc["created_at"])
        await self._conversations.insert_one(doc)
        return doc

    async def join(self, conversation_id: str, user_id: str) -> tuple[Document, bool]:
        """Join a public group; return it and whether the user was not a member before."""
        before = await self._conversations.find_one_and_update(
            {"_id": conversation_id, "kind": "group", "is_public": True},
            {"$addToSet": {"members": user_id}},
            projection={"members": 1},
        )
        if before is None:
            raise conversation_not_found()
        added = user_id not in before["members"]
        if added:
            await self._fresh_start(conversation_id, user_id)
        return await self.get_for_member(conversation_id, user_id), added

    async def leave(self, conversation_id: str, user_id: str) -> None:
        result = await self._conversations.update_one(
            {"_id": conversation_id, "kind": "group", "members": user_id},
            {"$pull": {"members": user_id}},
        )
        if result.matched_count == 0:
            doc = await self.get_for_member(conversation_id, user_id)  # Raises if not a member.
            if doc["kind"] == "direct":
                raise Conflict("You can't leave a direct conversation.")
            raise conversation_not_found()
        # Whoever rejoins starts afresh, as any new member does.
        await self._reads.forget(conversation_id, user_id)

    async def add_member(
        self, conversation_id: str, actor: str, user_id: str
    ) -> tuple[Document, bool]:
        """Add `user_id` to a group `actor` belongs to; return it and whether it was added."""
        doc = await self.get_for_member(conversation_id, actor)
        if doc["kind"] != "group":
            raise Conflict("A direct conversation has exactly two members; start a group instead.")
        if await self._users.get(user_id) is None:
            raise _user_not_found()
        if user_id in doc["members"]:
            return doc, False
        updated = await self._conversations.find_one_and_update(
            {
                "_id": conversation_id,
                "members": actor,
                f"members.{MAX_GROUP_MEMBERS - 1}": {"$exists": False},
            },
            {"$addToSet": {"members": user_id}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is None:
            raise Conflict(f"A group can have at most {MAX_GROUP_MEMBERS} members.")
        await self._fresh_start(conversation_id, user_id)
        return updated, True

    async def update_group(
        self, conversation_id: str, actor: str, *, name: str | None, description: str | None
    ) -> tuple[Document, Document]:
        """Rename or describe a group its creator `actor` is in; return it before and after."""
        doc = await self._created_group(conversation_id, actor)
        changes: Document = {}
        if name is not None and name != doc["name"]:
            changes |= {"name": name, "name_lower": name.casefold()}
        if description is not None and description != doc.get("description", ""):
            changes["description"] = description
        if not changes:
            return doc, doc
        await self._conversations.update_one({"_id": conversation_id}, {"$set": changes})
        return doc, doc | changes

    async def remove_member(self, conversation_id: str, actor: str, user_id: str) -> bool:
        """The group's creator `actor` removes `user_id`; whether they were a member."""
        await self._created_group(conversation_id, actor)
        if user_id == actor:
            raise Conflict("Leave the group instead.")
        result = await self._conversations.update_one(
            {"_id": conversation_id, "members": user_id}, {"$pull": {"members": user_id}}
        )
        if result.modified_count:
            await self._reads.forget(conversation_id, user_id)
        return bool(result.modified_count)

    async def _created_group(self, conversation_id: str, actor: str) -> Document:
        doc = await self.get_for_member(conversation_id, actor)
        if doc["kind"] != "group":
            raise Conflict("A direct conversation has no name or members to manage.")
        if doc.get("created_by") != actor:
            raise NotGroupCreator()
        return doc

    async def _fresh_start(self, conversation_id: str, user_id: str) -> None:
        """A new member has read nothing, whatever a marker left from an earlier membership
        says (a read that raced the user's leaving can write one after `leave` removed it)."""
        await self._reads.forget(conversation_id, user_id)

    # --- reads -------------------------------------------------------------------------------

    async def get_for_member(self, conversation_id: str, user_id: str) -> Document:
        """The conversation if `user_id` is a member, else the not-found a missing one gets."""
        doc = await self._conversations.find_one({"_id": conversation_id, "members": user_id})
        if doc is None:
            raise conversation_not_found()
        return doc

    async def require_member(self, conversation_id: str, user_id: str) -> None:
        """Raise the not-found a missing conversation gets unless `user_id` is a member."""
        await require_member(self._conversations, conversation_id, user_id)

    async def ids_for(self, user_id: str) -> list[str]:
        cursor = self._conversations.find({"members": user_id}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def places_for(self, user_id: str) -> list[Document]:
        """The user's conversations as search's `in:` names them: `{_id, kind, name, members}`."""
        projection = {"kind": 1, "name": 1, "members": 1}
        return [doc async for doc in self._conversations.find({"members": user_id}, projection)]

    async def stale_cursors(self, cursors: Mapping[str, tuple[int, str | None]]) -> dict[str, str]:
        """Of `cursors` (conversation id -> seq and, if the client knows it, epoch), the ones
        that point into another history than the stored one, each with the epoch to start
        again in.

        A cursor is stale when its epoch is not the conversation's, or when it runs past
        everything stored: the history went back (a restore) without anyone renewing its
        epoch, so it is renewed here, and every other cursor into the lost history is then
        known as stale too, however far new messages have gone meanwhile.
        """
        checked = [cid for cid, (seq, epoch) in cursors.items() if seq > 0 or epoch is not None]
        if not checked:
            return {}
        states = await self._states.get_many(checked)
        stale: dict[str, str] = {}
        for conversation_id in checked:
            state = states.get(conversation_id)
            if state is None:
                continue
            seq, epoch = cursors[conversation_id]
            current = epoch_of(state)
            if epoch is not None and epoch != current:
                stale[conversation_id] = current
                continue
            stored = max(int(state.get("last_seq", 0)), int(state["last_message_seq"]))
            # Older versions wrote a message at a seq they guessed before moving the counter:
            # only a seq the store does not hold at all is past the history.
            if seq > stored and not await self._holds(conversation_id, seq):
                stale[conversation_id] = await self._states.renew_epoch(conversation_id, current)
        return stale

    async def _holds(self, conversation_id: str, seq: int) -> bool:
        found = await self._messages.find_one(
            {"conversation_id": conversation_id, "seq": seq}, {"_id": 1}
        )
        return found is not None

    async def members_of(self, conversation_ids: Iterable[str]) -> dict[str, set[str]]:
        """The member ids of each of these conversations that exists."""
        docs = await find_by_ids(self._conversations, conversation_ids, {"members": 1})
        return {doc["_id"]: set(doc["members"]) for doc in docs}

    async def ids_of_members(self, user_ids: Iterable[str]) -> dict[str, list[str]]:
        """The conversations each of these users belongs to (those who belong to any)."""
        users = set(user_ids)
        found: dict[str, list[str]] = {}
        if not users:
            return found
        cursor = self._conversations.find({"members": {"$in": sorted(users)}}, {"members": 1})
        async for doc in cursor:
            for member in users.intersection(doc["members"]):
                found.setdefault(member, []).append(doc["_id"])
        return found

    async def last_seqs(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        """The newest written seq of each conversation."""
        states = await self._states.current(conversation_ids)
        return {cid: int(state["last_message_seq"]) for cid, state in states.items()}

    async def list_page(
        self, user_id: str, *, limit: int, after: PageKey | None = None
    ) -> tuple[list[Conversation], PageKey | None]:
        """A page of the user's conversations, most recent activity first: the `limit` after
        `after` (a key a previous page ended with), and the key this page ends with if more
        follow. Only the page's conversations are read whole and viewed."""
        ids = await self.ids_for(user_id)
        active = await self._states.activity(ids)
        keys = sorted(((active.get(cid, _NEVER), cid) for cid in ids), reverse=True)
        if after is not None:
            keys = [key for key in keys if key < after]
        page, more = keys[:limit], len(keys) > limit
        docs = {
            doc["_id"]: doc for doc in await find_by_ids(self._conversations, [k[1] for k in page])
        }
        views = await self.views([docs[cid] for _, cid in page if cid in docs], user_id)
        return views, page[-1] if more and page else None

    async def group_counts(self, user_ids: Iterable[str], *, cap: int) -> dict[str, int]:
        """How many groups each user belongs to, counted no further than `cap`."""
        unique = list(dict.fromkeys(user_ids))
        counts = await asyncio.gather(
            *(
                self._conversations.count_documents(
                    {"members": user_id, "kind": "group"}, limit=cap
                )
                for user_id in unique
            )
        )
        return dict(zip(unique, counts, strict=True))

    async def search_public(self, prefix: str, *, limit: int) -> list[GroupSummary]:
        """Public groups whose name starts with `prefix`, most recent activity first."""
        query = {
            "kind": "group",
            "is_public": True,
            "name_lower": {"$regex": f"^{re.escape(prefix.strip().lower())}"},
        }
        matching = [doc["_id"] async for doc in self._conversations.find(query, {"_id": 1})]
        ids = await self._states.most_active(matching, limit=limit)
        docs = {doc["_id"]: doc for doc in await find_by_ids(self._conversations, ids)}
        states = await self._states.current(ids)
        return [
            GroupSummary(
                id=cid,
                name=docs[cid]["name"],
                member_count=len(docs[cid]["members"]),
                last_seq=states[cid]["last_message_seq"],
            )
            for cid in ids
            if cid in docs
        ]

    async def mark_read(self, conversation_id: str, user_id: str, seq: int) -> int | None:
        """Move a member's read marker forward (never back, never past the last message);
        return the seq it moved to, or None if it was there already."""
        await self.require_member(conversation_id, user_id)
        last_seq = (await self.last_seqs([conversation_id])).get(conversation_id, 0)
        target = min(seq, last_seq)
        return target if await self._reads.advance(conversation_id, user_id, target) else None

    # --- views -------------------------------------------------------------------------------

    async def views(self, docs: list[Document], viewer: str) -> list[Conversation]:
        """Wire views of `docs` as `viewer` sees them: names, members and unread counts."""
        ids = [doc["_id"] for doc in docs]
        users, states, reads = await asyncio.gather(
            self._users.get_many(m for doc in docs for m in doc["members"]),
            self._states.current(ids),
            self._reads.get_many(viewer, ids),
        )
        return list(
            await asyncio.gather(
                *(
                    self._view(doc, viewer, users, states.get(doc["_id"]), reads.get(doc["_id"], 0))
                    for doc in docs
                )
            )
        )

    async def view(self, doc: Document, viewer: str) -> Conversation:
        return (await self.views([doc], viewer))[0]

    async def _view(
        self,
        doc: Document,
        viewer: str,
        users: dict[str, User],
        state: Document | None,
        last_read: int,
    ) -> Conversation:
        members = [users[m] for m in doc["members"] if m in users]
        last_seq = 0 if state is None else int(state["last_message_seq"])
        last_message = None if state is None else state.get("last_message")
        unread = 0
        if last_seq > last_read:
            unread = await self._messages.count_documents(
                {
                    "conversation_id": doc["_id"],
                    "seq": {"$gt": last_read},
                    "sender_id": {"$ne": viewer},
                    "tombstone": {"$ne": True},
                },
                limit=UNREAD_COUNT_CAP,
            )
        if doc["kind"] == "direct":
            others = [u for u in members if u.id != viewer]
            name = others[0].display_name if others else "Deleted user"
        else:
            name = doc["name"]
        return Conversation(
            id=doc["_id"],
            kind=doc["kind"],
            name=name,
            members=members,
            is_public=bool(doc.get("is_public", False)),
            last_seq=last_seq,
            last_message=None if last_message is None else to_message(last_message),
            unread=unread,
            last_read_seq=last_read,
            created_at=doc["created_at"],
            epoch=epoch_of(state),
            created_by=str(doc.get("created_by", "")),
            last_change=0 if state is None else int(state.get("last_change", 0)),
            description=str(doc.get("description", "")),
        )


PageKey = tuple[datetime, str]
# Where a conversation with no state at all (a crash between its two writes) sorts: last.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def encode_page_key(key: PageKey) -> str:
    """An opaque cursor for `key` (what `list_page` returned), for a client to send back."""
    raw = json.dumps([key[0].isoformat(), key[1]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_key(cursor: str) -> PageKey:
    """The key of a cursor from `encode_page_key`; ValidationFailed for anything else."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment, conversation_id = raw
        key = (datetime.fromisoformat(moment), str(conversation_id))
    except (ValueError, TypeError, UnicodeDecodeError):
        raise ValidationFailed("cursor: not a cursor this list gave.") from None
    if key[0].tzinfo is None:
        raise ValidationFailed("cursor: not a cursor this list gave.")
    return key


def _new_conversation(
    kind: str, members: list[str], *, now: datetime, created_by: str, name: str = ""
) -> dict[str, Any]:
    return {
        "_id": uuid.uuid4().hex,
        "kind": kind,
        "name": name,
        "name_lower": name.lower(),
        "is_public": False,
        "members": members,
        "created_by": created_by,
        "created_at": now,
    }
