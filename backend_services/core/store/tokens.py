"""Revoked access tokens (logout). Entries expire with the token they revoke."""

from __future__ import annotations

from collections.abc import Collection

from backend_services.core.security import TokenClaims
from backend_services.core.store.database import Database


class RevokedTokens:
    def __init__(self, database: Database) -> None:
        self._revoked = database.db["revoked_tokens"]

    async def revoke(self, claims: TokenClaims) -> None:
        await self._revoked.update_one(
            {"_id": claims.token_id},
            {"$setOnInsert": {"user_id": claims.user_id, "expires_at": claims.expires_at}},
            upsert=True,
        )

    async def is_revoked(self, token_id: str) -> bool:
        return await self._revoked.find_one({"_id": token_id}, {"_id": 1}) is not None

    async def revoked_among(self, token_ids: Collection[str]) -> set[str]:
        if not token_ids:
            return set()
        cursor = self._revoked.find({"_id": {"$in": list(token_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}
