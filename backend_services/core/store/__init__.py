"""Persistence on MongoDB (pymongo's async client). The source of truth for everything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pymongo
from pymongo.monitoring import CommandListener, ServerHeartbeatListener

from backend_services.core.store.changes import ChangeBatch, ChangeStore, Policy
from backend_services.core.store.conversations import ConversationStore, direct_id
from backend_services.core.store.database import DEFAULT_TIMEOUT_MS, Database
from backend_services.core.store.messages import Batch, MessageStore
from backend_services.core.store.migrations import upgrade
from backend_services.core.store.quotas import Quotas
from backend_services.core.store.reads import ReadMarkers
from backend_services.core.store.search import MessageSearch
from backend_services.core.store.sessions import EndReason, SessionRecord, SessionStore
from backend_services.core.store.state import ConversationStates
from backend_services.core.store.throttle import LoginThrottle
from backend_services.core.store.users import UserStore

__all__ = [
    "Batch",
    "ChangeBatch",
    "ChangeStore",
    "ConversationStates",
    "ConversationStore",
    "Database",
    "EndReason",
    "LoginThrottle",
    "MessageStore",
    "Policy",
    "Quotas",
    "ReadMarkers",
    "SessionRecord",
    "SessionStore",
    "Store",
    "UserStore",
    "direct_id",
]


# Data upgrades at start run past the per-operation timeout, up to this.
UPGRADE_TIMEOUT_SECONDS = 600.0


class Store:
    """Every repository over one database connection."""

    def __init__(
        self,
        database: Database,
        *,
        hole_grace: timedelta = timedelta(seconds=2),
        policy: Policy | None = None,
    ) -> None:
        self.database = database
        self.users = UserStore(database)
        self.states = ConversationStates(database)
        self.reads = ReadMarkers(database)
        self.conversations = ConversationStore(database, self.users, self.states, self.reads)
        self.messages = MessageStore(database, self.states, self.reads, hole_grace=hole_grace)
        self.changes = ChangeStore(database, self.states, hole_grace=hole_grace, policy=policy)
        self.sessions = SessionStore(database)
        self.quotas = Quotas(database)
        self.search = MessageSearch(database)

    @classmethod
    def connect(
        cls,
        url: str,
        name: str,
        *,
        hole_grace: timedelta = timedelta(seconds=2),
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        policy: Policy | None = None,
        event_listeners: Sequence[CommandListener | ServerHeartbeatListener] = (),
    ) -> Store:
        database = Database(url, name, timeout_ms=timeout_ms, event_listeners=event_listeners)
        return cls(database, hole_grace=hole_grace, policy=policy)

    async def prepare(self) -> None:
        """Wait for the database, create indexes and upgrade data from earlier versions."""
        await self.database.prepare()
        with pymongo.timeout(UPGRADE_TIMEOUT_SECONDS):  # An upgrade may scan every document.
            await upgrade(self.database.db)

    async def close(self) -> None:
        await self.database.close()
