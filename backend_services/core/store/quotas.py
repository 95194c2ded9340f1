"""Allowances shared by every instance: how much of something a key may use in a window."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend_services.core.store.database import Database

# Concurrent first uses of a key race to insert its window; the losers count on the winner's.
_ATTEMPTS = 3


class Quotas:
    """Fixed windows: `{_id: key, used, expires_at}`; an expired window starts over."""

    def __init__(self, database: Database) -> None:
        self._quotas = database.db["quotas"]

    async def take(
        self, key: str, amount: int, *, limit: int, window: timedelta, now: datetime
    ) -> int | None:
        """Use `amount` of `key`'s allowance of `limit` per `window`: None if that fits, else
        the whole seconds until the window ends (and nothing is used)."""
        await self._quotas.delete_one({"_id": key, "expires_at": {"$lte": now}})
        for _ in range(_ATTEMPTS):
            try:
                # Matches a window with room for `amount`; no window at all is inserted. A
                # window without room does not match, and its insert collides with it.
                doc = await self._quotas.find_one_and_update(
                    {"_id": key, "used": {"$lte": limit - amount}},
                    {"$inc": {"used": amount}, "$setOnInsert": {"expires_at": now + window}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                doc = None
            if doc is not None:
                return None
            full = await self._quotas.find_one({"_id": key})
            if full is not None:
                return max(1, math.ceil(float((full["expires_at"] - now).total_seconds())))
        return math.ceil(window.total_seconds())
