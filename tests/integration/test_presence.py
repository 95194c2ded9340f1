"""Presence over two instances: online from a socket's resume, away when every tab is, offline
with a last-seen time when the last socket goes (also when its instance is killed with -9),
and "appear offline" on every device; told only to the people who share a conversation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend_services.core.store import Store
from tests.integration.conftest import StackFactory
from tests.support.clients import Account, Api, Socket, assert_error, unique_name
from tests.support.stack import Stack

Frame = dict[str, Any]
# Per socket: the index of the first frame `status_of` has not looked past yet.
READ: dict[int, int] = {}


def away(value: bool) -> Frame:
    return {"type": "presence", "away": value}


async def status_of(socket: Socket, user: Account, status: str) -> Frame:
    """The next presence entry for `user` on `socket` after the one the last call returned,
    once it says `status` (entries in between, saying something else, are passed over)."""
    start = READ.get(id(socket), 0)
    found: list[tuple[int, Frame]] = []

    def seen(frames: list[Frame]) -> bool:
        for index in range(start, len(frames)):
            frame = frames[index]
            if frame.get("type") != "presence":
                continue
            for entry in frame["users"]:
                if entry["user_id"] == user.id and entry["status"] == status:
                    found.append((index, entry))
                    return True
        return False

    await socket.wait_for(seen, timeout=15)
    index, entry = found[0]
    READ[id(socket)] = index + 1
    return entry


def statuses(socket: Socket, user: Account) -> list[str]:
    return [
        entry["status"]
        for frame in socket.of_type("presence")
        for entry in frame["users"]
        if entry["user_id"] == user.id
    ]


async def test_online_away_and_offline_reach_the_other_side_of_a_conversation(
    stack: Stack, api: Api
) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    await api.direct(alice, bob)
    bob_and_carol = await api.direct(bob, carol)
    first, second = stack.messages[0].ws_url, stack.messages[1].ws_url
    bob_socket = await Socket.open(second, bob.token, resume={})
    carol_socket = await Socket.open(first, carol.token, resume={})  # Shares nothing with alice.
    before = datetime.now(UTC).replace(second=0, microsecond=0)

    alice_tab = await Socket.open(first, alice.token, resume={})
    await status_of(bob_socket, alice, "online")
    # Alice's own snapshot: bob is online.
    assert (await status_of(alice_tab, bob, "online"))["user_id"] == bob.id

    await alice_tab.send(away(True))
    await status_of(bob_socket, alice, "away")
    # A second tab, on the other instance, in use: she is online again; away there too: away.
    alice_other = await Socket.open(second, alice.token, resume={})
    await status_of(bob_socket, alice, "online")
    await alice_other.send(away(True))
    await status_of(bob_socket, alice, "away")
    await alice_tab.send(away(False))
    await status_of(bob_socket, alice, "online")

    await alice_tab.close()
    await status_of(bob_socket, alice, "away")  # The other tab is still there, away.
    await alice_other.close()
    gone = await status_of(bob_socket, alice, "offline")
    seen_at = datetime.fromisoformat(gone["last_seen_at"])
    assert before <= seen_at <= datetime.now(UTC)
    assert seen_at.second == 0  # To the minute.

    # Carol shares nothing with alice: she hears of bob going away, after all of that, and
    # never of alice.
    await bob_socket.send(away(True))
    await status_of(carol_socket, bob, "away")
    assert statuses(carol_socket, alice) == []
    listed = await api.ok("GET", f"/conversations/{bob_and_carol}/presence", carol)
    assert {entry["user_id"]: entry["status"] for entry in listed} == {
        bob.id: "away",
        carol.id: "online",
    }
    for socket in (bob_socket, carol_socket):
        await socket.close()


async def test_an_instance_killed_with_sigkill_lets_its_users_go_offline(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(LETSCHAT_PRESENCE_TTL_SECONDS="2", LETSCHAT_PRESENCE_BEAT_SECONDS="0.5")
    api = Api(stack.auth_url, stack.messages[0].url)
    try:
        alice, bob = await api.register("alice"), await api.register("bob")
        group = await api.group(alice, bob)
        surviving, doomed = stack.messages  # `api` talks to the first.
        bob_socket = await Socket.open(surviving.ws_url, bob.token, resume={})
        alice_socket = await Socket.open(doomed.ws_url, alice.token, resume={})
        await status_of(bob_socket, alice, "online")

        doomed.kill()
        gone = await status_of(bob_socket, alice, "offline")
        assert gone["last_seen_at"]
        await alice_socket.wait_closed()
        listed = await api.ok("GET", f"/conversations/{group}/presence", bob)
        assert {e["user_id"]: e["status"] for e in listed}[alice.id] == "offline"
        await bob_socket.close()
    finally:
        await api.aclose()


async def test_appearing_offline_hides_every_tab_until_turned_off(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    bob_socket = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    alice_socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    await status_of(bob_socket, alice, "online")
    assert await api.ok("GET", "/presence/me", alice) == {"appear_offline": False}

    hidden = await api.ok("PUT", "/presence/me", alice, json={"appear_offline": True})
    assert hidden == {"appear_offline": True}
    await alice_socket.next("presence_setting", appear_offline=True)
    hidden = await status_of(bob_socket, alice, "offline")
    # A new tab of hers (on the other instance, which learns her setting) shows her offline
    # still, seen no later than before: opening the app does not give her away.
    other_tab = await Socket.open(stack.messages[1].ws_url, alice.token, resume={})
    again = await status_of(bob_socket, alice, "offline")
    # She has never gone offline, so no time is known; appearing offline invents none.
    assert "last_seen_at" not in hidden
    assert "last_seen_at" not in again
    await other_tab.send(away(False))
    listed = await api.ok("GET", f"/conversations/{dm}/presence", bob)
    assert {e["user_id"]: e["status"] for e in listed}[alice.id] == "offline"

    await api.ok("PUT", "/presence/me", alice, json={"appear_offline": False})
    await status_of(bob_socket, alice, "online")
    # What bob was told, each change once (a status may be told again, as the protocol allows).
    told = statuses(bob_socket, alice)
    assert [s for i, s in enumerate(told) if i == 0 or told[i - 1] != s] == [
        "offline",  # His snapshot, before she came.
        "online",
        "offline",
        "online",
    ]
    assert await api.ok("GET", "/presence/me", alice) == {"appear_offline": False}
    for socket in (alice_socket, other_tab, bob_socket):
        await socket.close()


async def test_bad_presence_requests_get_typed_errors(stack: Stack, api: Api) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    theirs = await api.direct(bob, carol)
    assert_error(
        await api.call("GET", f"/conversations/{theirs}/presence", alice), 404, "not_found"
    )
    assert_error(
        await api.call("PUT", "/presence/me", alice, json={"appear_offline": "yes"}),
        422,
        "validation_error",
    )
    assert_error(await api.call("PUT", "/presence/me", alice, json={}), 422, "validation_error")
    socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    await socket.send({"type": "presence"})
    assert (await socket.next("error", frame_type="presence"))["code"] == "bad_frame"
    await socket.send({"type": "presence", "away": 1})
    assert (await socket.next("error", frame_type="presence"))["code"] == "bad_frame"
    await socket.send({"type": "ping"})
    await socket.next("pong")
    await socket.close()


async def test_a_new_conversation_tells_each_side_whether_the_other_is_there(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    alice_socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    bob_socket = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    # They share no conversation, so each one's coming was told to nobody; the new
    # conversation tells each of them about the other.
    await api.direct(alice, bob)
    await status_of(alice_socket, bob, "online")
    await status_of(bob_socket, alice, "online")
    await alice_socket.close()
    await bob_socket.close()


async def test_a_big_group_is_not_told_its_members_comings_and_goings(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    store = Store.connect(stack.env["LETSCHAT_MONGODB_URL"], stack.env["LETSCHAT_MONGODB_DB"])
    try:
        others = [await store.users.create(unique_name("m"), "-", "Member") for _ in range(49)]
    finally:
        await store.close()
    big = await api.ok(
        "POST",
        "/conversations/groups",
        alice,
        json={"name": "everyone", "member_ids": [bob.id, *(o.id for o in others)]},
    )
    assert len(big["members"]) == 51
    await api.direct(alice, bob)
    bob_socket = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    alice_socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    # Her snapshot has bob (their direct conversation), none of the big group's others.
    await status_of(alice_socket, bob, "online")

    await bob_socket.send(away(True))
    await status_of(alice_socket, bob, "away")
    await bob_socket.send(
        {"type": "send", "conversation_id": big["id"], "client_msg_id": "m1", "body": "hi all"}
    )
    await alice_socket.next("message")
    # Told once, through the direct conversation; the big group said nothing of it, nor of
    # anyone else in it.
    assert statuses(alice_socket, bob) == ["online", "away"]
    told = {e["user_id"] for f in alice_socket.of_type("presence") for e in f["users"]}
    assert told <= {alice.id, bob.id}
    # Its member list is a request away.
    listed = await api.ok("GET", f"/conversations/{big['id']}/presence", alice)
    assert len(listed) == 51
    assert {e["user_id"]: e["status"] for e in listed}[bob.id] == "away"
    await alice_socket.close()
    await bob_socket.close()
