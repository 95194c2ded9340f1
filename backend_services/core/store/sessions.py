"""Sign-in sessions: one document per device a person logged in on, holding the hash of its
current refresh token (and of the one before, for tabs that refreshed at the same moment).

A session lasts while it is used (every refresh slides `expires_at` up to `idle` further, never
past `ends_at`) and ends when it is ended: logout, another device, a password change, or a refresh
token used twice. An ended session is kept, with its reason, until it would have expired, so the
devices that still hold its tokens can be told why they were signed out. A TTL index on
`expires_at` removes it then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from backend_services.core.store.database import Database, Document, stored_now

COLLECTION = "sessions"
# Enough for anyone's devices; a longer list is cut to the most recently used.
LIST_LIMIT = 100


class EndReason(StrEnum):
    LOGOUT = "logout"
    ENDED = "ended"  # From another device (the sessions list, or "log out everywhere else").
    PASSWORD = "password"  # noqa: S105 - a reason, not a secret
    REUSED = "reused"
    ACCOUNT = "account"  # The account no longer exists.


ENDED_MESSAGES = {
    EndReason.LOGOUT: "You were logged out.",
    EndReason.ENDED: "This session was ended from another of your devices.",
    EndReason.PASSWORD: "Your password was changed, so this session was ended.",
    EndReason.REUSED: "This session was ended because an old copy of its sign-in was used.",
    EndReason.ACCOUNT: "This account no longer exists.",
}


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: str
    generation: int
    token_hash: str
    previous_hash: str | None
    rotated_at: datetime | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ends_at: datetime
    user_agent: str
    client_address: str
    ended_reason: EndReason | None

    def live(self, now: datetime) -> bool:
        return self.ended_reason is None and self.expires_at > now


def _reason(stored: object) -> EndReason | None:
    """An ended session's reason; one this version does not know (a newer one wrote it) is
    just "ended"."""
    if not stored:
        return None
    try:
        return EndReason(str(stored))
    except ValueError:
        return EndReason.ENDED


def _record(doc: Document) -> SessionRecord:
    reason = doc.get("ended_reason")
    return SessionRecord(
        id=doc["_id"],
        user_id=doc["user_id"],
        generation=doc["generation"],
        token_hash=doc["token_hash"],
        previous_hash=doc.get("previous_hash"),
        rotated_at=doc.get("rotated_at"),
        created_at=doc["created_at"],
        last_used_at=doc["last_used_at"],
        expires_at=doc["expires_at"],
        ends_at=doc["ends_at"],
        user_agent=doc.get("user_agent", ""),
        client_address=doc.get("client_address", ""),
        ended_reason=_reason(reason),
    )


class SessionStore:
    def __init__(self, database: Database) -> None:
        self._sessions = database.db[COLLECTION]

    async def create(
        self,
        session_id: str,
        user_id: str,
        token_hash: str,
        *,
        now: datetime,
        idle: timedelta,
        lifetime: timedelta,
        user_agent: str,
        client_address: str,
    ) -> None:
        ends_at = now + lifetime
        await self._sessions.insert_one(
            {
                "_id": session_id,
                "user_id": user_id,
                "generation": 0,
                "token_hash": token_hash,
                "previous_hash": None,
                "rotated_at": None,
                "created_at": now,
                "last_used_at": now,
                "expires_at": min(now + idle, ends_at),
                "ends_at": ends_at,
                "user_agent": user_agent,
                "client_address": client_address,
                "ended_reason": None,
            }
        )

    async def get(self, session_id: str) -> SessionRecord | None:
        doc = await self._sessions.find_one({"_id": session_id})
        return None if doc is None else _record(doc)

    async def rotate(
        self,
        session: SessionRecord,
        new_hash: str,
        *,
        now: datetime,
        idle: timedelta,
        client_address: str,
    ) -> bool:
        """Replace the session's current token with `new_hash`, if nobody did first."""
        result = await self._sessions.update_one(
            {
                "_id": session.id,
                "generation": session.generation,
                "token_hash": session.token_hash,
                "ended_reason": None,
            },
            {
                "$set": {
                    "generation": session.generation + 1,
                    "token_hash": new_hash,
                    "previous_hash": session.token_hash,
                    "rotated_at": now,
                    "last_used_at": now,
                    "expires_at": min(now + idle, session.ends_at),
                    "client_address": client_address,
                }
            },
        )
        return result.modified_count == 1

    async def end(self, session_id: str, reason: EndReason, *, user_id: str | None = None) -> bool:
        """End one session (only `user_id`'s, if given); False if there was no live one."""
        query: Document = {"_id": session_id, "ended_reason": None}
        if user_id is not None:
            query["user_id"] = user_id
        result = await self._sessions.update_one(query, _ending(reason))
        return result.modified_count == 1

    async def end_all(self, user_id: str, reason: EndReason, *, keep: str | None = None) -> int:
        """End every live session of `user_id` but `keep`; how many were ended."""
        query: Document = {"user_id": user_id, "ended_reason": None}
        if keep is not None:
            query["_id"] = {"$ne": keep}
        result = await self._sessions.update_many(query, _ending(reason))
        return result.modified_count

    async def live_of(self, user_id: str, now: datetime) -> list[SessionRecord]:
        """`user_id`'s live sessions, most recently used first."""
        cursor = (
            self._sessions.find(
                {"user_id": user_id, "ended_reason": None, "expires_at": {"$gt": now}}
            )
            .sort("last_used_at", -1)
            .limit(LIST_LIMIT)
        )
        return [_record(doc) async for doc in cursor]

    async def ended_since(self, since: datetime) -> set[str]:
        """The sessions ended at `since` or later: what open sockets check, whatever their
        number, in one indexed query (expiry they know from when their token was verified)."""
        cursor = self._sessions.find({"ended_at": {"$gte": since}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}


def _ending(reason: EndReason) -> Document:
    return {"$set": {"ended_reason": reason.value, "ended_at": stored_now()}}
