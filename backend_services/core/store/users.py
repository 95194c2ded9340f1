"""Accounts: creation, lookup by name or id, and prefix search."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from backend_services.core.errors import UsernameTaken
from backend_services.core.schemas import User
from backend_services.core.store.database import (
    LOOKUP_BATCH,
    Database,
    Document,
    find_by_ids,
    stored_now,
)

PUBLIC_FIELDS = {"_id": 1, "username": 1, "display_name": 1}


def to_user(doc: Document) -> User:
    return User(id=doc["_id"], username=doc["username"], display_name=doc["display_name"])


class UserStore:
    def __init__(self, database: Database) -> None:
        self._users = database.db["users"]

    async def create(self, username: str, password_hash: str, display_name: str) -> User:
        """Insert a user; `username` must already be normalised to lower case."""
        doc = {
            "_id": uuid.uuid4().hex,
            "username": username,
            "display_name": display_name,
            "password_hash": password_hash,
            "created_at": stored_now(),
        }
        try:
            await self._users.insert_one(doc)
        except DuplicateKeyError as exc:
            raise UsernameTaken() from exc
        return to_user(doc)

    async def get_with_hash(self, username: str) -> tuple[User, str] | None:
        doc = await self._users.find_one({"username": username.strip().lower()})
        if doc is None:
            return None
        return to_user(doc), doc["password_hash"]

    async def password_hash(self, user_id: str) -> str | None:
        doc = await self._users.find_one({"_id": user_id}, {"password_hash": 1})
        return None if doc is None else str(doc["password_hash"])

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._users.update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})

    async def get(self, user_id: str) -> User | None:
        doc = await self._users.find_one({"_id": user_id}, PUBLIC_FIELDS)
        return None if doc is None else to_user(doc)

    async def get_many(self, user_ids: Iterable[str]) -> dict[str, User]:
        docs = await find_by_ids(self._users, user_ids, PUBLIC_FIELDS)
        return {doc["_id"]: to_user(doc) for doc in docs}

    async def ids_by_username(self, usernames: Iterable[str]) -> dict[str, str]:
        """Username -> id, for those of these (lower-case) usernames that exist."""
        names = sorted(set(usernames))
        if not names:
            return {}
        cursor = self._users.find({"username": {"$in": names}}, {"username": 1})
        return {doc["username"]: doc["_id"] async for doc in cursor}

    async def search(self, prefix: str, *, limit: int, exclude: str | None = None) -> list[User]:
        """Users whose username starts with `prefix` (case-insensitive), alphabetically."""
        query: Document = {"username": {"$regex": f"^{re.escape(prefix.strip().lower())}"}}
        if exclude is not None:
            query["_id"] = {"$ne": exclude}
        cursor = self._users.find(query, PUBLIC_FIELDS).sort("username", 1).limit(limit)
        return [to_user(doc) async for doc in cursor]

    # --- presence (what is kept of it for good: the last time someone was seen) --------------

    async def last_seen(self, user_ids: Iterable[str]) -> dict[str, datetime]:
        """When each of these users was last seen (those ever seen)."""
        docs = await find_by_ids(self._users, user_ids, {"last_seen_at": 1})
        return {doc["_id"]: doc["last_seen_at"] for doc in docs if doc.get("last_seen_at")}

    async def mark_seen(self, user_ids: Iterable[str], at: datetime) -> None:
        """These users were seen until `at` (never moves back)."""
        ids = list(dict.fromkeys(user_ids))
        for start in range(0, len(ids), LOOKUP_BATCH):
            batch = ids[start : start + LOOKUP_BATCH]
            await self._users.update_many({"_id": {"$in": batch}}, {"$max": {"last_seen_at": at}})

    async def appears_offline(self, user_id: str) -> bool:
        doc = await self._users.find_one({"_id": user_id}, {"appear_offline": 1})
        return bool(doc and doc.get("appear_offline"))

    async def appearing_offline(self, user_ids: Iterable[str]) -> set[str]:
        """Those of these users who appear offline."""
        docs = await find_by_ids(self._users, user_ids, {"appear_offline": 1})
        return {doc["_id"] for doc in docs if doc.get("appear_offline")}

    async def set_appears_offline(self, user_id: str, appear_offline: bool) -> None:
        await self._users.update_one({"_id": user_id}, {"$set": {"appear_offline": appear_offline}})
