"""A socket's cursor logic: live frames, gaps, catching up, slow consumers."""

from __future__ import annotations

from datetime import UTC, datetime

from backend_services.core.errors import CloseCode
from backend_services.core.schemas import User
from backend_services.core.security import TokenClaims
from backend_services.core.sessions import Session
from backend_services.message_service.connection import Close, Connection


def connection(queue_size: int = 16) -> Connection:
    user = User(id="u1", username="alice", display_name="Alice")
    claims = TokenClaims(user_id="u1", token_id="t1", expires_at=datetime.now(UTC), session_id="s1")
    return Connection(Session(user, claims), queue_size=queue_size)


def drain(conn: Connection) -> list[str | Close]:
    items = []
    while not conn.outbox.empty():
        items.append(conn.outbox.get_nowait())
    return items


def test_live_frames_that_continue_the_cursor_are_sent() -> None:
    conn = connection()
    conn.cursors["c"] = 4
    assert not conn.offer("c", 4, 5, "m5")
    assert not conn.offer("c", 5, 6, "m6")
    assert not conn.offer("c", 5, 6, "m6 again")  # A duplicate is dropped.
    assert drain(conn) == ["m5", "m6"]
    assert conn.cursors["c"] == 6


def test_a_frame_after_a_tombstone_continues_from_prev() -> None:
    conn = connection()
    conn.cursors["c"] = 4
    assert not conn.offer("c", 4, 6, "m6")  # seq 5 was lost; the hub says 6 follows 4.
    assert drain(conn) == ["m6"]


def test_a_gap_starts_a_catch_up_and_holds_frames_until_it_is_done() -> None:
    conn = connection()
    conn.cursors["c"] = 4
    assert conn.offer("c", 6, 7, "m7")
    assert not conn.offer("c", 7, 8, "m8")  # Held while catching up.
    assert drain(conn) == []
    # The store provided 5 and 6; held frames continue from there and the socket goes live.
    assert conn.take_held("c", 6) == (8, False)
    assert drain(conn) == ["m7", "m8"]
    assert conn.cursors["c"] == 8
    assert "c" not in conn.catching_up


def test_catch_up_reports_a_gap_that_remains() -> None:
    conn = connection()
    conn.catching_up["c"] = []
    conn.offer("c", 9, 10, "m10")
    assert conn.take_held("c", 5) == (5, True)
    assert "c" in conn.catching_up


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
    conn.cursors["c"] = 6
    assert conn.read_bound("c", 4) == 4
    assert conn.read_bound("c", 9) == 6  # Past what it was sent: cut to its cursor.


def test_a_read_where_the_socket_is_not_live_is_left_to_the_store() -> None:
    conn = connection()
    assert conn.read_bound("never-followed", 3) is None
    conn.catching_up["resuming"] = []
    assert conn.read_bound("resuming", 3) is None
    conn.cursors["c"] = 4
    assert conn.offer("c", 6, 7, "m7")  # A gap: the socket catches up from the store.
    conn.cursors.pop("c")  # As the hub does when it starts the catch-up.
    assert conn.read_bound("c", 3) is None
    conn.cursors["left"] = 5
    conn.unfollow("left")
    assert conn.read_bound("left", 3) is None
