"""Persistence on MongoDB (pymongo's async client). The source of truth for everything."""

from __future__ import annotations

from datetime import timedelta

from backend_services.core.store.conversations import ConversationStore, direct_id
from backend_services.core.store.database import Database
from backend_services.core.store.messages import Batch, MessageStore
from backend_services.core.store.throttle import LoginThrottle
from backend_services.core.store.tokens import RevokedTokens
from backend_services.core.store.users import UserStore

__all__ = [
    "Batch",
    "ConversationStore",
    "Database",
    "LoginThrottle",
    "MessageStore",
    "RevokedTokens",
    "Store",
    "UserStore",
    "direct_id",
]


class Store:
    """Every repository over one database connection."""

    def __init__(self, database: Database, *, hole_grace: timedelta = timedelta(seconds=2)) -> None:
        self.database = database
        self.users = UserStore(database)
        self.conversations = ConversationStore(database, self.users)
        self.messages = MessageStore(database, hole_grace=hole_grace)
        self.revoked = RevokedTokens(database)

    @classmethod
    def connect(cls, url: str, name: str, *, hole_grace: timedelta = timedelta(seconds=2)) -> Store:
        return cls(Database(url, name), hole_grace=hole_grace)

    async def close(self) -> None:
        await self.database.close()
