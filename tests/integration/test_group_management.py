"""Groups their members can manage: system lines for joined / left / added / removed /
renamed, rename and description by the creator, removing a member; typed errors."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.clients import Api, Socket, assert_error
from tests.support.stack import Stack

Frame = dict[str, Any]


async def system_line(socket: Socket, kind: str) -> Frame:
    found: list[Frame] = []

    def seen(frames: list[Frame]) -> bool:
        for frame in frames:
            message = frame.get("message") or {}
            if frame.get("type") == "message" and (message.get("system") or {}).get("kind") == kind:
                found.append(message)
                return True
        return False

    await socket.wait_for(seen)
    return found[0]


async def test_members_see_who_joined_left_was_added_removed_and_the_new_name(
    stack: Stack, api: Api
) -> None:
    alice, bob, carol, dave = [await api.register(n) for n in ("alice", "bob", "carol", "dave")]
    name = {who.id: who.user["display_name"] for who in (alice, bob, carol, dave)}
    a, b, c, d = (name[who.id] for who in (alice, bob, carol, dave))
    created = await api.ok(
        "POST",
        "/conversations/groups",
        alice,
        json={"name": "Planning", "member_ids": [bob.id], "is_public": True},
    )
    group = created["id"]
    alice_socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    bob_socket = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})

    await api.ok("POST", f"/conversations/{group}/members", alice, json={"user_id": carol.id})
    for socket in (alice_socket, bob_socket):
        line = await system_line(socket, "added")
        assert line["body"] == f"{a} added {c}"
        assert line["system"] == {
            "kind": "added",
            "actor_id": alice.id,
            "actor_name": a,
            "target_id": carol.id,
            "target_name": c,
        }
        assert line["sender_id"] == alice.id
    await api.ok("POST", f"/conversations/{group}/join", dave)
    assert (await system_line(bob_socket, "joined"))["body"] == f"{d} joined"

    renamed = await api.ok("PATCH", f"/conversations/{group}", alice, json={"name": "Roadmap"})
    assert renamed["name"] == "Roadmap"
    line = await system_line(bob_socket, "renamed")
    assert line["body"] == f"{a} renamed the group to Roadmap"
    described = await api.ok(
        "PATCH", f"/conversations/{group}", alice, json={"description": "Q1 planning"}
    )
    assert described["description"] == "Q1 planning"
    await system_line(bob_socket, "described")
    unchanged = await api.ok("PATCH", f"/conversations/{group}", alice, json={"name": "Roadmap"})
    assert unchanged["name"] == "Roadmap"

    carol_socket = await Socket.open(stack.messages[0].ws_url, carol.token, resume={})
    await api.call("DELETE", f"/conversations/{group}/members/{carol.id}", alice)
    await carol_socket.next("left", conversation_id=group)
    assert (await system_line(bob_socket, "removed"))["body"] == f"{a} removed {c}"
    view = await api.ok("GET", f"/conversations/{group}", bob)
    assert {m["id"] for m in view["members"]} == {alice.id, bob.id, dave.id}
    assert_error(await api.call("GET", f"/conversations/{group}", carol), 404, "not_found")

    await api.ok("POST", f"/conversations/{group}/leave", bob)
    assert (await system_line(alice_socket, "left"))["body"] == f"{b} left"
    history = await api.messages(alice, group)
    kinds = [m["system"]["kind"] for m in history if "system" in m]
    assert kinds == ["added", "joined", "renamed", "described", "removed", "left"]
    # Not found by search, and not changed by anyone.
    found = await api.ok("GET", "/search", alice, params={"q": "renamed"})
    assert found["messages"] == []
    line_id = history[0]["id"]
    path = f"/conversations/{group}/messages/{line_id}"
    assert_error(await api.call("PATCH", path, alice, json={"body": "x"}), 409, "conflict")
    assert_error(await api.call("DELETE", path, alice), 409, "conflict")
    assert_error(
        await api.call("POST", f"{path}/reactions", dave, json={"emoji": "👍", "add": True}),
        409,
        "conflict",
    )
    for socket in (alice_socket, bob_socket, carol_socket):
        await socket.close()


async def test_only_the_creator_manages_a_group_and_bad_requests_are_refused(
    stack: Stack, api: Api
) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    group = await api.group(alice, bob)
    direct = await api.direct(alice, carol)
    path = f"/conversations/{group}"

    async def refused(method: str, url: str, who: Any, status: int, code: str, **kw: Any) -> None:
        assert_error(await api.call(method, url, who, **kw), status, code)

    await refused("PATCH", path, bob, 403, "not_group_creator", json={"name": "Mine"})
    await refused("DELETE", f"{path}/members/{alice.id}", bob, 403, "not_group_creator")
    await refused("PATCH", path, carol, 404, "not_found", json={"name": "x"})  # Not a member.
    await refused("PATCH", path, alice, 422, "validation_error", json={"name": ""})
    await refused("PATCH", path, alice, 422, "validation_error", json={"name": "x" * 81})
    await refused("PATCH", path, alice, 422, "validation_error", json={"description": "x" * 301})
    await refused("PATCH", path, alice, 422, "validation_error", json={"colour": "red"})
    await refused("PATCH", f"/conversations/{direct}", alice, 409, "conflict", json={"name": "x"})
    await refused("DELETE", f"{path}/members/{alice.id}", alice, 409, "conflict")  # Leave.
    # Someone not in it: nothing to do, nothing said.
    response = await api.call("DELETE", f"{path}/members/{carol.id}", alice)
    assert response.status_code == 204
    await api.ok(
        "POST",
        f"/conversations/{group}/messages",
        alice,
        json={"body": "still here", "client_msg_id": uuid.uuid4().hex},
    )
    history = await api.messages(bob, group)
    assert [m["body"] for m in history] == ["still here"]


async def test_joining_and_leaving_over_and_over_is_refused_before_it_floods_a_group(
    stack: Stack, api: Api
) -> None:
    owner, flooder = await api.register("owner"), await api.register("flooder")
    created = await api.ok(
        "POST", "/conversations/groups", owner, json={"name": "Open", "is_public": True}
    )
    group = created["id"]
    changes = 0
    while True:
        action = "join" if changes % 2 == 0 else "leave"
        response = await api.call("POST", f"/conversations/{group}/{action}", flooder)
        if response.status_code == 429:
            break
        assert response.status_code in (200, 204), response.text
        changes += 1
        assert changes <= 60, "never refused"
    assert changes == 60
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    lines = [m for m in await api.messages(owner, group, limit=100) if "system" in m]
    assert len(lines) == 60
