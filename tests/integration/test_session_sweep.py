"""The sweep of open sockets: sessions ended since the last sweep (one query, however many
sockets are open), sessions expired and tokens expired (known to each socket)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend_services.core.broker.memory import MemoryBroker
from backend_services.core.errors import CloseCode
from backend_services.core.schemas import User
from backend_services.core.security import TokenClaims
from backend_services.core.sessions import Session
from backend_services.core.store import EndReason, Store
from backend_services.message_service.connection import Close, Connection
from backend_services.message_service.hub import Hub
from tests.integration.conftest import CommandLog

SOCKETS = 120  # More than two of the store's batches of ids.


def _socket(session_id: str, *, token_for: timedelta, live_for: timedelta) -> Connection:
    now = datetime.now(UTC)
    user = User(id=f"user-{session_id}", username=session_id, display_name=session_id)
    claims = TokenClaims(
        user_id=user.id,
        token_id=f"t-{session_id}",
        expires_at=now + token_for,
        session_id=session_id,
    )
    return Connection(Session(user, claims, live_until=now + live_for), queue_size=16)


def _closed_with(connection: Connection) -> int | None:
    closes = [item for item in connection.outbox.take_nowait() if isinstance(item, Close)]
    return closes[0].code if closes else None


async def test_a_sweep_asks_the_store_once_and_closes_what_ended_or_expired(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, log = logged_store
    broker = MemoryBroker()
    await broker.connect()
    hub = Hub(broker, store, channel_prefix="sweep:", resume_limit=100)
    now = datetime.now(UTC)
    minutes, days = timedelta(minutes=10), timedelta(days=30)
    sockets = {f"s{n}": _socket(f"s{n}", token_for=minutes, live_for=days) for n in range(SOCKETS)}
    sockets["session-expired"] = _socket("session-expired", token_for=minutes, live_for=-minutes)
    sockets["token-expired"] = _socket("token-expired", token_for=-minutes, live_for=days)
    for session_id, connection in sockets.items():
        await store.sessions.create(
            session_id,
            connection.user_id,
            "hash",
            now=now,
            idle=days,
            lifetime=3 * days,
            user_agent="test",
            client_address="127.0.0.1",
        )
        await hub.register(connection)
    await store.sessions.end("s7", EndReason.LOGOUT)
    await store.sessions.end_all("user-s8", EndReason.PASSWORD)

    log.names.clear()
    await hub.sweep()

    assert log.names == ["find"]  # The sessions ended since; no topics are followed here.
    closed = {sid: code for sid, c in sockets.items() if (code := _closed_with(c)) is not None}
    assert closed == {
        "s7": CloseCode.TOKEN_REVOKED,
        "s8": CloseCode.TOKEN_REVOKED,
        "session-expired": CloseCode.TOKEN_REVOKED,
        "token-expired": CloseCode.TOKEN_EXPIRED,
    }

    # The next sweep still finds those endings (it looks back past the last one, for clocks
    # that disagree), and nothing else.
    await store.sessions.end("s9", EndReason.ENDED)
    await hub.sweep()
    assert sockets["s9"].closing == Close(CloseCode.TOKEN_REVOKED, "session ended")
    assert [sid for sid, c in sockets.items() if c.closing is not None] == [
        "s7",
        "s8",
        "s9",
        "session-expired",
        "token-expired",
    ]
    await hub.stop()
