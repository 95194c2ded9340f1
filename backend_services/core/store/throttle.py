"""Failed-login throttling, shared by every auth instance through the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from backend_services.core.store.database import Database


class LoginThrottle:
    """Counts failed logins per key in a fixed window shared by every auth instance."""

    def __init__(self, database: Database, *, max_failures: int, window_seconds: int) -> None:
        self._failures = database.db["login_failures"]
        self._max_failures = max_failures
        self._window_seconds = window_seconds

    async def retry_after(self, key: str, now: datetime) -> int | None:
        """Seconds until `key` may try again, or None if it may try now."""
        doc = await self._failures.find_one({"_id": key})
        if doc is None or doc["expires_at"] <= now or doc["count"] < self._max_failures:
            return None
        return max(1, int((doc["expires_at"] - now).total_seconds() + 0.999))

    async def record_failure(self, key: str, now: datetime) -> None:
        window_end = now + timedelta(seconds=self._window_seconds)
        # A window that has expired (but not yet been swept by the TTL monitor) starts over.
        await self._failures.delete_one({"_id": key, "expires_at": {"$lte": now}})
        await self._failures.update_one(
            {"_id": key},
            {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": window_end}},
            upsert=True,
        )

    async def reset(self, key: str) -> None:
        await self._failures.delete_one({"_id": key})
