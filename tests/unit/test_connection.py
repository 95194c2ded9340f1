"""A socket's cursor logic: live frames, gaps, catching up, slow consumers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from backend_services.core.errors import CloseCode
from backend_services.core.schemas import User
from backend_services.core.security import TokenClaims
from backend_services.core.sessions import Session
from backend_services.message_service.connection import Close, Connection, Outbox


def connection(queue_size: int = 16) -> Connection:
    user = User(id="u1", username="alice", display_name="Alice")
    claims = TokenClaims(user_id="u1", token_id="t1", expires_at=datetime.now(UTC), session_id="s1")
    return Connection(Session(user, claims, live_until=datetime.now(UTC)), queue_size=queue_size)


def drain(conn: Connection) -> list[str | Close]:
    return conn.outbox.take_nowait()


def live(conn: Connection, conversation_id: str, cursor: int) -> None:
    """Follow a conversation live from `cursor` (as after a catch-up that found nothing)."""
    conn.follow(conversation_id, cursor, followed_as=1)
    assert conn.send_ready(conn.streams[conversation_id].filled(cursor)) is None


def test_live_frames_that_continue_the_cursor_are_sent() -> None:
    conn = connection()
    live(conn, "c", 4)
    assert conn.offer("c", 4, 5, "m5") is None
    assert conn.offer("c", 5, 6, "m6") is None
    assert conn.offer("c", 5, 6, "m6 again") is None  # A duplicate is dropped.
    assert drain(conn) == ["m5", "m6"]
    assert conn.cursor("c") == 6


def test_a_frame_after_a_tombstone_continues_from_prev() -> None:
    conn = connection()
    live(conn, "c", 4)
    assert conn.offer("c", 4, 6, "m6") is None  # seq 5 was lost; the hub says 6 follows 4.
    assert drain(conn) == ["m6"]


def test_a_gap_starts_a_catch_up_and_holds_frames_until_it_is_done() -> None:
    conn = connection()
    live(conn, "c", 4)
    assert conn.offer("c", 6, 7, "m7") == 4  # Catch up from 4.
    assert conn.offer("c", 7, 8, "m8") is None  # Held while catching up.
    assert drain(conn) == []
    stream = conn.streams["c"]
    assert stream.fill(5)
    assert stream.fill(6)
    # The store provided 5 and 6; held frames continue from there and the socket goes live.
    assert conn.send_ready(stream.filled(6)) is None
    assert drain(conn) == ["m7", "m8"]
    assert conn.cursor("c") == 8


def test_catch_up_reports_a_gap_that_remains() -> None:
    conn = connection()
    conn.follow("c", 3, followed_as=1)
    conn.offer("c", 9, 10, "m10")
    assert conn.send_ready(conn.streams["c"].filled(5)) == 5
    assert conn.cursor("c") is None  # Still catching up.


def test_a_socket_too_far_behind_is_closed_to_resume_later() -> None:
    conn = connection(queue_size=16)
    for n in range(20):
        conn.push(f"f{n}")
    # What was queued is dropped: the close goes out at once and the client resumes from its cursor.
    assert drain(conn) == [Close(CloseCode.SLOW_CONSUMER, "too far behind; reconnect and resume")]
    conn.push("after")
    assert drain(conn) == []


def test_a_read_is_bounded_by_what_the_socket_was_sent() -> None:
    conn = connection()
    live(conn, "c", 6)
    assert conn.read_bound("c", 4) == 4
    assert conn.read_bound("c", 9) == 6  # Past what it was sent: cut to its cursor.


def test_a_read_where_the_socket_is_not_live_is_left_to_the_store() -> None:
    conn = connection()
    assert conn.read_bound("never-followed", 3) is None
    conn.follow("resuming", 0, followed_as=1)
    assert conn.read_bound("resuming", 3) is None
    live(conn, "c", 4)
    assert conn.offer("c", 6, 7, "m7") == 4  # A gap: the socket catches up from the store.
    assert conn.read_bound("c", 3) is None
    live(conn, "left", 5)
    conn.unfollow("left")
    assert conn.read_bound("left", 3) is None


async def test_a_catch_up_is_cancelled_when_its_conversation_or_socket_goes() -> None:
    conn = connection()
    running: list[asyncio.Task[object]] = []
    started = asyncio.Event()

    async def catch_up() -> None:
        task = asyncio.current_task()
        assert task is not None
        running.append(task)
        if len(running) == 2:
            started.set()
        await asyncio.Event().wait()  # Reading a store that does not answer.

    conn.follow("c", 0, followed_as=1)
    conn.follow("d", 0, followed_as=2)
    conn.run_catch_up("c", catch_up())
    conn.run_catch_up("d", catch_up())
    await started.wait()
    conn.unfollow("c")  # Its catch-up goes with it...
    await asyncio.wait({running[0]})
    assert running[0].cancelled()
    assert not running[1].done()
    conn.stop()  # ...and the socket's, when it goes.
    await asyncio.wait({running[1]})
    assert running[1].cancelled()


async def test_the_writer_takes_all_that_is_queued_at_once_and_waits_when_there_is_none() -> None:
    outbox = Outbox()
    outbox.put("a")
    outbox.put("b")
    assert await outbox.take() == ["a", "b"]
    taking = asyncio.ensure_future(outbox.take())
    await asyncio.sleep(0)  # The writer is waiting now.
    assert not taking.done()
    outbox.put("c")
    assert await taking == ["c"]
    assert len(outbox) == 0
